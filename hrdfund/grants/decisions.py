"""Every decision on a case: a manager's approval (four eyes above the threshold, money
committed from the pools it draws on), a rejection with its reason, and the question that
sends a case back to the applicant side. Each is a row of ``decisions`` in its round; the
question, the rejection and the approval that commits money each send the applicant side a
notice (``cases.notices``)."""

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..cases import notices
from ..cases.access import can_see, check_staff, has_conflict
from ..cases.models import ApplicationStatus as S
from ..cases.models import Decision, DecisionOutcome, Message, StatusChange
from ..cases.services import amount_asked, change_status
from ..core import limits
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import ConversionError, MoneyError, check_units, convert, money_words, quantize
from ..core.sql import lock_row
from ..pools import services as pools_services
from ..pools.models import Pool
from ..reviews.models import Review
from . import alerts
from .models import ApprovalDraw, Grant
from .services import (
    DecisionError,
    InsufficientFundsError,
    MissingRateError,
    _pool_amount,
    allocate,
    check_draws,
    recorded_rate,
    refuse_repeated_pools,
)


def decision_round(application):
    """Which decision round the case is in: one more each time it is recommended again."""
    return max(
        1,
        db.session.execute(
            sa.select(sa.func.count(StatusChange.id)).where(
                StatusChange.application_id == application.id,
                StatusChange.to_status == S.RECOMMENDED,
            )
        ).scalar(),
    )


#: Where a case waits on the fund: a question can be asked (in review, or by a manager at
#: the decision) and a manager can reject it.
WAITING_ON_THE_FUND = (S.IN_REVIEW, S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL)


def reject_application(application, manager, reason):
    """A manager's refusal, with a reason the applicant reads in plain words."""
    check_staff(application, manager, DecisionError, (Role.MANAGER,))
    if application.status not in WAITING_ON_THE_FUND:
        raise DecisionError(_l("This case is not waiting for a decision."))
    if not (reason or "").strip():
        raise DecisionError(_l("A rejection gives the applicant a reason."))
    decision = Decision(
        application_id=application.id,
        manager_id=manager.id,
        outcome=DecisionOutcome.REJECT,
        currency=application.currency,
        round=decision_round(application),
    )
    decision.reason = reason.strip()
    db.session.add(decision)
    db.session.flush()
    change_status(application, S.REJECTED, actor=manager)
    notices.tell_applicant_side(application)
    return decision


def request_information(application, user, question):
    """Ask the applicant side a question; the case and its target clock wait for the answer.
    A manager asking at the decision stage records it as that round's decision."""
    check_staff(application, user, DecisionError)
    question = (question or "").strip()
    if not question:
        raise DecisionError(_l("Write the question the applicant should answer."))
    if application.status not in WAITING_ON_THE_FUND:
        raise DecisionError(_l("This case is not waiting for the fund."))
    if application.status != S.IN_REVIEW:
        if user.role != Role.MANAGER:
            raise DecisionError(_l("Once recommended, only a manager asks for more."))
        decision = Decision(
            application_id=application.id,
            manager_id=user.id,
            outcome=DecisionOutcome.REQUEST_INFO,
            currency=application.currency,
            round=decision_round(application),
        )
        decision.reason = question
        db.session.add(decision)
        if application.status == S.AWAITING_SECOND_APPROVAL:
            # The first approval lapses: the answer may change the case.
            change_status(application, S.IN_REVIEW, actor=user)
    message = Message(
        application_id=application.id,
        author_id=user.id,
        from_staff=True,
        body=question,
        is_question=True,
    )
    db.session.add(message)
    db.session.flush()
    audit.record(
        "message.posted", message, actor=user, fund=application.fund_id, case=application.uid
    )
    change_status(application, S.INFO_REQUESTED, actor=user)
    notices.tell_applicant_side(application)
    return message


class SelfApprovalError(DecisionError):
    """The person who recommended a case may not approve it."""


class SecondApproverError(DecisionError):
    """Above the threshold the second approval must come from a different manager."""


class ConflictOfInterestError(DecisionError):
    """The manager declared a conflict of interest on this case."""


def four_eyes_threshold(fund):
    """Approvals worth this much or more, in the reporting currency, need a second manager:
    the fund's own threshold, or the environment's where the fund sets none."""
    return limits.four_eyes_threshold(fund)


def _recommender_id(application):
    return (
        db.session.execute(
            sa.select(Review.reviewer_id)
            .where(Review.application_id == application.id)
            .order_by(Review.id.desc())
        )
        .scalars()
        .first()
    )


def _check_manager(application, manager):
    if manager.role != Role.MANAGER:
        raise DecisionError(_l("Only a manager decides."))
    if has_conflict(application, manager):
        raise ConflictOfInterestError(_l("You declared a conflict of interest on this case."))
    if not can_see(application, manager):
        raise DecisionError(_l("This case belongs to another fund."))
    if _recommender_id(application) == manager.id:
        raise SelfApprovalError(_l("The person who recommended a case may not approve it."))


