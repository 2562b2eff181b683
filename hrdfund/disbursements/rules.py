"""The rules a payment is held to when it is entered, and again under the locks when it is
booked: the grant open, what the allocation still commits, a fee and exchange loss the pool
can cover, and an instalment that may be paid (not twice, not a tranche waiting for a
report, not a stipend month the same defender was already paid for on another grant).
"""

from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from ..cases.models import Application
from ..cases.models import ApplicationStatus as S
from ..cases.services import latest_report
from ..core import times
from ..core.extensions import db
from ..core.money import ConversionError, convert, figure, money_words, quantize
from ..grants import coverage
from ..grants.models import Grant, GrantStatus, Instalment, PaymentPlan, PlanKind
from ..ledger.balances import PAID, allocation_balances, instalments_paid
from ..ledger.models import Disbursement
from ..ledger.reversals import taken_back
from .bounds import PaymentError

#: A payment may cover an instalment by this much more than planned (rounding of rates).
COVER_TOLERANCE = Decimal("1.00")
CENT = Decimal("0.01")


def instalment_unsettled(paid):
    """SQL condition: an instalment that ``paid`` (what its payments paid, net of their
    reversals) leaves unpaid, or short by more than the tolerance."""
    return sa.or_(paid < PAID, paid < Instalment.amount - COVER_TOLERANCE)


def standing():
    """SQL condition: the payment row is not a reversal, and something of it stands: not
    reversed in full (a payment reversed in part still waits for its receipt and report,
    and still counts as paid for the rest)."""
    return sa.and_(
        Disbursement.reversal_of_id.is_(None),
        taken_back(Disbursement, "standing: reversals") < Disbursement.amount,
    )


def remaining_commitment(allocation):
    """What the allocation still commits: amount, less releases and payments."""
    for alloc, released, paid in allocation_balances(allocation.grant_id):
        if alloc.id == allocation.id:
            return alloc.amount - released - paid
    return Decimal("0.00")


def describe(payment):
    """A payment as finance names it: reference, date and case code."""
    return _l(
        "payment %(ref)s of %(day)s on case %(case)s",
        ref=payment.reference or payment.uid,
        day=payment.paid_on.isoformat(),
        case=payment.grant.application.uid,
    )


def lock_defender(application):
    """On PostgreSQL, serialise payments to one defender across grants and pools."""
    if application.defender_key and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"defender:{application.defender_key}"},
        )


def check_open_for_payment(grant, application):
    """Refuse a payment on a grant that is closed, or on a case no longer approved."""
    if grant.status != GrantStatus.ACTIVE or application.status not in (S.APPROVED, S.PAYING):
        raise PaymentError(_l("This grant is closed: no payment can be added."))


def check_priced(grant, application, allocation, pool, instalment, paid, currency, rate, fee):
    """Price a payment of ``paid`` (``currency``) at ``rate`` and hold it to every rule
    (:func:`check_payment`); returns what it costs the pool (the amount, then the exchange
    difference)."""
    amount, covered, difference = _priced(grant, allocation, pool, currency, paid, rate)
    remaining = remaining_commitment(allocation)
    if instalment is not None:
        amount, difference = _last_cent(remaining, amount, difference)
    check_payment(
        remaining,
        grant,
        application,
        pool,
        instalment,
        amount,
        covered,
        fee + max(difference, Decimal(0)),
        slack=cover_slack(grant, allocation, currency, rate),
        converted=_converted(grant, pool, currency),
    )
    return amount, difference


#: How a payment's worth in the grant's currency was reached (:func:`_converted`).
APPROVAL, PAYMENT = "approval", "payment"


def _converted(grant, pool, currency):
    """How a payment in ``currency`` reaches the grant's currency: not at all (``None``:
    paid in it), at the rate the grant was approved at (``APPROVAL``: paid in the pool's
    currency), or at the payment's own rate first (``PAYMENT``)."""
    if currency == grant.currency:
        return None
    return APPROVAL if currency == pool.currency else PAYMENT


def _last_cent(remaining, amount, difference):
    """An instalment's payment that passes what the allocation still commits by one cent
    settles the commitment, the cent being an exchange difference: each instalment's price
    in the pool's currency is rounded on its own, so two instalments can add up to a cent
    more than the whole grant's price, and the last would otherwise never be paid in full.
    (A payment on no instalment a cent over is refused, as any over the commitment is.)
    ``remaining``: what the allocation still commits."""
    if remaining > 0 and remaining < amount <= remaining + CENT:
        return remaining, difference + (amount - remaining)
    return amount, difference


