"""Referrals between member funds: fund A refers a case, or a part of its need, to fund B
while the defender's consent to referral stands; B's staff open only the parts A chose to
share, and accept (B's own linked case enters B's queue, decided and paid under B's
rules, from B's pools) or decline with a reason; A may withdraw a referral not answered.

Every step is an audit entry in both funds' chains. A defender who withdraws consent to
referral stops every referral not yet accepted: B can no longer open its shared parts nor
accept it. What B accepted stays B's case.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Fund, Role, User
from ..cases import consents
from ..cases.access import can_see, visible_cases
from ..cases.models import (
    Application,
    BudgetLine,
    Consent,
    ConsentKind,
    Dependant,
    StatusChange,
)
from ..cases.models import ApplicationStatus as S
from ..cases.services import amount_asked, change_status, defender_key
from ..cases.states import TERMINAL_STATES
from ..cases.targets import target_hours
from ..core import times
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import (
    CURRENCIES,
    ConversionError,
    MoneyError,
    check_units,
    convert,
    money_words,
    quantize,
)
from ..core.sql import lock_row
from ..core.support import Category
from ..grants.models import Grant, GrantStatus
from ..pools.services import MissingRateError, table_rate
from .models import Referral, ReferralStatus

#: Who refers a case and who answers a referral: the fund's reviewers and managers.
REFERRAL_ROLES = (Role.REVIEWER, Role.MANAGER)
#: A case is referred once sent and until it is closed.
NOT_REFERABLE = frozenset({S.DRAFT}) | TERMINAL_STATES


class ReferralError(ValueError):
    """A referral step the rules refuse, in words for the page."""


def consent_stands(application):
    """Whether the defender's consent to referral stands on ``application``. A case a fund
    made by accepting a referral carries the consent the referring fund attested: it
    stands only while the defender's own consent on the case referred stands too, so a
    withdrawal there reaches every fund that took a part on, and none refers it onward."""
    seen = set()
    while application is not None and application.id not in seen:
        if consents.active_consent(application, ConsentKind.REFERRAL) is None:
            return False
        seen.add(application.id)
        application = (
            db.session.execute(
                sa.select(Application)
                .join(Referral, Referral.application_id == Application.id)
                .where(
                    Referral.linked_application_id == application.id,
                    Referral.status == ReferralStatus.ACCEPTED,
                )
            )
            .scalars()
            .first()
        )
    return True


def why_not_referable(application, user):
    """Why ``user`` may not refer ``application`` now, in words, or None."""
    if user.role not in REFERRAL_ROLES or not can_see(application, user):
        return _l("Only the fund's reviewers and managers on the case refer it.")
    if application.status in NOT_REFERABLE:
        return _l("A case is referred once it is sent, and until it is closed.")
    if not consent_stands(application):
        return _l(
            "The defender has not agreed that the case be referred to another fund, or has "
            "withdrawn that consent."
        )
    return None


def _answered():
    """SQL: the fund has someone to answer a referral: a partner fund on another server
    (its staff answer there), or a member fund with an active reviewer or manager. A fund
    just created has only its administrator, and a referral to it would wait unread."""
    staffed = (
        sa.select(User.id)
        .where(User.fund_id == Fund.id, User.active.is_(True), User.role.in_(REFERRAL_ROLES))
        .exists()
    )
    return sa.or_(Fund.partner_of_id.is_not(None), staffed)


def other_funds(application):
    """The funds a case may be referred to: every other member fund not suspended with
    someone to answer, and the partner funds on other servers the case's fund
    registered."""
    return (
        db.session.execute(
            sa.select(Fund)
            .where(
                Fund.id != application.fund_id,
                Fund.suspended_at.is_(None),
                sa.or_(Fund.partner_of_id.is_(None), Fund.partner_of_id == application.fund_id),
                _answered(),
            )
            .order_by(Fund.name)
        )
        .scalars()
        .all()
    )


def _here(*fund_ids):
    """Of ``fund_ids``, the funds of this server: a partner fund on another server keeps
    its own records there, and has no audit chain here."""
    elsewhere = set(
        db.session.execute(
            sa.select(Fund.id).where(Fund.id.in_(fund_ids), Fund.partner_of_id.is_not(None))
        ).scalars()
    )
    return [f for f in fund_ids if f not in elsewhere]


@dataclass(frozen=True)
class Part:
    """What is asked of the other fund: a kind of support, months of a stay or a stipend
    (or none), an amount in a currency."""

    category: Category
    months_from: int | None
    months_to: int | None
    amount: Decimal
    currency: str

    def check(self):
        if (self.months_from is None) != (self.months_to is None):
            raise ReferralError(_l("Give the first and the last month, or neither."))
        if self.months_from is not None and not (
            1 <= self.months_from <= self.months_to <= Referral.MONTHS_MAX
        ):
            raise ReferralError(
                _l(
                    "The months run from 1 to %(max)d, the first no later than the last.",
                    max=Referral.MONTHS_MAX,
                )
            )
        if self.currency not in CURRENCIES:
            raise ReferralError(_l("Choose a currency from the list."))
        if (
            not isinstance(self.amount, Decimal)
            or self.amount <= 0
            or self.amount != quantize(self.amount)
        ):
            raise ReferralError(_l("The amount is above zero, in cents at most."))
        try:
            check_units(self.amount, self.currency)
        except MoneyError as exc:
            raise ReferralError(str(exc)) from exc


#: Referrals that still ask their part of the case: waiting for an answer, or taken on.
ASKING = (ReferralStatus.PENDING, ReferralStatus.ACCEPTED)


def _check_within_ask(application, part):
    """A referral asks another fund for part of what the defender asked, never more: with
    the fund's own grant of the case (while it runs) and the case's referrals still
    waiting or taken on, at most what the application asks. The amount becomes what the
    other fund's case asks, and so the most it may approve. Another currency is weighed
    at the referring fund's table rate of today."""
    asked = amount_asked(application)
    if asked is None:
        raise ReferralError(
            _l("The application asks no amount yet: a referral asks for a part of it.")
        )
    others = db.session.execute(
        sa.select(Referral.amount, Referral.currency).where(
            Referral.application_id == application.id, Referral.status.in_(ASKING)
        )
    ).all()
    granted = db.session.execute(
        sa.select(Grant.amount, Grant.currency).where(
            Grant.application_id == application.id, Grant.status == GrantStatus.ACTIVE
        )
    ).all()
    referred = sum(
        (
            _in_case_currency(application, amount, currency)
            for amount, currency in [*granted, *others]
        ),
        Decimal("0.00"),
    )
    if referred + _in_case_currency(application, part.amount, part.currency) > asked:
        raise ReferralError(
            _l(
                "A referral asks at most what the application asks of the other funds: it"
                " asks %(asked)s, and your fund's grant and the referrals still waiting or"
                " taken on already cover %(referred)s. This referral may ask %(left)s at"
                " most.",
                asked=money_words(asked, application.currency),
                referred=money_words(referred, application.currency),
                left=money_words(max(asked - referred, Decimal("0.00")), application.currency),
            )
        )


