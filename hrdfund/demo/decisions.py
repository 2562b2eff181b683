"""Decisions: the amount approved, the reviewer's assessment, the managers' decisions (four
eyes above the threshold, weighed at the table's rate of the day) and each approval's split
of pools."""

from decimal import ROUND_DOWN, Decimal

from ..cases.models import ApplicationStatus as S
from ..cases.models import Decision, DecisionOutcome
from ..core.money import convert, quantize
from ..grants.models import ApprovalDraw
from ..reviews.models import Recommendation, Review, RiskLevel
from . import parts

REJECTION_REASON = "The request is outside what the fund can support (demo)"


def granted_amount(world, budget, minimum):
    """The amount approved: often all, sometimes part (never below ``minimum``)."""
    rng = world.rng
    requested, months = budget["requested"], budget["months"]
    if rng.random() < 0.7:
        return requested
    share = Decimal(rng.randint(60, 90)) / 100
    unit = Decimal(10)
    if months:
        amount = (budget["monthly"] * share / unit).to_integral_value(ROUND_DOWN) * unit
        amount *= months
    else:
        amount = (requested * share / unit).to_integral_value(ROUND_DOWN) * unit
    return quantize(amount) if amount >= max(minimum, unit) else requested


def clear_of_threshold(world, granted, months, least, most):
    """``granted``, or a little less when the month's rate alone would decide whether
    it reaches the four-eyes threshold: every demo approval is then on one side of it
    at any rate of the series, as the managers' rule reads it on the day."""
    if granted * least >= world.threshold or granted * most < world.threshold:
        return granted
    unit = Decimal(10)
    below = world.threshold / most * Decimal("0.99")
    if months:
        below = (below / months / unit).to_integral_value(ROUND_DOWN) * unit * months
    else:
        below = (below / unit).to_integral_value(ROUND_DOWN) * unit
    return quantize(below) if below >= unit else granted


def add_staff_side(world, app_id, times, budget, granted, currency, owner):
    """Questions and answers, the reviewer's assessment and the managers' decisions; return
    the ids of the approvals."""
    for previous, step, at in times["steps"]:
        if step == S.INFO_REQUESTED:
            parts.add_message(
                world, app_id, world.reviewer, True, at, "Could you send a quote? (demo)"
            )
        elif previous == S.INFO_REQUESTED and owner is not None:
            parts.add_message(world, app_id, owner, False, at, "The quote is attached now (demo)")
    if S.RECOMMENDED in times:
        _add_review(world, app_id, times, budget, granted, currency)
    return _add_decisions(world, app_id, times, granted, currency)


def _add_review(world, app_id, times, budget, granted, currency):
    """The reviewer's assessment and recommendation."""
    rejected = S.REJECTED in times
    amount = None if rejected else (granted or budget["requested"])
    if rejected:
        recommendation = Recommendation.REJECT
    elif amount < budget["requested"]:
        recommendation = Recommendation.APPROVE_PARTLY
    else:
        recommendation = Recommendation.APPROVE
    row_uid = world.uid()
    world.tables[Review].add(
        {
            "uid": row_uid,
            "application_id": app_id,
            "reviewer_id": world.reviewer,
            "risk_level": world.rng.choices(list(RiskLevel), (10, 35, 40, 15))[0],
            "recommendation": recommendation,
            "recommended_amount": amount,
            "currency": currency,
            "assessment": world.enc(
                "reviews",
                "assessment",
                row_uid,
                "Threat and work confirmed by the references the reviewer reached (demo)"
                if not rejected
                else "Outside the fund's mandate (demo)",
            ),
            "created_at": times[S.RECOMMENDED],
        }
    )


def _decided_by(world, app_id, times):
    """(manager, outcome, time) of each decision on the case, in order."""
    decided = []
    if S.REJECTED in times:
        manager = world.managers[app_id % 2]
        decided.append((manager, DecisionOutcome.REJECT, times[S.REJECTED]))
    if S.AWAITING_SECOND_APPROVAL in times:
        # Four eyes: a first manager approves, the other one confirms.
        decided.append(
            (world.managers[0], DecisionOutcome.APPROVE, times[S.AWAITING_SECOND_APPROVAL])
        )
        if S.APPROVED in times:
            decided.append((world.managers[1], DecisionOutcome.APPROVE, times[S.APPROVED]))
    elif S.APPROVED in times:
        decided.append((world.managers[app_id % 2], DecisionOutcome.APPROVE, times[S.APPROVED]))
    return decided


def _add_decisions(world, app_id, times, granted, currency):
    """The managers' decision rows; return the ids of the approvals."""
    # The first approval was weighed against the threshold at the table's rate of its
    # day (one a manager confirmed) and keeps what it was weighed with.
    weighed = dict.fromkeys(("worth", "worth_currency", "weighed_rate_id", "threshold"))
    decided = times.get(S.AWAITING_SECOND_APPROVAL) or times.get(S.APPROVED)
    weighing = weighed
    if granted is not None and decided is not None:
        rate, entry_id = world.rates.entry(world.reporting, currency, decided.date())
        weighing = {
            "worth": convert(granted, rate),
            "worth_currency": world.reporting,
            "weighed_rate_id": entry_id,
            "threshold": world.threshold,
        }
    approvals = []
    for manager, outcome, at in _decided_by(world, app_id, times):
        row_uid = world.uid()
        rejected = outcome == DecisionOutcome.REJECT
        if not rejected:
            approvals.append(world.tables[Decision].next_id)
        world.tables[Decision].add(
            {
                **(weighing if not rejected and len(approvals) == 1 else weighed),
                "uid": row_uid,
                "application_id": app_id,
                "manager_id": manager,
                "outcome": outcome,
                "amount": None if rejected else granted,
                "currency": currency,
                "round": 1,
                "reason": world.enc("decisions", "reason", row_uid, REJECTION_REASON)
                if rejected
                else None,
                "created_at": at,
            }
        )
    return approvals


def add_approval_draws(world, approvals, shares, currency):
    """Each approval's split of pools: the shares the grant draws, or for a case still
    waiting for its second manager, the split the first one proposed."""
    for decision_id in approvals:
        for pool, share, _rate, _pool_amount in shares:
            world.tables[ApprovalDraw].add(
                {
                    "decision_id": decision_id,
                    "pool_id": pool.id,
                    "amount": share,
                    "currency": currency,
                }
            )
