"""The alert outbox and its sending. An alert says only that something waits, with a link
to the case page (behind sign-in); the case's contents never travel by email. The
applicant side's notices (``notices``) travel the same way, with only a sign-in address.

Alerts are written to the outbox inside the transaction that caused them, then sent after
the response has gone out, in a short transaction of their own, so a slow or absent mail
server never slows a page nor loses an alert: ``flask hrdfund alerts`` retries what is left
(delivery is at least once). Who is alerted about a case, and who may still receive an
alert about it when it goes out, is the cases' rule (``hrdfund.cases.alerts``).

Each link lands where its reader acts on the case page: the decision for a second
approval, the payment form for finance, the plan for a renewal review.
"""

import logging
import smtplib
import ssl
from datetime import timedelta
from email.message import EmailMessage

import sqlalchemy as sa
from flask import current_app, g
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..auth.models import User
from ..core.columns import utcnow
from ..core.extensions import db
from . import notices
from .models import Alert, AlertKind

log = logging.getLogger(__name__)

#: An alert the mail server refused this many times stays in the outbox for an admin.
MAX_ATTEMPTS = 5

#: How long a sending process holds the alerts it claimed. One that dies mid-send (a
#: server killed, a machine lost) leaves them claimed: after this time another run takes
#: them again, so an alert whose message had already left may go out a second time. A
#: live process stops using its claim before it ends (``_send``).
CLAIM = timedelta(minutes=15)

#: The part of the case page each kind of alert opens at (the case page's own anchors).
ANCHORS = {
    AlertKind.APPLICANT_ANSWER: "thread",
    AlertKind.PAYMENT_HELD: "held",
    AlertKind.SECOND_APPROVAL: "decision",
    AlertKind.GRANT_APPROVED: "pay",
    AlertKind.INSTALMENT_DUE: "pay",
    AlertKind.RENEWAL_REVIEW: "plan",
    AlertKind.RECEIPT_PROBLEM: "payments",
}


def notify_users(users, application, kind, once=None):
    """Queue an alert of ``kind`` on ``application`` for each of ``users``; with ``once``,
    a user gets it a single time whatever the number of calls. A user with no email
    address, or whose account is closed, is passed over. Returns how many were queued."""
    rows = []
    for user in users:
        if not (user.active and _address(user)):
            # An alert nobody can receive is never queued (it would wait forever).
            continue
        once_key = f"{once}:{user.id}" if once else None
        if (
            once_key
            and db.session.execute(sa.select(Alert.id).where(Alert.once_key == once_key)).first()
        ):
            continue
        rows.append(
            {
                "user_id": user.id,
                "application_id": application.id,
                "kind": kind,
                "once_key": once_key,
            }
        )
    if rows:  # one INSERT of them all
        db.session.execute(sa.insert(Alert.__table__), rows)
        g.hrdfund_alerts_queued = True
    return len(rows)


def queue_notice(user, application):
    """Queue a notice of news on ``application`` for ``user``, an applicant-side account,
    when it receives notices (``notices.wants_notices``). Several events close together
    make one notice: none is queued while one for the account waits in the outbox, nor
    while one sent tells of news that came after the account last signed in (it has not
    read that news yet). Returns how many were queued (0 or 1)."""
    if not notices.wants_notices(user):
        return 0
    news = sa.select(Alert.id).where(
        Alert.user_id == user.id, Alert.kind == AlertKind.APPLICANT_NEWS
    )
    waiting = news.where(pending())
    unread = news.where(Alert.sent_at.is_not(None))
    if user.last_login_at is not None:
        unread = unread.where(Alert.created_at > user.last_login_at)
    if db.session.execute(sa.union_all(waiting, unread).limit(1)).first():
        return 0
    db.session.add(
        Alert(user_id=user.id, application_id=application.id, kind=AlertKind.APPLICANT_NEWS)
    )
    db.session.flush()
    g.hrdfund_alerts_queued = True
    return 1


def queued_once(kind, application_ids):
    """The ``once`` of every alert of ``kind`` on the cases ``application_ids`` in the
    outbox, whoever it was for: what a periodic run queued before."""
    if not application_ids:
        return set()
    keys = db.session.execute(
        sa.select(Alert.once_key).where(
            Alert.kind == kind,
            Alert.application_id.in_(sorted(set(application_ids))),
            Alert.once_key.is_not(None),
        )
    ).scalars()
    return {key.rsplit(":", 1)[0] for key in keys}


