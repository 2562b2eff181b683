"""The duplicate check across member funds: before deciding, a fund asks whether another
member fund already supports, or has refused, the same need of the same defender.

Cases match on their network key (``cases.services.network_key``: a keyed hash of the
defender's normalised name and country under the network's own key), the same category and
an overlapping period; no name, country or other field is compared in clear or shown. The
answer says, for each match, only the other fund's name, the case's status in one word
(open, supported, refused) and the month it was sent; the staff then contact that fund.

Only cases whose defender's consent to referral stands take part, on either side: a
withdrawal takes the defender's cases at that fund out at once. Asking is an audit entry of
the asking fund, and every case found is an entry of its own fund, saying which fund asked.

The answer is not kept anywhere. The page after asking shows it again for
``ANSWER_MINUTES``, by matching again, only while the reader's own audit entry of the ask
is that recent, and only the cases whose fund was told of that ask: a case that left the
check since (consent withdrawn, purged) is gone from the answer at once, and no fund appears
in it without an entry in its own chain.
"""

import enum
import json
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import lazy_gettext as _l

from .. import audit
from ..audit.models import AuditEvent
from ..auth.models import Fund
from ..cases import consents
from ..cases.access import check_staff
from ..cases.models import Application, Consent, ConsentKind
from ..cases.models import ApplicationStatus as S
from ..core.columns import utcnow
from ..core.extensions import db

#: How long the page after asking shows the answer; then the reviewer asks again.
ANSWER_MINUTES = 10
#: At most this many cases are matched for one ask.
MATCH_LIMIT = 50


class NetworkWord(enum.StrEnum):
    """The one word another fund learns of a case's status."""

    OPEN = "open"
    SUPPORTED = "supported"
    REFUSED = "refused"


#: Every status, as another fund learns it; None: the case never matches. A draft was never
#: sent; a withdrawn request is no need anyone pays for or refused, and saying that the
#: defender withdrew would tell more than the three words.
WORDS = {
    S.DRAFT: None,
    S.SUBMITTED: NetworkWord.OPEN,
    S.IN_REVIEW: NetworkWord.OPEN,
    S.INFO_REQUESTED: NetworkWord.OPEN,
    S.RECOMMENDED: NetworkWord.OPEN,
    S.AWAITING_SECOND_APPROVAL: NetworkWord.OPEN,
    S.APPROVED: NetworkWord.SUPPORTED,
    S.PAYING: NetworkWord.SUPPORTED,
    S.COMPLETED: NetworkWord.SUPPORTED,
    S.REJECTED: NetworkWord.REFUSED,
    S.WITHDRAWN: None,
}
WORD_LABELS = {
    NetworkWord.OPEN: _l("open"),
    NetworkWord.SUPPORTED: _l("supported"),
    NetworkWord.REFUSED: _l("refused"),
}
#: The statuses a case is matched in.
MATCHED = tuple(sorted(status for status, word in WORDS.items() if word is not None))
#: The statuses a case asks from: sent, and not decided yet.
ASKING = frozenset(
    {S.SUBMITTED, S.IN_REVIEW, S.INFO_REQUESTED, S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL}
)


class NetworkCheckError(Exception):
    """The case may not ask the network; the message says why."""


@dataclass(frozen=True)
class Match:
    """What the asking fund learns of one case at another fund, and nothing more."""

    fund: str
    word: NetworkWord
    #: The first day of the month the case was sent: the day itself is not told.
    month: date


@dataclass(frozen=True)
class Answer:
    """The answer to the reader's last ask on a case, shown for ``ANSWER_MINUTES``."""

    asked_at: object
    matches: list


def consent_stands(case):
    """SQL condition on ``case`` (Application or an alias of it): the defender's consent to
    referral was given on the case and stands, and no later withdrawal of that consent on
    another case of the same defender (same network key) at the same fund took it back."""
    given = sa.orm.aliased(Consent)
    taken = sa.orm.aliased(Consent)
    sibling = sa.orm.aliased(Application)
    later_withdrawal = (
        sa.select(taken.id)
        .join(sibling, sibling.id == taken.application_id)
        .where(
            sibling.fund_id == case.fund_id,
            sibling.network_key == case.network_key,
            taken.kind == ConsentKind.REFERRAL,
            taken.withdrawn_at > given.given_at,
        )
        # Two levels down from ``case``: said, or the case's table would be read anew here.
        .correlate_except(taken, sibling)
        .exists()
    )
    return (
        sa.select(given.id)
        .where(
            given.application_id == case.id,
            consents.in_force(ConsentKind.REFERRAL, given),
            ~later_withdrawal,
        )
        .correlate_except(given)
        .exists()
    )