def _in_case_currency(application, amount, currency):
    """``amount`` in ``currency`` as the case's currency counts it, at the referring fund's
    table rate of today."""
    if currency == application.currency:
        return amount
    try:
        rate = table_rate(application.fund_id, currency, application.currency, utcnow().date())
        return convert(amount, rate.rate)
    except (MissingRateError, ConversionError) as exc:
        raise ReferralError(
            _l(
                "%(why)s A referral is weighed, with the case's other referrals, against what"
                " the application asks in %(currency)s: record that rate on Rates.",
                why=exc,
                currency=application.currency,
            )
        ) from exc


def refer_case(actor, application, to_fund, part, shares, reason, answer_by):
    """Refer ``part`` of ``application`` to ``to_fund``, sharing the parts named in
    ``shares`` (``answers``, ``documents``, ``assessment``), with ``reason`` and the date
    an answer is needed by."""
    application = lock_row(Application, application.id)
    why = why_not_referable(application, actor)
    if why is not None:
        raise ReferralError(why)
    if (
        to_fund is None
        or to_fund.id == application.fund_id
        or to_fund.suspended
        or to_fund.partner_of_id not in (None, application.fund_id)
        or db.session.execute(sa.select(Fund.id).where(Fund.id == to_fund.id, _answered())).first()
        is None
    ):
        raise ReferralError(_l("Choose another member fund of the network."))
    part.check()
    _check_within_ask(application, part)
    if not (reason or "").strip():
        raise ReferralError(_l("Say why."))
    if answer_by < utcnow().date():
        raise ReferralError(_l("The date an answer is needed by cannot be in the past."))
    if answer_by > utcnow().date() + timedelta(days=366):
        raise ReferralError(_l("Ask for an answer within a year."))
    open_already = db.session.execute(
        sa.select(Referral.id).where(
            Referral.application_id == application.id,
            Referral.to_fund_id == to_fund.id,
            Referral.status == ReferralStatus.PENDING,
        )
    ).first()
    if open_already:
        raise ReferralError(_l("This case already waits for that fund's answer."))
    unknown = set(shares) - {"answers", "documents", "assessment"}
    if unknown:
        raise ReferralError(_l("Choose what to share from the list."))
    referral = Referral(
        application_id=application.id,
        from_fund_id=application.fund_id,
        to_fund_id=to_fund.id,
        category=part.category,
        months_from=part.months_from,
        months_to=part.months_to,
        amount=part.amount,
        currency=part.currency,
        share_answers="answers" in shares,
        share_documents="documents" in shares,
        share_assessment="assessment" in shares,
        answer_by=answer_by,
        created_by_id=actor.id,
    )
    db.session.add(referral)
    db.session.flush()
    referral.reason = reason.strip()
    shared = sorted(shares)
    audit.record(
        "referral.sent",
        application,
        actor=actor,
        referral=referral.uid,
        to_fund=to_fund.id,
        category=part.category.value,
        shared=shared,
    )
    if not to_fund.elsewhere:
        audit.record(
            "referral.received",
            referral,
            actor=actor,
            fund=to_fund,
            from_fund=application.fund_id,
            category=part.category.value,
            shared=shared,
        )
    return referral