def send_after_response(response, may_receive, held_back=None):
    """after_request hook: once the response has been sent, hand queued alerts over
    (``may_receive`` and ``held_back`` as for :func:`send_pending`)."""
    if g.pop("hrdfund_alerts_queued", False) and current_app.config["SMTP_HOST"]:
        app = current_app._get_current_object()

        def send():
            with app.app_context():
                try:
                    send_pending(may_receive, held_back=held_back)
                except Exception:  # noqa: BLE001  (the outbox keeps it for the next run)
                    log.exception("sending alerts failed; they stay in the outbox")

        response.call_on_close(send)
    return response


def _address(user):
    return notices.email_address(user.contact)


def link(alert):
    """The address an alert points at: its case's page (behind sign-in), at the part
    where its reader acts."""
    url = current_app.config["BASE_URL"].rstrip("/") + "/applications/" + alert.application.uid
    anchor = ANCHORS.get(alert.kind)
    return f"{url}#{anchor}" if anchor else url


#: What each kind of alert to staff says in its subject.
SUBJECTS = {
    AlertKind.URGENT_CASE: _l("An urgent case waits in hrdfund"),
    AlertKind.TARGET_NEAR: _l("A case in hrdfund is close to its target"),
    AlertKind.APPLICANT_ANSWER: _l("An applicant answered in hrdfund"),
    AlertKind.PAYMENT_HELD: _l("A payment in hrdfund waits for a second person"),
    AlertKind.SECOND_APPROVAL: _l("An approval in hrdfund waits for a second manager"),
    AlertKind.GRANT_APPROVED: _l("A grant in hrdfund is approved and can be paid"),
    AlertKind.INSTALMENT_DUE: _l("A planned payment in hrdfund is due"),
    AlertKind.RENEWAL_REVIEW: _l("A payment plan in hrdfund is due for its review"),
    AlertKind.RECEIPT_PROBLEM: _l("A payment in hrdfund was reported short or not received"),
}


def _message(alert, user, address):
    if alert.kind == AlertKind.APPLICANT_NEWS:
        return notices.notice_message(alert, user, address)
    config = current_app.config
    with force_locale(user.language or "en"):
        body = _(
            "Something waits for you in hrdfund. Sign in to see it:\n\n%(link)s\n\n"
            "This message carries no case details, by design.",
            link=link(alert),
        )
        message = EmailMessage()
        message["Subject"] = str(SUBJECTS[alert.kind])
    message["From"] = config["MAIL_FROM"]
    message["To"] = address
    message.set_content(body)
    return message


def _connect(config):
    host, port, timeout = config["SMTP_HOST"], config["SMTP_PORT"], config["SMTP_TIMEOUT"]
    security = config["SMTP_SECURITY"]
    if security == "ssl":
        server = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        server = smtplib.SMTP(host, port, timeout=timeout)
        if security != "none":
            server.starttls(context=ssl.create_default_context())
    if config["SMTP_USERNAME"]:
        server.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
    return server


def mail_configured():
    return bool(current_app.config["SMTP_HOST"])


def pending():
    """The condition of an alert still to send: not sent, not settled unsent, not refused
    too often."""
    return sa.and_(
        Alert.sent_at.is_(None), Alert.dropped_at.is_(None), Alert.attempts < MAX_ATTEMPTS
    )


def send_pending(may_receive, limit=500, held_back=None):
    """Send what waits in the outbox to each recipient ``may_receive(alert, user)`` still
    lets hear of it (the others are dropped); returns the number sent. Without a mail
    server configured, nothing is sent and everything waits. A server that cannot be
    reached raises (OSError or SMTPException) and costs the alerts nothing: they wait for
    the next run. Only a message the server refused counts an attempt.

    Any number of processes may run it at once: each claims the alerts it sends, ``limit``
    at a time, in a short transaction committed before the mail server is talked to, so
    each alert is sent by one of them (see ``CLAIM``). One run goes once through the
    outbox, oldest first, so no row that cannot be sent keeps newer ones back.
    ``held_back()`` gives the SQL condition of the notices the settings hold back, or
    None: a run passes over them unread."""
    config = current_app.config
    if not config["SMTP_HOST"]:
        return 0
    sent, after = 0, 0
    held = held_back() if held_back is not None else None
    if held is not None:
        log.warning("notices held back: a setting names the fund or the product")
    while True:
        outgoing, seen = _claim(may_receive, limit, after, held)
        if outgoing:
            sent += _send(config, outgoing)
        if len(seen) < limit:
            return sent
        after = max(seen)


