"""The alert of an instalment fallen due: finance is told, once per instalment, by the
periodic ``flask hrdfund alerts`` run. Who may receive it, at queueing and again at
sending, is ``hrdfund.cases.alerts``'s rule."""

import sqlalchemy as sa

from ..alerts import outbox
from ..alerts.models import AlertKind
from ..cases import alerts
from ..cases.models import Application
from ..core.columns import utcnow
from ..core.extensions import db
from ..grants.models import Instalment
from .open_items import ItemKind, OpenItem


def instalment_once(instalment):
    """The once-key of an instalment's alert: one per instalment."""
    return f"instalment:{instalment.id}"


def queue_instalment_alerts(today=None):
    """Queue an alert for the fund's finance officers, once per instalment, for every
    instalment of an open grant due on ``today`` or before that payments, net of their
    reversals, have not settled (the open instalments Follow-up lists); returns how many
    were queued."""
    today = today or utcnow().date()
    due = db.session.execute(
        sa.select(Instalment, Application)
        .join(
            OpenItem,
            sa.and_(OpenItem.kind == ItemKind.INSTALMENT, OpenItem.item_id == Instalment.id),
        )
        .join(Application, Application.id == OpenItem.application_id)
        .where(OpenItem.kind == ItemKind.INSTALMENT, OpenItem.day <= today)
        .order_by(OpenItem.day, OpenItem.item_id)
    ).all()
    done = outbox.queued_once(AlertKind.INSTALMENT_DUE, [a.id for _i, a in due])
    queued = 0
    for instalment, application in due:
        once = instalment_once(instalment)
        if once not in done:
            queued += alerts.notify_role(application, AlertKind.INSTALMENT_DUE, once=once)
    return queued