def why_not_asking(application):
    """Why ``application`` may not ask the network, in words; None when it may."""
    if application.status not in ASKING:
        return _l("Only a sent case that is not decided yet asks the other funds.")
    if application.purged_at is not None or not application.network_key:
        return _l(
            "The case names no defender and country to match, so the other funds cannot be asked."
        )
    standing = db.session.execute(
        sa.select(consent_stands(Application)).where(Application.id == application.id)
    ).scalar()
    if not standing:
        return _l(
            "The defender has not agreed to the case being referred to another fund, or "
            "took that back: the case is not checked across funds."
        )
    return None


def _matching_cases(application):
    """The cases at other member funds that match ``application``: its network key and
    category, a period that overlaps (open, or closed less than DUPLICATE_WINDOW_DAYS
    before ``application`` was sent), the defender's consent standing. Rows of fund id,
    fund name, case uid, status and time sent, for this module only."""
    since = (application.submitted_at or utcnow()) - timedelta(
        days=current_app.config["DUPLICATE_WINDOW_DAYS"]
    )
    # A refusal closes a case at its decision; everything else at completion or withdrawal.
    ended = sa.case(
        (Application.status == S.REJECTED, Application.decided_at), else_=Application.closed_at
    )
    return db.session.execute(
        sa.select(
            Application.fund_id,
            Fund.name.label("fund_name"),
            Application.uid,
            Application.status,
            Application.submitted_at,
        )
        .join(Fund, Fund.id == Application.fund_id)
        .where(
            Application.network_key == application.network_key,
            Application.fund_id != application.fund_id,
            Application.category == application.category,
            Application.status.in_(MATCHED),
            Application.purged_at.is_(None),
            Application.submitted_at.is_not(None),
            sa.or_(ended.is_(None), ended >= since),
            consent_stands(Application),
        )
        .order_by(Fund.name, Application.submitted_at.desc(), Application.id)
        .limit(MATCH_LIMIT)
    ).all()


def _told(rows):
    """The answer's lines for ``rows``: fund name, word and month, each line once."""
    lines = []
    for row in rows:
        line = Match(row.fund_name, WORDS[row.status], row.submitted_at.date().replace(day=1))
        if line not in lines:
            lines.append(line)
    return lines


def ask_network(application, actor):
    """Ask every other member fund whether it has a case matching ``application``; returns
    the answer's lines (:class:`Match`). Audited in the asking fund (on its case, with the
    funds told) and in each fund matched (on its own case, with the fund that asked)."""
    check_staff(application, actor, NetworkCheckError)
    reason = why_not_asking(application)
    if reason is not None:
        raise NetworkCheckError(reason)
    found = _matching_cases(application)
    entries = [
        (
            application.fund_id,
            {
                "action": "network.asked",
                "obj": application,
                "funds": sorted({row.fund_id for row in found}),
            },
        )
    ]
    entries += [
        (
            row.fund_id,
            {
                "action": "network.matched",
                "object_type": "applications",
                "object_id": row.uid,
                "asking_fund": application.fund_id,
            },
        )
        for row in found
    ]
    # One entry in each fund's chain, in the order of the funds' ids.
    for fund_id, entry in sorted(entries, key=lambda e: e[0]):
        audit.record(actor=actor, fund=fund_id, **entry)
    return _told(found)


def recent_answer(application, reader, now=None):
    """The answer to ``reader``'s ask on ``application`` in the last ``ANSWER_MINUTES``,
    matched again: only cases still in the check whose fund was told of that ask. None
    when the reader did not ask that recently, or the case may not ask any more."""
    now = now or utcnow()
    asked = db.session.execute(
        sa.select(AuditEvent.at, AuditEvent.payload)
        .where(
            AuditEvent.action == "network.asked",
            AuditEvent.object_type == "applications",
            AuditEvent.object_id == application.uid,
            AuditEvent.actor == reader.pseudonym,
            AuditEvent.at >= now - timedelta(minutes=ANSWER_MINUTES),
        )
        .order_by(AuditEvent.at.desc())
        .limit(1)
    ).first()
    if asked is None or why_not_asking(application) is not None:
        return None
    funds = set(json.loads(asked.payload).get("funds", []))
    found = [row for row in _matching_cases(application) if row.fund_id in funds]
    told = set()
    if found:
        told = set(
            db.session.execute(
                sa.select(AuditEvent.object_id).where(
                    AuditEvent.action == "network.matched",
                    AuditEvent.object_type == "applications",
                    AuditEvent.object_id.in_([row.uid for row in found]),
                    AuditEvent.at >= asked.at,
                )
            ).scalars()
        )
    return Answer(asked.at, _told(row for row in found if row.uid in told))