#: A referral that shares while the defender's consent stands: waiting, or declined.
UNANSWERED_OR_DECLINED = (ReferralStatus.PENDING, ReferralStatus.DECLINED)


def _consent_standing():
    """SQL condition on Referral: the referred case's consent to referral still stands."""
    return consents.stands_on(Referral.application_id, ConsentKind.REFERRAL)


#: Why a referral not yet accepted stopped sharing, as its state says it.
STOPPED = {
    "consent": _l("Stopped: the defender withdrew consent to referral"),
    "withdrawn": _l("Stopped: the defender withdrew the application"),
}


def stopped_ids(referrals):
    """The referrals of ``referrals`` not yet accepted whose defender has withdrawn consent
    to referral, or the application itself: they share nothing any more and cannot be
    accepted. ``{id: why, in words}``; one query for them all."""
    open_ones = [r for r in referrals if r.status in UNANSWERED_OR_DECLINED]
    if not open_ones:
        return {}
    standing = sa.exists().where(
        Consent.application_id == Application.id, consents.in_force(ConsentKind.REFERRAL)
    )
    cases = {
        case_id: (status, consented)
        for case_id, status, consented in db.session.execute(
            sa.select(Application.id, Application.status, standing).where(
                Application.id.in_({r.application_id for r in open_ones})
            )
        )
    }
    found = {}
    for referral in open_ones:
        status, consented = cases[referral.application_id]
        if status == S.WITHDRAWN:
            found[referral.id] = STOPPED["withdrawn"]
        elif not consented:
            found[referral.id] = STOPPED["consent"]
    return found


def is_stopped(referral):
    """Why ``referral`` stopped sharing, in words, or None (see :func:`stopped_ids`)."""
    return stopped_ids([referral]).get(referral.id)


def waiting_count(user):
    """How many referrals to the user's fund wait for its answer, consent standing and the
    application not withdrawn."""
    if user.role not in REFERRAL_ROLES:
        return 0
    return db.session.execute(
        sa.select(sa.func.count(Referral.id))
        .join(Application, Application.id == Referral.application_id)
        .where(
            Referral.to_fund_id == user.fund_id,
            Referral.status == ReferralStatus.PENDING,
            Application.status != S.WITHDRAWN,
            _consent_standing(),
        )
    ).scalar()


def shared_parts(referral, user):
    """The parts of the referred case ``user`` may open through ``referral``: what the
    referring fund chose, for the other fund's reviewers and managers, while the referral
    waits or once accepted, and while the defender's consent stands; once accepted, only
    to those who may open the case it made (none who declared a conflict of interest on
    it); once declined, what was asked and why only."""
    if user.fund_id != referral.to_fund_id or user.role not in REFERRAL_ROLES:
        return frozenset()
    if referral.status == ReferralStatus.WITHDRAWN or is_stopped(referral):
        return frozenset()
    if referral.linked_application is not None and not can_see(referral.linked_application, user):
        return frozenset()
    # Accepted, the other fund has its own case (the answers copied then); what it reads
    # of the referred case itself, live (its documents, new ones too, and assessment),
    # stops when the defender withdraws consent.
    if referral.status == ReferralStatus.ACCEPTED and not consent_stands(referral.application):
        return frozenset()
    parts = {"referral"}
    if referral.status == ReferralStatus.DECLINED:
        # Declined, the fund has no part to work on: what was asked and its own answer
        # stay; the defender's answers, documents and the assessment close to it.
        return frozenset(parts)
    if referral.share_answers:
        parts.add("answers")
    if referral.share_documents:
        parts.add("documents")
    if referral.share_assessment:
        parts.add("assessment")
    return frozenset(parts)


