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
from ..cases.models import Application
from ..cases.models import ApplicationStatus as S
from ..cases.services import change_status, latest_report
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import ConversionError, convert, quantize
from ..core.sql import lock_row
from ..grants.models import Grant, GrantStatus, Instalment, PaymentPlan, PlanKind
from ..ledger.balances import (
    PAID,
    allocation_balances,
    allocations_of,
    instalments_paid,
    pool_available,
)
from ..ledger.models import Disbursement, Receipt, Release
from ..pools.models import Pool
from .bounds import (  # noqa: F401  (PaymentError and SECOND_PERSONS are this module's too)
    SECOND_PERSONS,
    Bounds,
    PaymentError,
    alert_second_persons,
    bounds_passed,
    payment_rate,
)
from .models import HeldPayment, HoldStatus

#: A payment may cover an instalment by this much more than planned (rounding of rates).
COVER_TOLERANCE = Decimal("1.00")


class AlreadyConfirmedError(Exception):
    """This payment's receipt was confirmed before."""


class NotConfirmableError(Exception):
    """A reversal row, or a payment that was reversed, did not reach anyone."""


def stands(disbursement):
    """True for a payment that is not a reversal and was not reversed."""
    if disbursement.reversal_of_id is not None:
        return False
    reversal = db.session.execute(
        sa.select(Disbursement.id).where(Disbursement.reversal_of_id == disbursement.id)
    ).first()
    return reversal is None


def standing():
    """SQL condition: the payment row is not a reversal and was not reversed."""
    reversed_ids = sa.select(Disbursement.reversal_of_id).where(
        Disbursement.reversal_of_id.is_not(None)
    )
    return sa.and_(Disbursement.reversal_of_id.is_(None), Disbursement.id.not_in(reversed_ids))


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


def _lock_defender(application):
    """On PostgreSQL, serialise payments to one defender across grants and pools."""
    if application.defender_key and db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"defender:{application.defender_key}"},
        )


def _check_instalment(grant, application, instalment, allocation, covered):
    """Refuse paying an instalment twice, a tranche held for a report, or a stipend month
    the same defender was already paid for on any grant."""
    plan = instalment.plan
    if plan.grant_id != grant.id:
        raise PaymentError(_l("This instalment belongs to another grant."))
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
    if done > 0 and done + covered > instalment.amount + COVER_TOLERANCE:
        latest = [p for p in rows if p.reversal_of_id is None][-1]
        raise PaymentError(
            _l(
                "Instalment %(seq)d is already paid: %(payment)s.",
                seq=instalment.seq,
                payment=describe(latest),
            )
        )
    if plan.hold_for_report and instalment.seq > 1:
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
    if plan.kind == PlanKind.STIPEND and application.defender_key:
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
                    month=instalment.period_month.strftime("%B %Y"),
                    payment=describe(other),
                )
            )


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


def _check_payment(grant, application, allocation, pool, instalment, amount, covered, extra):
    """Every rule a payment is held to when it is entered, and again under the locks when
    it is booked: within what the grant still commits, a fee and exchange loss the pool
    can cover, and an instalment that may be paid."""
    remaining = remaining_commitment(allocation)
    if amount > remaining:
        raise PaymentError(
            _l(
                "This payment (%(amount)s %(currency)s) is more than the grant still has "
                "committed in the pool %(pool)s (%(remaining)s %(currency)s).",
                amount=amount,
                currency=pool.currency,
                pool=pool.name,
                remaining=remaining,
            )
        )
    if extra > 0 and extra > pool_available(pool.id):
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
        _check_instalment(grant, application, instalment, allocation, covered)


