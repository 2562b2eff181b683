"""Services on payments: recording one, reversing one, and the applicant's receipt.

Each checks its rules, mutates, flushes and audits; the caller commits. A payment takes
the pool's lock (and, on PostgreSQL, a lock on the defender), so two payments running at
once cannot both pass the checks that only one of them may pass.
"""

from decimal import Decimal

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..cases import notices
from ..cases.models import ApplicationStatus as S
from ..cases.services import change_status
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import MoneyError, check_units, money_words, quantize
from ..core.sql import lock_row, summed
from ..core.times import FIRST_DAY, TOO_EARLY, latest_day
from ..directory import services as directory
from ..grants.models import Grant, GrantStatus, Instalment, PaymentPlan
from ..ledger.balances import allocations_of
from ..ledger.models import Disbursement, Release
from ..pools.models import Pool
from .bounds import (  # noqa: F401  (PaymentError is this module's too: views catch it here)
    Bounds,
    PaymentError,
    alert_second_persons,
    bounds_passed,
    payment_rate,
)
from .models import HeldPayment, HoldStatus
from .rules import check_open_for_payment, check_priced, lock_defender


def stands(disbursement):
    """True for a payment (not a reversal) of which something stands: not reversed in
    full (a payment may be reversed in parts)."""
    if disbursement.reversal_of_id is not None:
        return False
    back = db.session.execute(
        sa.select(summed(Disbursement.amount)).where(Disbursement.reversal_of_id == disbursement.id)
    ).scalar()
    return back < disbursement.amount