def cover_slack(grant, allocation, currency_paid, rate):
    """By how much a payment may cover an instalment past its amount, in the grant's
    currency: ``COVER_TOLERANCE``, or a cent of the currency paid where that is worth more
    (a cent of euros is some fifty Colombian pesos: no sum in euros meets a sum in pesos to
    the peso)."""
    if currency_paid == grant.currency:
        return COVER_TOLERANCE
    try:
        cent = CENT * rate / allocation.fx_rate
    except ArithmeticError:
        return COVER_TOLERANCE
    return max(COVER_TOLERANCE, quantize(cent))


def _priced(grant, allocation, pool, currency_paid, amount_paid, rate):
    """What the payment costs the pool and settles: (amount, covered in the grant's currency,
    exchange difference)."""
    try:
        cost = convert(amount_paid, rate)
        if currency_paid == grant.currency:
            # The grant's own currency: the commitment it settles is priced at the
            # allocation's rate; the rest is the exchange difference.
            amount, covered = convert(amount_paid, allocation.fx_rate), amount_paid
        else:
            amount, covered = cost, quantize(cost / allocation.fx_rate)
    except ConversionError as exc:
        raise PaymentError(str(exc)) from None
    if amount <= 0:
        raise PaymentError(_l("The amount is too small to record."))
    return amount, covered, cost - amount


def check_payment(
    remaining,
    grant,
    application,
    pool,
    instalment,
    amount,
    covered,
    extra,
    slack=COVER_TOLERANCE,
    converted=None,
):
    """Every rule a payment is held to when it is entered, and again under the locks when
    it is booked: within what the grant still commits (``remaining``, of the allocation),
    a fee and exchange loss the pool can cover, and an instalment that may be paid, for no
    more than is still due on it
    (``slack``: see :func:`cover_slack`; ``converted``: how a payment in another currency
    than the grant's was weighed, :func:`_converted`)."""
    if amount > remaining:
        several = len(grant.allocations) > 1
        raise PaymentError(
            _l(
                "This payment (%(amount)s) is more than the grant still has committed in "
                "the pool %(pool)s (%(remaining)s). A grant drawn from several pools is "
                "paid from each for its share: record one payment per pool.",
                amount=money_words(amount, pool.currency),
                pool=pool.name,
                remaining=money_words(remaining, pool.currency),
            )
            if several
            else _l(
                "This payment (%(amount)s) is more than the grant still has committed in "
                "the pool %(pool)s (%(remaining)s).",
                amount=money_words(amount, pool.currency),
                pool=pool.name,
                remaining=money_words(remaining, pool.currency),
            )
        )
    if extra > 0 and extra > pool.available:
        raise PaymentError(
            _l(
                "The pool %(pool)s lacks the %(extra)s %(currency)s the fee and exchange "
                "difference need.",
                pool=pool.name,
                extra=extra,
                currency=pool.currency,
            )
        )
    if instalment is not None:
        check_instalment(grant, application, instalment, covered, slack, converted)
    else:
        _check_plan_followed(grant)


class PlanNotFollowedError(PaymentError):
    """A payment naming no instalment on a grant whose plan still has one due; ``seq``
    is that instalment's number."""

    def __init__(self, message, seq):
        super().__init__(message)
        self.seq = seq


def _check_plan_followed(grant):
    """A grant paid by a plan is paid instalment by instalment: a payment that names none
    while one is still due would leave that instalment to pay, and be paid again. Once
    every instalment is settled, a payment beyond the plan names none."""
    net = instalments_paid(grants=sa.select(sa.literal(grant.id)))
    due = db.session.execute(
        sa.select(Instalment.seq)
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .outerjoin(net, net.c.instalment_id == Instalment.id)
        .where(
            PaymentPlan.grant_id == grant.id,
            instalment_unsettled(sa.func.coalesce(net.c.paid, 0)),
        )
        .order_by(Instalment.seq)
        .limit(1)
    ).scalar()
    if due is not None:
        raise PlanNotFollowedError(
            _l(
                "This grant is paid by its plan and instalment %(seq)d is still due: choose"
                " the instalment this payment pays.",
                seq=due,
            ),
            due,
        )


def check_instalment(
    grant, application, instalment, covered, slack=COVER_TOLERANCE, converted=None
):
    """Refuse paying an instalment twice or past what is still due on it, a tranche held
    for a report, or a stipend month the same defender was already paid for on any
    grant."""
    plan = instalment.plan
    if plan.grant_id != grant.id:
        raise PaymentError(_l("This instalment belongs to another grant."))
    _check_not_paid(instalment, covered, grant.currency, slack, converted)
    if plan.hold_for_report and instalment.seq > 1:
        _check_report_since_first_payment(grant, application, instalment)
    if plan.kind == PlanKind.STIPEND and application.defender_key:
        _check_month_not_paid_elsewhere(application, instalment)
    if plan.kind == PlanKind.STIPEND:
        _check_month_not_paid_by_another_fund(application, instalment)


