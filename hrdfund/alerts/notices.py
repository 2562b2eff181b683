"""The applicant side's notices: when the fund writes, decides or pays on a case, an email
to the safe contact the account gave, if that contact is an email address. A notice says
only that there is news and where to sign in: never the case's code, amount, category,
name, country or any message, and, while the account asks for discretion (the default),
never the fund's name either, in the sender, the subject or the body.

They travel through the staff alerts' outbox (``outbox.queue_notice`` queues one, with
the rule that keeps several events from flooding a mailbox); this module says who may
receive one and writes it."""

import logging
from email.message import EmailMessage
from email.utils import formataddr, parseaddr

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from ..auth.contacts import email_address
from ..auth.models import APPLICANT_ROLES, Fund
from ..core.extensions import db

log = logging.getLogger(__name__)


def wants_notices(user):
    """Whether ``user`` is an applicant-side account that receives notices now: active, not
    emptied by retention, notices on, and a safe contact that is an email address."""
    return (
        user is not None
        and user.role in APPLICANT_ROLES
        and user.active
        and user.purged_at is None
        and user.notices
        and email_address(user.contact) is not None
    )


def sign_in_url():
    """The one address a notice carries: where to sign in."""
    config = current_app.config
    return config["SIGN_IN_URL"] or config["BASE_URL"].rstrip("/") + "/login"


def _sender():
    config = current_app.config
    return parseaddr(config["NOTICE_MAIL_FROM"] or config["MAIL_FROM"])


def _settings():
    """The settings every notice carries, as ``(setting, value)``: its sender's address and
    the sign-in address."""
    own = current_app.config["NOTICE_MAIL_FROM"]
    setting = "HRDFUND_NOTICE_MAIL_FROM" if own else "HRDFUND_MAIL_FROM"
    return ((setting, _sender()[1]), ("HRDFUND_SIGN_IN_URL", sign_in_url()))


def _named(name, values):
    name = (name or "").strip().casefold()
    return bool(name) and any(name in value.casefold() for value in values)


def held_back_by_settings(fund_id=None):
    """The settings that hold back discreet notices: each one, as ``(setting, value)``,
    whose value names the instance or a fund (with the default ``HRDFUND_MAIL_FROM``,
    ``hrdfund@localhost``, the sender names the product); with ``fund_id``, the instance
    or that fund. Empty when discreet notices can go out."""
    query = sa.select(Fund.name)
    if fund_id is not None:
        query = query.where(Fund.id == fund_id)
    names = [current_app.config["FUND_NAME"], *db.session.scalars(query)]
    return [
        (setting, value)
        for setting, value in _settings()
        if any(_named(name, [value]) for name in names)
    ]


def held_back_funds():
    """For whom the settings hold discreet notices back, as :func:`notice_message` would:
    ``True`` for every fund (a setting names the instance or the product), else the ids of
    the funds a setting names (empty: nobody's)."""
    values = [value for _setting, value in _settings()]
    if _named(current_app.config["FUND_NAME"], values):
        return True
    return [
        fund_id
        for fund_id, name in db.session.execute(sa.select(Fund.id, Fund.name))
        if _named(name, values)
    ]


def fund_names(application):
    """The names a discreet notice must not carry: the case's fund's and the instance's."""
    names = {current_app.config["FUND_NAME"], application.fund.name if application else None}
    return {name.strip() for name in names if name and name.strip()}


def names_any(message, names):
    """Whether ``message`` carries one of ``names`` (in any case) in a header other than
    its recipient, or in its body."""
    texts = [str(value) for key, value in message.items() if key.lower() != "to"]
    texts.append(message.get_content())
    found = " ".join(texts).casefold()
    return any(name.casefold() in found for name in names)


def notice_message(alert, user, address):
    """The notice for ``user`` at ``address``, in their language; None when discretion is
    asked and the configured sender or sign-in address would still name the fund: such a
    notice is held back rather than sent (the outbox does not even read the notices the
    settings hold back: :func:`held_back_funds`)."""
    fund = alert.application.fund.name
    link = sign_in_url()
    discreet = user.notices_discreet
    with force_locale(user.language or "en"):
        if discreet:
            subject = _("There is news for you")
            body = _(
                "There is news for you. Sign in to read it:\n\n%(link)s\n\n"
                "This message says nothing more, on purpose. You can turn these messages "
                "off on your account page.",
                link=link,
            )
        else:
            subject = _("News from %(fund)s", fund=fund)
            body = _(
                "%(fund)s has news for you. Sign in to read it:\n\n%(link)s\n\n"
                "This message says nothing more, on purpose. You can turn these messages "
                "off on your account page.",
                fund=fund,
                link=link,
            )
    sender = _sender()[1]
    message = EmailMessage()
    message["Subject"] = str(subject)
    message["From"] = sender if discreet else formataddr((fund, sender))
    message["To"] = address
    message.set_content(str(body))
    if discreet and names_any(message, fund_names(alert.application)):
        log.warning(
            "notice %s held back: the configured sender or sign-in address names the fund",
            alert.id,
        )
        return None
    return message