@dataclass(frozen=True)
class Weighing:
    """What an approval was weighed with against the four-eyes threshold: its worth in the
    reporting currency, the table entry it was converted with (None in that currency),
    the threshold, and whether that entry is the approving manager's alone."""

    worth: Decimal
    currency: str
    entry_id: int | None
    threshold: Decimal
    own_rate: bool

    @property
    def needs_second(self):
        """Two managers: worth the threshold or more, or weighed at the approver's own rate."""
        return self.own_rate or self.worth >= self.threshold


def weigh_approval(application, amount, manager):
    """Weigh ``amount`` (the case's currency) against the four-eyes threshold, in the
    reporting currency at the fund's table rate of today. A rate is never its own
    reference: an entry the approving manager recorded and nobody else confirmed weighs
    nothing for them, and the approval needs a second manager whatever it is worth.
    Refused in words when no rate says what it is worth."""
    reporting = limits.reporting_currency()
    threshold = four_eyes_threshold(application.fund)
    if application.currency == reporting:
        return Weighing(quantize(amount), reporting, None, threshold, False)
    try:
        table = pools_services.table_rate(
            application.fund_id, application.currency, reporting, utcnow().date()
        )
        worth = convert(amount, table.rate)
    except (pools_services.MissingRateError, ConversionError) as exc:
        raise MissingRateError(
            _l(
                "No usable exchange rate from %(currency)s to %(reporting)s is recorded, so "
                "this approval cannot be weighed against the four-eyes threshold of "
                "%(threshold)s %(reporting)s: record the rate on Rates, then approve.",
                currency=application.currency,
                reporting=reporting,
                threshold=threshold,
            )
        ) from exc
    return Weighing(worth, reporting, table.entry.id, threshold, table.alone(manager.id))


def needs_four_eyes(application, amount, manager):
    """True when approving ``amount`` (the case's currency) needs a second manager: worth
    the four-eyes threshold or more in the reporting currency, or weighed at a rate
    ``manager`` recorded alone. Refused in words when no rate says what it is worth."""
    return weigh_approval(application, amount, manager).needs_second