def may_open(referral, user):
    """The referring fund's staff on the case, and the other fund's reviewers and managers
    (while anything is shared)."""
    if user.fund_id == referral.from_fund_id:
        return can_see(referral.application, user)
    return bool(shared_parts(referral, user))


def closed_to(referral, user):
    """Why the fund asked may no longer open ``referral`` (withdrawn by the referring fund,
    its defender's consent to referral withdrawn, or, not yet accepted, the application
    withdrawn by its defender), in words, for its reviewers and
    managers who had it; None for anyone else, or a referral it may still open."""
    if user.fund_id != referral.to_fund_id or user.role not in REFERRAL_ROLES:
        return None
    if referral.linked_application is not None and not can_see(referral.linked_application, user):
        return None  # a conflict declared on the fund's own case: nothing of it
    if referral.status == ReferralStatus.WITHDRAWN:
        return _l(
            "%(fund)s withdrew this referral on %(day)s: nothing of the case is shared any more.",
            fund=referral.from_fund.name,
            day=times.day(referral.withdrawn_at),
        )
    accepted = referral.status == ReferralStatus.ACCEPTED
    stopped = is_stopped(referral)
    if stopped is STOPPED["withdrawn"]:
        return _l("The defender withdrew the application: nothing of it is shared any more.")
    if stopped is not None or (accepted and not consent_stands(referral.application)):
        return _l("The defender withdrew consent to referral: nothing more is shared.")
    return None


def response_due(referral):
    """When the other fund's first answer is due, by its own response target for the
    case's urgency."""
    response, _decision = target_hours(
        referral.category, referral.application.urgency, fund=referral.to_fund
    )
    return referral.created_at + timedelta(hours=response)


def _answerable(actor, referral):
    referral = lock_row(Referral, referral.id)
    if actor.fund_id != referral.to_fund_id or actor.role not in REFERRAL_ROLES:
        raise ReferralError(_l("Only the reviewers and managers of the fund asked answer."))
    if referral.status != ReferralStatus.PENDING:
        raise ReferralError(_l("This referral was answered already."))
    if not consent_stands(referral.application):
        raise ReferralError(
            _l("The defender withdrew consent to referral: nothing more is shared.")
        )
    if referral.application.status == S.WITHDRAWN:
        raise ReferralError(
            _l(
                "The defender withdrew the application: this referral can no longer be "
                "taken on. The fund that referred it may withdraw it."
            )
        )
    return referral


def _both(action, referral, actor, own_object, **payload):
    """An audit entry in each fund's chain: the receiving fund's about its own object."""
    here = _here(referral.from_fund_id, referral.to_fund_id)
    if referral.to_fund_id in here:
        audit.record(action, own_object, actor=actor, fund=referral.to_fund_id, **payload)
    if referral.from_fund_id in here:
        audit.record(
            action,
            referral.application,
            actor=actor,
            fund=referral.from_fund_id,
            referral=referral.uid,
            **payload,
        )


def accept_referral(actor, referral):
    """The other fund takes the part on: its own case, in its queue under its targets, with
    a budget line for the amount asked and, where they were shared, the answers."""
    referral = _answerable(actor, referral)
    source = referral.application
    case = Application(
        fund_id=referral.to_fund_id,
        category=referral.category,
        status=S.DRAFT,
        urgency=source.urgency,
        currency=referral.currency,
        amount_requested=referral.amount,
        applicant_id=source.applicant_id,
        partner_organisation_id=source.partner_organisation_id,
        submitted_by_id=source.submitted_by_id,
    )
    case.fund = db.session.get(Fund, referral.to_fund_id)
    db.session.add(case)
    db.session.flush()
    db.session.add(
        StatusChange(
            application=case, from_status=None, to_status=S.DRAFT, actor_id=actor.id, at=utcnow()
        )
    )
    if referral.share_answers:
        _copy_answers(source, case)
    line = BudgetLine(application_id=case.id, amount=referral.amount, currency=referral.currency)
    db.session.add(line)
    db.session.flush()
    line.description = _line_words(referral)
    db.session.add(
        Consent(
            application_id=case.id,
            kind=ConsentKind.REFERRAL,
            method="referral",
            recorded_by_id=actor.id,
            given_at=utcnow(),
        )
    )
    change_status(case, S.SUBMITTED, actor=actor)
    referral.status = ReferralStatus.ACCEPTED
    referral.answered_at = utcnow()
    referral.answered_by_id = actor.id
    referral.linked_application_id = case.id
    db.session.flush()
    _both("referral.accepted", referral, actor, case)
    return referral