def _check_not_paid(instalment, covered, currency, slack, converted):
    """Refuse covering ``instalment`` (in ``currency``, the grant's) past its amount, net of
    the payments (less their reversals) that paid it already: "already paid" once they
    paid it whole, else how much is still due. The first payment was let through whatever
    it covered until this refused it too."""
    rows = (
        db.session.execute(
            sa.select(Disbursement)
            .where(Disbursement.instalment_id == instalment.id)
            .order_by(Disbursement.id)
        )
        .scalars()
        .all()
    )
    # Net of reversals: a payment taken back in part still pays the rest of its instalment.
    done = sum(
        ((-1 if p.reversal_of_id else 1) * quantize(p.amount / p.allocation.fx_rate) for p in rows),
        start=Decimal("0.00"),
    )
    # The instalment's first payment may pass its amount by ``slack``; any payment after
    # one (even one reversed since) by the tolerance alone, as `check` weighs an
    # instalment paid in several payments.
    first = not rows
    if done + covered <= instalment.amount + (slack if first else COVER_TOLERANCE):
        return
    if not first and done >= instalment.amount - COVER_TOLERANCE:
        latest = [p for p in rows if p.reversal_of_id is None][-1]
        raise PaymentError(
            _l(
                "Instalment %(seq)d is already paid: %(payment)s.",
                seq=instalment.seq,
                payment=describe(latest),
            )
        )
    words = dict(
        covered=figure(quantize(covered)),
        currency=currency,
        seq=instalment.seq,
        due=figure(max(instalment.amount - done, Decimal("0.00"))),
    )
    if converted == PAYMENT:
        raise PaymentError(
            _l(
                "At this payment's rate it covers %(covered)s %(currency)s of instalment"
                " %(seq)d, where %(due)s %(currency)s is still due: pay at most that, or pay"
                " the rest against the next instalment.",
                **words,
            )
        )
    if converted == APPROVAL:
        raise PaymentError(
            _l(
                "This payment covers %(covered)s %(currency)s of instalment %(seq)d at the "
                "rate the grant was approved at, where %(due)s %(currency)s is still due: pay "
                "at most that, or pay the rest against the next instalment. To pay what is "
                "due at today's rate, pay it in %(currency)s: the rate's move is then an "
                "exchange difference.",
                **words,
            )
        )
    raise PaymentError(
        _l(
            "This payment covers %(covered)s %(currency)s of instalment %(seq)d, where "
            "%(due)s %(currency)s is still due: pay at most that, or pay the rest against "
            "the next instalment.",
            **words,
        )
    )


def _check_report_since_first_payment(grant, application, instalment):
    """Refuse a later tranche until the applicant reported after the grant's first payment."""
    first = db.session.execute(
        sa.select(sa.func.min(Disbursement.created_at)).where(
            Disbursement.grant_id == grant.id, standing()
        )
    ).scalar()
    report = latest_report(application)
    if first is None or report is None or report.submitted_at < first:
        raise PaymentError(
            _l(
                "Tranche %(seq)d waits for the applicant's report on the support so far.",
                seq=instalment.seq,
            )
        )


def _check_month_not_paid_by_another_fund(application, instalment):
    """Refuse a stipend month that another member fund sharing the stay (an accepted
    referral, either way) paid already: the defender is paid once for each month of it,
    whichever fund pays. Said by that fund's name and the month only, as the coverage of
    the shared stay shows them."""
    fund = (
        coverage.paid_elsewhere([application.id])
        .get(application.id, {})
        .get(instalment.period_month)
    )
    if fund is not None:
        raise PaymentError(
            _l(
                "%(fund)s paid %(month)s of this stay already: the defender is paid once"
                " for each month.",
                fund=fund,
                month=times.month(instalment.period_month),
            )
        )


def _check_month_not_paid_elsewhere(application, instalment):
    """Refuse a stipend month the same defender was already paid for, on any grant of the
    fund."""
    net = instalments_paid()
    other = db.session.execute(
        sa.select(Disbursement)
        .join(Instalment, Instalment.id == Disbursement.instalment_id)
        .join(net, net.c.instalment_id == Instalment.id)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(
            Application.fund_id == application.fund_id,
            Application.defender_key == application.defender_key,
            Instalment.period_month == instalment.period_month,
            Instalment.id != instalment.id,
            Disbursement.reversal_of_id.is_(None),
            net.c.paid >= PAID,
        )
        .order_by(Disbursement.id.desc())
        .limit(1)
    ).scalar()
    if other is not None:
        raise PaymentError(
            _l(
                "This defender was already paid for %(month)s: %(payment)s.",
                month=times.month(instalment.period_month),
                payment=describe(other),
            )
        )