def earlier_submission(idempotency_key):
    """What a form with this one-time key already recorded: its payment, or the payment
    still held for a second person; None for a new form."""
    existing = db.session.execute(
        sa.select(Disbursement).where(Disbursement.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    return db.session.execute(
        sa.select(HeldPayment).where(HeldPayment.idempotency_key == idempotency_key)
    ).scalar_one_or_none()


def record_disbursement(
    grant,
    actor,
    *,
    allocation,
    instalment,
    payee_type,
    payee_details,
    channel,
    amount_paid,
    currency_paid,
    paid_on,
    idempotency_key,
    rate=None,
    rate_source=None,
    rate_reason=None,
    fee=Decimal("0.00"),
    reference=None,
    proof_document_id=None,
    payee_entry=None,
):
    """Record one payment of ``amount_paid`` (``currency_paid``) from ``allocation``.

    Returns ``(row, created)``: a form sent twice with the same ``idempotency_key``
    returns what the first one recorded, and records nothing. The amount in the pool's
    currency settles part of the commitment; what the rate's move since approval adds or
    saves is the exchange difference, and the fee is its own entry too. Neither may take
    the pool below zero, and the payment may not exceed what the allocation still commits.

    A payment beyond a bound one person may not pass (see :func:`bounds_passed`) is not
    booked: the row returned is a :class:`HeldPayment` that moves no money until a second
    person confirms it (``holds.confirm_held_payment``).

    With ``payee_entry`` (an entry of the directory), the payee's type and details are
    the entry's: it must be one the actor's fund sees and finance can pay.
    """
    if actor.role != Role.FINANCE or actor.fund_id != grant.fund_id:
        raise PaymentError(_l("Only finance records payments."))
    if payee_entry is not None:
        try:
            payee_type, payee_details = directory.payee_from(payee_entry, actor)
        except directory.DirectoryError as exc:
            raise PaymentError(exc.args[0]) from exc
    # Payments and closes of one grant take turns; the key is looked up once the turn is
    # ours, so the same form sent twice at once finds the payment the first one recorded.
    lock_row(Grant, grant.id)
    existing = earlier_submission(idempotency_key)
    if existing is not None:
        return existing, False
    application = grant.application
    _check_payable(grant, application, allocation, (amount_paid, currency_paid), fee, paid_on)
    pool, bounds, priced, amount, difference = _priced_under_locks(
        grant,
        application,
        allocation,
        instalment,
        actor,
        amount_paid,
        currency_paid,
        paid_on,
        (rate, rate_source, rate_reason),
        fee,
    )
    fields = {
        "grant_id": grant.id,
        "allocation_id": allocation.id,
        "instalment_id": instalment.id if instalment is not None else None,
        "payee_type": payee_type,
        "channel": channel,
        "amount_paid": amount_paid,
        "currency_paid": currency_paid,
        "amount": amount,
        **priced.columns(),
        **bounds.columns(),
        "fee_amount": fee,
        "exchange_difference": difference,
        "paid_on": paid_on,
        "proof_document_id": proof_document_id,
        "idempotency_key": idempotency_key,
        "recorded_by_id": actor.id,
    }
    texts = {
        "payee_details": (payee_details or "").strip() or None,
        "rate_reason": priced.reason,
        "reference": (reference or "").strip() or None,
    }
    passed = bounds_passed(amount, fee, difference, bounds, priced.beyond, priced.own)
    if passed:
        return _hold(grant, application, pool, fields, texts, actor, " ".join(passed)), True
    return book_payment(grant, application, pool, fields, texts, actor), True


def _check_payable(grant, application, allocation, paid, fee, paid_on):
    """Refuse a payment on a closed grant, from a pool that does not fund it, of an
    amount (``paid``: amount and currency) or fee that cannot be paid (below zero, or in
    cents of a currency that has none), or dated on a day still to come."""
    amount_paid, currency_paid = paid
    check_open_for_payment(grant, application)
    if paid_on > latest_day():
        raise PaymentError(_l("The date of payment cannot be in the future."))
    if paid_on < FIRST_DAY:
        raise PaymentError(TOO_EARLY)
    if allocation.grant_id != grant.id:
        raise PaymentError(_l("This pool does not fund this grant."))
    if amount_paid <= 0 or fee < 0:
        raise PaymentError(_l("The amount must be above zero and the fee not below zero."))
    for field, amount, currency in (
        ("amount_paid", amount_paid, currency_paid),
        ("fee", fee, allocation.pool.currency),
    ):
        try:
            check_units(amount, currency)
        except MoneyError as exc:
            raise PaymentError(str(exc), field) from exc


def _priced_under_locks(
    grant,
    application,
    allocation,
    instalment,
    actor,
    amount_paid,
    currency_paid,
    paid_on,
    entered_rate,
    fee,
):
    """Under the pool's lock (and the defender's), the rate the payment is made at (the
    rate, source and reason entered, or the fund's table), weighed against the bounds in
    force, and what it costs the pool: (pool, bounds, rate, amount, exchange difference).
    Every rule a payment is held to is checked."""
    pool = lock_row(Pool, allocation.pool_id)
    lock_defender(application)
    bounds = Bounds.in_force()
    rate, rate_source, rate_reason = entered_rate
    priced = payment_rate(
        grant.fund_id,
        currency_paid,
        pool.currency,
        paid_on,
        rate,
        rate_source,
        rate_reason,
        actor,
        bounds,
    )
    amount, difference = check_priced(
        grant,
        application,
        allocation,
        pool,
        instalment,
        amount_paid,
        currency_paid,
        priced.rate,
        fee,
    )
    return pool, bounds, priced, amount, difference


def _hold(grant, application, pool, fields, texts, actor, reasons):
    """Keep the payment for a second person, who is told one waits; it moves no money."""
    held = HeldPayment(**fields, reasons=reasons, status=HoldStatus.HELD)
    for name, value in texts.items():
        setattr(held, name, value)
    db.session.add(held)
    db.session.flush()
    alert_second_persons(held, application)
    audit.record(
        "payment.held",
        held,
        actor=actor,
        fund=grant.fund_id,
        grant=grant.uid,
        pool=pool.id,
        amount=held.amount,
        currency=pool.currency,
        fee=held.fee_amount,
        exchange_difference=held.exchange_difference,
        rate=held.fx_rate,
        bounds=held.reasons,
    )
    return held


def book_payment(grant, application, pool, fields, texts, actor, confirmed_by=None):
    """Write the payment row; ``actor`` is who books it (who entered it, or the second
    person confirming it, then also ``confirmed_by``). The applicant side is sent a
    notice; a payment held for a second person sends none until it is booked."""
    payment = Disbursement(pool_id=pool.id, confirmed_by_id=confirmed_by, **fields)
    for name, value in texts.items():
        setattr(payment, name, value)
    db.session.add(payment)
    db.session.flush()
    if application.status == S.APPROVED:
        change_status(application, S.PAYING, actor=actor)
    audit.record(
        "payment.recorded",
        payment,
        actor=actor,
        fund=grant.fund_id,
        grant=grant.uid,
        pool=pool.id,
        amount=payment.amount,
        currency=pool.currency,
        second_person=confirmed_by is not None,
    )
    notices.tell_applicant_side(application)
    return payment


def reverse_disbursement(payment, actor, reason, amount=None, fee_refunded=False):
    """Record that ``payment`` failed, came back or was wrong, in whole or (``amount``, in
    the pool's currency) in part: a reversal row linked to it. A payment may be reversed
    in several parts (a bank returns some of it, later the payee gives back more), never
    past what it paid; its fee is given back once at most."""
    if actor.role != Role.FINANCE or actor.fund_id != payment.grant.fund_id:
        raise PaymentError(_l("Only finance reverses payments."))
    if payment.reversal_of_id is not None:
        raise PaymentError(_l("A reversal cannot itself be reversed."))
    lock_row(Pool, payment.pool_id)
    earlier = _earlier_reversals(payment)
    left = payment.amount - sum((r.amount for r in earlier), start=Decimal("0.00"))
    if left <= 0:
        raise PaymentError(
            _l("This payment was already reversed on %(day)s.", day=earlier[-1].paid_on.isoformat())
        )
    reason = (reason or "").strip()
    if not reason:
        raise PaymentError(_l("Say why the payment is reversed."))
    try:
        check_units(amount, payment.pool.currency)
    except MoneyError as exc:
        raise PaymentError(str(exc), "amount") from exc
    amount = left if amount is None else amount
    if not 0 < amount <= left:
        raise PaymentError(
            _l(
                "A reversal takes back more than zero and at most the %(amount)s paid.",
                amount=money_words(payment.amount, payment.pool.currency),
            )
            if not earlier
            else _l(
                "A reversal takes back more than zero and at most the %(amount)s of this"
                " payment that has not come back yet.",
                amount=money_words(left, payment.pool.currency),
            )
        )
    refunded = next((r for r in earlier if r.fee_amount), None)
    if fee_refunded and refunded is not None:
        raise PaymentError(
            _l(
                "The fee of this payment was given back already, by its reversal of %(amount)s"
                " on %(day)s.",
                amount=money_words(refunded.amount, payment.pool.currency),
                day=refunded.paid_on.isoformat(),
            )
        )
    fee_back = payment.fee_amount if fee_refunded else Decimal("0.00")
    paid_back, difference_back = _taken_back_shares(payment, earlier, amount, left)
    closed = payment.grant.status != GrantStatus.ACTIVE
    _check_gain_covered(payment, amount, fee_back + difference_back, closed)
    reversal = _reversal_row(payment, actor, reason, amount, paid_back, fee_back, difference_back)
    db.session.add(reversal)
    if closed:
        # No payment follows on a closed grant: the money that came back returns to the pool.
        db.session.add(
            Release(
                allocation_id=payment.allocation_id,
                amount=amount,
                reason=reason[:200],
                created_by_id=actor.id,
            )
        )
    db.session.flush()
    audit.record(
        "payment.reversed",
        reversal,
        actor=actor,
        fund=payment.grant.fund_id,
        reverses=payment.uid,
        amount=amount,
        fee_refunded=bool(fee_refunded),
    )
    return reversal


def _earlier_reversals(payment):
    """The reversals of ``payment`` recorded so far, oldest first, read afresh (under the
    pool's lock, so that two reversals together never take back more than it paid)."""
    return (
        db.session.execute(
            sa.select(Disbursement)
            .where(Disbursement.reversal_of_id == payment.id)
            .order_by(Disbursement.id)
            .execution_options(populate_existing=True)
        )
        .scalars()
        .all()
    )


def _taken_back_shares(payment, earlier, amount, left):
    """What a reversal of ``amount`` (of the ``left`` not yet taken back) takes back of what
    was paid, in the currency paid, and of the exchange difference. Each is worked out on
    the share of the payment taken back so far, this part included, less what the earlier
    parts took: the parts add up to the whole, the last taking what is left. A part worth
    less than a cent of what was paid, or one that would leave nothing of it for the rest,
    is refused."""
    zero = Decimal("0.00")
    paid_before = sum((r.amount_paid for r in earlier), start=zero)
    difference_before = sum((r.exchange_difference for r in earlier), start=zero)
    so_far = (payment.amount - left + amount) / payment.amount
    paid_back = payment.amount_paid - paid_before
    difference_back = quantize(payment.exchange_difference * so_far) - difference_before
    if amount == left:
        return paid_back, payment.exchange_difference - difference_before
    part = quantize(payment.amount_paid * so_far) - paid_before
    if part <= 0:
        raise PaymentError(
            _l(
                "This part is worth less than a cent of the %(currency)s the payment was made"
                " in: take back more of it at once.",
                currency=payment.currency_paid,
            )
        )
    if part >= paid_back:
        raise PaymentError(
            _l(
                "So little of this payment is left that it can only be taken back whole:"
                " %(amount)s.",
                amount=money_words(left, payment.pool.currency),
            )
        )
    return part, difference_back


def _check_gain_covered(payment, amount, given_back, closed):
    """Refuse a reversal whose fee and exchange difference given back (``given_back``) take
    from the pool more than it has available."""
    # A reversal gives back the fee (when refunded) and the exchange difference; when the
    # payment had gained on the rate, taking that gain back is a cost the pool must cover.
    # On a closed grant the money that came back is released at once, and covers it first.
    room = payment.pool.available + (amount if closed else 0)
    if given_back < 0 and room < -given_back:
        raise PaymentError(
            _l(
                "Reversing this payment takes back an exchange gain of %(gain)s that the pool"
                " no longer has available.",
                gain=-given_back,
            )
        )


def _reversal_row(payment, actor, reason, amount, paid_back, fee_back, difference_back):
    """A reversal row of ``payment``, taking back ``amount`` (``paid_back`` of what was
    paid), on today's date."""
    return Disbursement(
        grant_id=payment.grant_id,
        allocation_id=payment.allocation_id,
        pool_id=payment.pool_id,
        instalment_id=payment.instalment_id,
        payee_type=payment.payee_type,
        channel=payment.channel,
        amount_paid=paid_back,
        currency_paid=payment.currency_paid,
        amount=amount,
        fx_rate=payment.fx_rate,
        rate_source=payment.rate_source,
        rate_set_by_id=payment.rate_set_by_id,
        fee_amount=fee_back,
        exchange_difference=difference_back,
        paid_on=utcnow().date(),
        reference=payment.reference,
        reversal_of_id=payment.id,
        reason=reason,
        recorded_by_id=actor.id,
    )


def grant_instalments(grant):
    """The grant's planned instalments in order, or an empty list without a plan."""
    return (
        db.session.execute(
            sa.select(Instalment)
            .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
            .where(PaymentPlan.grant_id == grant.id)
            .order_by(Instalment.seq)
        )
        .scalars()
        .all()
    )


def grant_allocations(grant):
    """The grant's allocations with the pool each draws on."""
    return allocations_of(grant.id)