def first_approval(application):
    """The approval a second manager confirms: the latest approval of the case, or None."""
    return (
        db.session.execute(
            sa.select(Decision)
            .where(
                Decision.application_id == application.id,
                Decision.outcome == DecisionOutcome.APPROVE,
            )
            .order_by(Decision.id.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def approval_draws(decision):
    """The split of pools ``decision`` proposed, as (pool id, amount in grant currency)."""
    return [
        tuple(row)
        for row in db.session.execute(
            sa.select(ApprovalDraw.pool_id, ApprovalDraw.amount)
            .where(ApprovalDraw.decision_id == decision.id)
            .order_by(ApprovalDraw.id)
        )
    ]


def approve_application(application, manager, amount, allocations):
    """Approve ``amount`` (in the application's currency) drawn from ``allocations``, a list
    of (pool id, amount in grant currency, rate).

    Worth the four-eyes threshold or more in the reporting currency, the first approval
    only records the decision and its split of pools, and waits; the second, by a
    different manager, commits the money. Returns the grant once money is committed, else
    None.
    """
    _check_manager(application, manager)
    if application.status not in (S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL):
        raise DecisionError(_l("This case is not waiting for a decision."))
    asked = amount_asked(application)
    if asked is not None and amount > asked:
        raise DecisionError(
            _l(
                "An approval is at most what the application asks: %(asked)s. A larger need "
                "is asked for again by the applicant.",
                asked=money_words(asked, application.currency),
            )
        )
    try:
        for each in (amount, *(a[1] for a in allocations)):
            check_units(each, application.currency)
    except MoneyError as exc:
        raise DecisionError(str(exc)) from exc
    pools = check_draws(application, amount, allocations)
    if application.status == S.RECOMMENDED:
        weighing = weigh_approval(application, amount, manager)
        if not weighing.needs_second:
            _lock_pools(pools)
        _record_approval(application, manager, amount, allocations, weighing)
        if weighing.needs_second:
            # Nothing is committed yet; a pool that cannot pay now is named at once.
            _check_room(application, pools, allocations)
            change_status(application, S.AWAITING_SECOND_APPROVAL, actor=manager)
            alerts.approval_waits(application, manager, _recommender_id(application))
            return None
    else:
        _check_confirms_first(application, manager, amount, allocations)
        _lock_pools(pools)
        _record_approval(application, manager, amount, allocations)
    return _commit_grant(application, manager, amount, allocations)


def _check_room(application, pools, allocations):
    """Refuse, naming the pool, a draw larger than what its pool has available now."""
    for pool_id, grant_amount, rate in allocations:
        pool = pools[pool_id]
        pool_amount = _pool_amount(pool, application, grant_amount, rate)
        if pool_amount > pool.available:
            raise InsufficientFundsError(
                _l(
                    "The pool %(pool)s has less than %(amount)s available.",
                    pool=pool.name,
                    amount=pool_amount,
                )
            )


def _check_confirms_first(application, manager, amount, allocations):
    """A second approval is another manager's, for the first's amount and split of pools."""
    first = first_approval(application)
    if first is not None and first.manager_id == manager.id:
        raise SecondApproverError(_l("A second, different manager must confirm this approval."))
    if first is None or amount != first.amount:
        raise DecisionError(_l("The second approval confirms the amount of the first."))
    _check_same_split(first, allocations)


def _commit_grant(application, manager, amount, allocations):
    """The grant, and its money drawn from each pool of ``allocations``."""
    grant = Grant(
        fund_id=application.fund_id,
        application_id=application.id,
        amount=amount,
        currency=application.currency,
        approved_at=utcnow(),
    )
    db.session.add(grant)
    db.session.flush()
    for pool_id, grant_amount, rate in allocations:
        allocate(grant, application, pool_id, grant_amount, manager, rate)
    change_status(application, S.APPROVED, actor=manager)
    alerts.grant_approved(grant)
    notices.tell_applicant_side(application)
    audit.record(
        "grant.approved",
        grant,
        actor=manager,
        case=application.uid,
        amount=amount,
        currency=grant.currency,
    )
    return grant


def _lock_pools(pools):
    """Lock every pool a commitment draws on, in one order (their ids), before anything
    refers to them: two approvals sharing pools then take turns instead of each holding
    one pool the other waits for."""
    for pool_id in sorted(pools):
        lock_row(Pool, pool_id)


def _check_same_split(first, allocations):
    """Refuse a second approval whose split of pools is not the first one's: money is
    committed only on a split two managers chose. (A first approval from before splits
    were recorded has none to compare with.)"""
    proposed = approval_draws(first)
    if not proposed:
        return
    if sorted(proposed) == sorted((pool_id, part) for pool_id, part, _rate in allocations):
        return
    names = {
        p.id: p.name
        for p in db.session.execute(
            sa.select(Pool).where(Pool.id.in_([pool_id for pool_id, _part in proposed]))
        ).scalars()
    }
    split = "; ".join(
        f"{names.get(pool_id, pool_id)} {part} {first.currency}" for pool_id, part in proposed
    )
    raise DecisionError(
        _l(
            "The second approval confirms the first manager's split of pools as it is "
            "(%(split)s): money is committed only on a split two managers chose. For "
            "another split, ask a question at the decision (the first approval then "
            "lapses) and decide the case again.",
            split=split,
        )
    )


def _record_approval(application, manager, amount, allocations, weighing=None):
    """The approval, its split of pools and, when it was weighed against the threshold,
    what it was weighed with."""
    decision = Decision(
        application_id=application.id,
        manager_id=manager.id,
        outcome=DecisionOutcome.APPROVE,
        amount=amount,
        currency=application.currency,
        round=decision_round(application),
    )
    if weighing is not None:
        decision.worth = weighing.worth
        decision.worth_currency = weighing.currency
        decision.weighed_rate_id = weighing.entry_id
        decision.threshold = weighing.threshold
    db.session.add(decision)
    db.session.flush()
    db.session.add_all(
        ApprovalDraw(
            decision_id=decision.id,
            pool_id=pool_id,
            amount=grant_amount,
            currency=application.currency,
        )
        for pool_id, grant_amount, _rate in allocations
    )
    db.session.flush()
    return decision


def approve_with_recorded_rates(application, manager, amount, draws):
    """:func:`approve_application` with ``draws`` as (pool id, amount in grant currency);
    each pool in another currency converts at the fund's recorded rate of the day."""
    pools = refuse_repeated_pools(application, [d[0] for d in draws])
    allocations = []
    for pool_id, grant_amount in draws:
        pool = pools[pool_id]
        rate = recorded_rate(application.fund_id, application.currency, pool.currency)
        allocations.append((pool_id, grant_amount, rate))
    return approve_application(application, manager, amount, allocations)


def confirm_first_approval(application, manager):
    """A second manager confirms the first approval as it stands, its amount and split of
    pools, from a list rather than the case page: :func:`approve_with_recorded_rates`
    with the first approval's figures, so every rule of the case page holds (another
    manager than the first, not the recommender, no conflict, the pools' room)."""
    if application.status != S.AWAITING_SECOND_APPROVAL:
        raise DecisionError(_l("This case waits for no second approval."))
    first = first_approval(application)
    if first is None:
        raise DecisionError(_l("This case waits for no second approval."))
    return approve_with_recorded_rates(application, manager, first.amount, approval_draws(first))