def _line_words(referral):
    """The linked case's budget line: the part asked, in figures and names only (it is
    read in every language)."""
    months = (
        f" · {referral.months_from}–{referral.months_to}"
        if referral.months_from is not None
        else ""
    )
    return f"{referral.from_fund.name}{months}"[: BudgetLine.DESCRIPTION_MAX]


def _copy_answers(source, case):
    """The answers the referring fund shared, copied into the other fund's own case."""
    for name in (
        "defender_name",
        "defender_work",
        "threat",
        "urgency_reason",
        "other_funders",
        "details",
    ):
        setattr(case, name, getattr(source, name))
    case.country, case.region, case.gender = source.country, source.region, source.gender
    case.dependants_count = source.dependants_count
    case.defender_key = defender_key(source.defender_name, source.country)
    for dependant in source.dependants:
        copy = Dependant(application_id=case.id, age=dependant.age)
        db.session.add(copy)
        db.session.flush()
        copy.relation, copy.needs = dependant.relation, dependant.needs


def decline_referral(actor, referral, reason):
    """The other fund declines, saying why (the referring fund reads it)."""
    referral = _answerable(actor, referral)
    if not reason or not reason.strip():
        raise ReferralError(_l("Say why the fund declines."))
    referral.status = ReferralStatus.DECLINED
    referral.answered_at = utcnow()
    referral.answered_by_id = actor.id
    referral.decline_reason = reason.strip()
    db.session.flush()
    _both("referral.declined", referral, actor, referral)
    return referral


def withdraw_referral(actor, referral):
    """The referring fund takes back a referral not answered yet: the other fund no longer
    opens anything of it."""
    referral = lock_row(Referral, referral.id)
    if actor.fund_id != referral.from_fund_id or actor.role not in REFERRAL_ROLES:
        raise ReferralError(_l("Only the referring fund's reviewers and managers withdraw it."))
    if not can_see(referral.application, actor):
        raise ReferralError(_l("Only the referring fund's reviewers and managers withdraw it."))
    if referral.status != ReferralStatus.PENDING:
        raise ReferralError(_l("Only a referral waiting for an answer can be withdrawn."))
    referral.status = ReferralStatus.WITHDRAWN
    referral.withdrawn_at = utcnow()
    db.session.flush()
    _both("referral.withdrawn", referral, actor, referral)
    return referral


#: What a list of referrals shows of each: both funds, and the case (its urgency, its code).
_LISTED = (
    sa.orm.joinedload(Referral.from_fund),
    sa.orm.joinedload(Referral.to_fund),
    sa.orm.joinedload(Referral.application),
    sa.orm.joinedload(Referral.linked_application),
)


def incoming(user):
    """Referrals to the user's fund, waiting ones first (soonest answer needed first); of
    those accepted, only those whose case the user may open."""
    if user.role not in REFERRAL_ROLES:
        return []
    opened = sa.select(Application.id).where(visible_cases(user))
    return (
        db.session.execute(
            sa.select(Referral)
            .where(
                Referral.to_fund_id == user.fund_id,
                sa.or_(
                    Referral.linked_application_id.is_(None),
                    Referral.linked_application_id.in_(opened),
                ),
            )
            .options(*_LISTED)
            .order_by((Referral.status != ReferralStatus.PENDING), Referral.answer_by, Referral.id)
        )
        .scalars()
        .all()
    )


def outgoing(user):
    """Referrals of the cases of the user's fund the user may open, newest first."""
    if user.role not in REFERRAL_ROLES:
        return []
    return (
        db.session.execute(
            sa.select(Referral)
            .join(Application, Application.id == Referral.application_id)
            .where(Referral.from_fund_id == user.fund_id, visible_cases(user))
            .options(*_LISTED)
            .order_by(Referral.created_at.desc(), Referral.id.desc())
        )
        .scalars()
        .all()
    )


def of_case(application):
    """Every referral from the case, and the one that made it if it is a linked case."""
    sent = (
        db.session.execute(
            sa.select(Referral)
            .where(Referral.application_id == application.id)
            .options(sa.orm.joinedload(Referral.to_fund))
            .order_by(Referral.id)
        )
        .scalars()
        .all()
    )
    made_by = db.session.execute(
        sa.select(Referral).where(Referral.linked_application_id == application.id)
    ).scalar_one_or_none()
    return sent, made_by