def _claim(may_receive, limit, after, held=None):
    """Claim the oldest alerts after id ``after`` that wait and that no other process holds,
    settle those that can no longer be sent, and return the messages to send (with each
    one's id and the end of its claim) and the ids read. Committed before it returns.
    The notices the settings hold back (``held``, an SQL condition) are passed over
    unread: they wait, counted as no refusal, for the setting to change."""
    now = utcnow()
    waiting = [
        Alert.id > after,
        pending(),
        sa.or_(Alert.claimed_until.is_(None), Alert.claimed_until <= now),
    ]
    if held is not None:
        waiting.append(sa.not_(held))
    alerts = (
        db.session.execute(
            sa.select(Alert)
            .where(*waiting)
            .order_by(Alert.id)
            .limit(limit)
            # PostgreSQL: rows another process is claiming are passed over, not waited
            # for; SQLite's write transaction lets one process claim at a time.
            .with_for_update(skip_locked=True, of=Alert)
        )
        .scalars()
        .all()
    )
    until = now + CLAIM
    outgoing, stale, dropped, refused = [], [], [], []
    for alert in alerts:
        user = db.session.get(User, alert.user_id)
        if alert.application is not None and not may_receive(alert, user):
            # Since it was queued, the recipient left the case's fund, declared a
            # conflict on it or no longer has the role it was for, or what it announced
            # waits no more: the alert never goes out.
            stale.append(alert.id)
            continue
        address = _address(user) if user.active else None
        if not address or alert.application is None:
            # Nowhere to send it any more: settled, never read again.
            dropped.append(alert.id)
            continue
        message = _message(alert, user, address)
        if message is None:
            # Held back before the server, though no setting names the fund: its own
            # words would (a fund named like a word of the notice). Counted as refused,
            # so it is given up and shown on the outbox page rather than read forever.
            refused.append(alert.id)
        else:
            outgoing.append((alert.id, message))
    if stale:
        db.session.execute(sa.delete(Alert).where(Alert.id.in_(stale)))
    if dropped:
        db.session.execute(sa.update(Alert).where(Alert.id.in_(dropped)).values(dropped_at=now))
    if outgoing:
        claimed = [alert_id for alert_id, _message in outgoing]
        db.session.execute(
            sa.update(Alert).where(Alert.id.in_(claimed)).values(claimed_until=until)
        )
    _count_attempts(refused)
    seen = [alert.id for alert in alerts]
    # No transaction stays open while the mail server is talked to.
    db.session.commit()
    return [(alert_id, message, until) for alert_id, message in outgoing], seen


def _send(config, outgoing):
    """Hand ``outgoing`` to the mail server, recording each alert sent (or refused) in a
    short transaction of its own as soon as the server answers; returns how many were
    sent. A claim about to end is not used: what is left is released for the next run,
    as is everything left when the server cannot be reached."""
    margin = timedelta(seconds=3 * config["SMTP_TIMEOUT"])
    sent, left = 0, [alert_id for alert_id, _message, _until in outgoing]
    try:
        server = _connect(config)
        try:
            for alert_id, message, until in outgoing:
                if utcnow() >= until - margin:
                    break
                try:
                    server.send_message(message)
                except smtplib.SMTPException:
                    log.warning("the mail server refused alert %s", alert_id)
                    _count_attempts([alert_id])
                else:
                    db.session.execute(
                        sa.update(Alert)
                        .where(Alert.id == alert_id)
                        .values(sent_at=utcnow(), claimed_until=None)
                    )
                    sent += 1
                db.session.commit()
                left.remove(alert_id)
        finally:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                pass
    finally:
        if left:
            db.session.rollback()
            db.session.execute(
                sa.update(Alert)
                .where(Alert.id.in_(left), Alert.sent_at.is_(None))
                .values(claimed_until=None)
            )
            db.session.commit()
    return sent


def _count_attempts(refused):
    if refused:
        db.session.execute(
            sa.update(Alert)
            .where(Alert.id.in_(refused))
            .values(attempts=Alert.attempts + 1, claimed_until=None)
        )


def given_up():
    """The condition of an alert the mail server refused too often: never sent, never
    settled, no longer tried."""
    return sa.and_(
        Alert.sent_at.is_(None), Alert.dropped_at.is_(None), Alert.attempts >= MAX_ATTEMPTS
    )
