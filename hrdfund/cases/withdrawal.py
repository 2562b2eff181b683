"""The applicant side ends what it started: a draft deleted outright (nothing of it reached
anyone), an application sent and not decided withdrawn (the fund is told, and why if the
defender says), a document it added taken out again while the case is open (a wrong file,
or one that puts someone at risk). The defender's own account does it, or an account of the
partner organisation that referred the case, on the defender's word."""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..alerts.models import AlertKind
from ..auth.models import Role, User
from ..core.extensions import db
from ..core.sql import lock_row
from . import alerts
from .consents import holds_consent
from .documents import delete_document_file
from .models import Application, Document, Message
from .models import ApplicationStatus as S
from .services import change_status
from .states import OPEN_STATES

#: Sent and not decided: the applicant side may withdraw it. A grant decided is closed by
#: the fund, on a message from the defender.
WITHDRAWABLE = OPEN_STATES - {S.DRAFT}


class WithdrawalError(Exception):
    """What the applicant side may not end, in words for the page."""


def holds_case(application, user):
    """Whether ``user`` speaks for the applicant side of ``application``: the defender's
    own account, or an account of the partner organisation that referred it."""
    return holds_consent(application, user)


def _check_holder(application, actor):
    if not holds_case(application, actor):
        raise WithdrawalError(_l("Only the applicant side of a case may do this."))


def withdraw_application(application, actor, reason=None):
    """Withdraw ``application``, sent and not decided: it leaves the fund's queue, its
    reviewers and managers are alerted, and ``reason``, when given, is a message of the
    case, in the thread the fund reads."""
    _check_holder(application, actor)
    if application.status not in WITHDRAWABLE:
        raise WithdrawalError(
            _l(
                "This application can no longer be withdrawn: the fund has decided it. "
                "Write to the fund if the support is no longer needed."
            )
        )
    reason = (reason or "").strip()
    if len(reason) > Message.BODY_MAX:
        raise WithdrawalError(_l("Say why in at most %(max)d characters.", max=Message.BODY_MAX))
    if reason:
        message = Message(
            application_id=application.id, author_id=actor.id, from_staff=False, body=reason
        )
        db.session.add(message)
        db.session.flush()
        audit.record(
            "message.posted", message, actor=actor, fund=application.fund_id, case=application.uid
        )
    change_status(application, S.WITHDRAWN, actor=actor)
    alerts.notify(application, AlertKind.APPLICANT_ANSWER)
    return application


def delete_draft(application, actor):
    """Delete ``application``, a draft never sent, with everything in it: its answers,
    people and documents. Nothing of it is kept but the audit entry that says a draft was
    deleted."""
    _check_holder(application, actor)
    # Read again under its row's lock: a draft sent at the same moment is not deleted.
    application = lock_row(Application, application.id)
    if application.status != S.DRAFT:
        raise WithdrawalError(
            _l("This application was sent: it can be withdrawn, no longer deleted.")
        )
    delete_drafts([application.id], actor)


def delete_drafts(draft_ids, actor=None):
    """Delete drafts never sent, with every row that refers to them and their documents'
    files; by ``actor`` (the applicant side), or by retention when None."""
    for document in db.session.scalars(
        sa.select(Document).where(Document.application_id.in_(draft_ids))
    ):
        delete_document_file(document)
    for table in reversed(db.metadata.sorted_tables):
        if "application_id" in table.c:
            db.session.execute(sa.delete(table).where(table.c.application_id.in_(draft_ids)))
    drafts = db.session.execute(
        sa.select(Application.uid, Application.fund_id).where(Application.id.in_(draft_ids))
    )
    for uid, fund_id in drafts.all():
        audit.record(
            "case.purged",
            object_type="applications",
            object_id=uid,
            actor=actor,
            fund=fund_id,
            draft=True,
        )
    db.session.execute(sa.delete(Application.__table__).where(Application.id.in_(draft_ids)))


def removable(application, document, user, uploader_roles=None):
    """Whether ``user`` may take ``document`` out of ``application``: the applicant side,
    a document its side added, while the case is open. ``uploader_roles`` maps the ids of
    the case's uploaders to their roles, read once for a page's documents."""
    if application.status not in OPEN_STATES or not holds_case(application, user):
        return False
    if uploader_roles is None:
        uploader_roles = uploaders_roles([document])
    return uploader_roles.get(document.uploaded_by_id) in (Role.APPLICANT, Role.PARTNER)


def uploaders_roles(documents):
    """The role of each account that added one of ``documents``, by its id."""
    ids = {d.uploaded_by_id for d in documents if d.uploaded_by_id is not None}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.role).where(User.id.in_(ids))).all())


def remove_document(application, document, actor):
    """Take ``document`` out of ``application``: its stored pieces wiped and deleted, its
    row gone, an audit entry naming its kind left."""
    # Read again under its row's lock: a case decided at the same moment keeps it.
    application = lock_row(Application, application.id)
    if document.application_id != application.id or not removable(application, document, actor):
        raise WithdrawalError(_l("This document cannot be removed."))
    kind = document.kind.value
    delete_document_file(document)
    db.session.delete(document)
    db.session.flush()
    audit.record(
        "document.removed",
        object_type="documents",
        object_id=document.uid,
        actor=actor,
        fund=application.fund_id,
        case=application.uid,
        kind=kind,
    )