def _open_for_payment(grant, application):
    if grant.status != GrantStatus.ACTIVE or application.status not in (S.APPROVED, S.PAYING):
        raise PaymentError(_l("This grant is closed: no payment can be added."))


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
    """
    if actor.role != Role.FINANCE or actor.fund_id != grant.fund_id:
        raise PaymentError(_l("Only finance records payments."))
    # Payments and closes of one grant take turns; the key is looked up once the turn is
    # ours, so the same form sent twice at once finds the payment the first one recorded.
    lock_row(Grant, grant.id)
    existing = earlier_submission(idempotency_key)
    if existing is not None:
        return existing, False
    application = grant.application
    _open_for_payment(grant, application)
    if allocation.grant_id != grant.id:
        raise PaymentError(_l("This pool does not fund this grant."))
    if amount_paid <= 0 or fee < 0:
        raise PaymentError(_l("The amount must be above zero and the fee not below zero."))
    pool = lock_row(Pool, allocation.pool_id)
    _lock_defender(application)
    bounds = Bounds.in_force()
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
    amount, covered, difference = _priced(
        grant, allocation, pool, currency_paid, amount_paid, priced.rate
    )
    _check_payment(
        grant,
        application,
        allocation,
        pool,
        instalment,
        amount,
        covered,
        fee + max(difference, Decimal(0)),
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
        held = HeldPayment(**fields, reasons=" ".join(passed), status=HoldStatus.HELD)
        for name, value in texts.items():
            setattr(held, name, value)
        db.session.add(held)
        db.session.flush()
        alert_second_persons(held, application)
        audit.record(
            "payment.held",
            held,
            actor=actor,
            grant=grant.uid,
            pool=pool.id,
            amount=amount,
            currency=pool.currency,
            fee=fee,
            exchange_difference=difference,
            rate=priced.rate,
            bounds=held.reasons,
        )
        return held, True
    return _book(grant, application, pool, fields, texts, actor), True


def _book(grant, application, pool, fields, texts, actor, confirmed_by=None):
    """Write the payment row; ``actor`` is who books it (who entered it, or the second
    person confirming it, then also ``confirmed_by``)."""
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
        grant=grant.uid,
        pool=pool.id,
        amount=payment.amount,
        currency=pool.currency,
        second_person=confirmed_by is not None,
    )
    return payment


def reverse_disbursement(payment, actor, reason, amount=None, fee_refunded=False):
    """Record that ``payment`` failed, came back or was wrong, in whole or (``amount``, in
    the pool's currency) in part: a reversal row linked to it; a payment is reversed once."""
    if actor.role != Role.FINANCE or actor.fund_id != payment.grant.fund_id:
        raise PaymentError(_l("Only finance reverses payments."))
    if payment.reversal_of_id is not None:
        raise PaymentError(_l("A reversal cannot itself be reversed."))
    lock_row(Pool, payment.pool_id)
    earlier = db.session.execute(
        sa.select(Disbursement).where(Disbursement.reversal_of_id == payment.id)
    ).scalar_one_or_none()
    if earlier is not None:
        raise PaymentError(
            _l(
                "This payment was already reversed on %(day)s.",
                day=earlier.paid_on.isoformat(),
            )
        )
    reason = (reason or "").strip()
    if not reason:
        raise PaymentError(_l("Say why the payment is reversed."))
    amount = payment.amount if amount is None else amount
    if not 0 < amount <= payment.amount:
        raise PaymentError(
            _l(
                "A reversal takes back more than zero and at most the %(amount)s paid.",
                amount=payment.amount,
            )
        )
    share = amount / payment.amount
    fee_back = payment.fee_amount if fee_refunded else Decimal("0.00")
    difference_back = quantize(payment.exchange_difference * share)
    # A reversal gives back the fee (when refunded) and the exchange difference; when the
    # payment had gained on the rate, taking that gain back is a cost the pool must cover.
    closed = payment.grant.status != GrantStatus.ACTIVE
    # On a closed grant the money that came back is released at once, and covers it first.
    room = pool_available(payment.pool_id) + (amount if closed else 0)
    if fee_back + difference_back < 0 and room < -(fee_back + difference_back):
        raise PaymentError(
            _l(
                "Reversing this payment takes back an exchange gain of %(gain)s that the pool"
                " no longer has available.",
                gain=-(fee_back + difference_back),
            )
        )
    reversal = Disbursement(
        grant_id=payment.grant_id,
        allocation_id=payment.allocation_id,
        pool_id=payment.pool_id,
        instalment_id=payment.instalment_id,
        payee_type=payment.payee_type,
        channel=payment.channel,
        amount_paid=max(quantize(payment.amount_paid * share), Decimal("0.01")),
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
        reverses=payment.uid,
        amount=amount,
        fee_refunded=bool(fee_refunded),
    )
    return reversal


def confirm_receipt(disbursement, actor):
    """Record that the payee side received ``disbursement``; once per payment."""
    if not stands(disbursement):
        raise NotConfirmableError()
    existing = db.session.execute(
        sa.select(Receipt.id).where(Receipt.disbursement_id == disbursement.id)
    ).first()
    if existing is not None:
        raise AlreadyConfirmedError()
    receipt = Receipt(
        disbursement_id=disbursement.id, confirmed_by_id=actor.id, confirmed_at=utcnow()
    )
    db.session.add(receipt)
    db.session.flush()
    audit.record("payment.receipt_confirmed", disbursement, actor=actor)
    return receipt


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
