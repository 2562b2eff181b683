"""Payments held for a second person: who may confirm or refuse one, doing it, and telling
them one waits.

A payment beyond a bound one finance officer may not pass alone (a rate far from the
fund's table, a fee or an exchange difference above its share of the payment) is held, not
booked. Another finance officer or a manager of the fund, never the one who entered it
and never someone with a declared conflict on the case, confirms it, which books it under
the locks with every rule checked again, or refuses it with a reason. Either is an audit
entry; the booked payment names who confirmed it.
"""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..cases.access import can_see
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.sql import lock_row
from ..grants.models import Grant
from ..ledger.models import Allocation
from ..pools.models import Pool
from .bounds import SECOND_PERSONS, PaymentError
from .models import HeldPayment, HoldStatus
from .rules import PlanNotFollowedError, check_open_for_payment, check_priced, lock_defender
from .services import book_payment


def may_decide(held, user):
    """True when ``user`` may confirm or refuse ``held``: finance or a manager of the fund
    who did not enter it and may see its case."""
    return (
        user.role in SECOND_PERSONS
        and user.id != held.recorded_by_id
        and can_see(held.grant.application, user)
    )


def _check_decider(held, actor):
    if actor.role not in SECOND_PERSONS or actor.fund_id != held.grant.fund_id:
        raise PaymentError(_l("Only finance or a manager confirms a held payment."))
    if actor.id == held.recorded_by_id:
        raise PaymentError(_l("A second person confirms this payment: not the one who entered it."))
    if not can_see(held.grant.application, actor):
        raise PaymentError(_l("You declared a conflict of interest on this case."))


def _lock_held(held):
    """The held payment re-read under the grant's lock, still waiting; refused otherwise."""
    lock_row(Grant, held.grant_id)
    held = lock_row(HeldPayment, held.id)
    if held.status != HoldStatus.HELD:
        raise PaymentError(
            _l("This payment was already confirmed.")
            if held.status == HoldStatus.BOOKED
            else _l("This payment was already refused.")
        )
    return held


def confirm_held_payment(held, actor):
    """Book ``held`` as the payment it describes, confirmed by ``actor``: every rule (the
    grant open, what it still commits, the pool's balance for the fee and exchange loss,
    the instalment) is checked again under the locks, at the rate entered. Returns the
    payment."""
    _check_decider(held, actor)
    held = _lock_held(held)
    grant = held.grant
    application = grant.application
    check_open_for_payment(grant, application)
    allocation = held.allocation
    pool = lock_row(Pool, allocation.pool_id)
    lock_defender(application)
    try:
        amount, difference = check_priced(
            grant,
            application,
            allocation,
            pool,
            held.instalment,
            held.amount_paid,
            held.currency_paid,
            held.fx_rate,
            held.fee_amount,
        )
    except PlanNotFollowedError as exc:
        # Held before the grant had a plan: it names no instalment, and a second person
        # cannot add one. Refused, it is entered again for the instalment it pays.
        raise PaymentError(
            _l(
                "This payment was held before the grant had a plan, so it names no"
                " instalment, and instalment %(seq)d is still due: refuse it, saying so,"
                " and finance enters it again for the instalment it pays.",
                seq=exc.seq,
            )
        ) from exc
    fields, texts = _payment_of(held, amount, difference)
    payment = book_payment(grant, application, pool, fields, texts, actor, confirmed_by=actor.id)
    held.status = HoldStatus.BOOKED
    held.decided_by_id = actor.id
    held.decided_at = utcnow()
    held.disbursement_id = payment.id
    db.session.flush()
    audit.record("payment.confirmed", held, actor=actor, fund=grant.fund_id, payment=payment.uid)
    return payment


def _payment_of(held, amount, difference):
    """The columns and texts of the payment ``held`` describes, at ``amount`` and
    ``difference`` as priced again when it is booked."""
    fields = {
        "grant_id": held.grant_id,
        "allocation_id": held.allocation_id,
        "instalment_id": held.instalment_id,
        "payee_type": held.payee_type,
        "channel": held.channel,
        "amount_paid": held.amount_paid,
        "currency_paid": held.currency_paid,
        "amount": amount,
        "fx_rate": held.fx_rate,
        "rate_source": held.rate_source,
        "rate_set_by_id": held.rate_set_by_id,
        # What it was weighed against when it was entered, kept on the payment.
        "table_rate": held.table_rate,
        "rate_entry_id": held.rate_entry_id,
        "rate_tolerance_percent": held.rate_tolerance_percent,
        "max_fee_percent": held.max_fee_percent,
        "max_difference_percent": held.max_difference_percent,
        "fee_amount": held.fee_amount,
        "exchange_difference": difference,
        "paid_on": held.paid_on,
        "proof_document_id": held.proof_document_id,
        "idempotency_key": held.idempotency_key,
        "recorded_by_id": held.recorded_by_id,
    }
    texts = {
        "payee_details": held.payee_details,
        "rate_reason": held.rate_reason,
        "reference": held.reference,
    }
    return fields, texts


def refuse_held_payment(held, actor, reason):
    """Refuse ``held``, with a reason finance reads: nothing is booked."""
    _check_decider(held, actor)
    reason = (reason or "").strip()
    if not reason:
        raise PaymentError(_l("Say why the payment is refused."))
    held = _lock_held(held)
    held.status = HoldStatus.REFUSED
    held.decided_by_id = actor.id
    held.decided_at = utcnow()
    held.refusal = reason
    db.session.flush()
    audit.record("payment.refused", held, actor=actor, fund=held.grant.fund_id)
    return held


def held_payments(grant, statuses=(HoldStatus.HELD, HoldStatus.REFUSED)):
    """The grant's payments held for a second person (and refused ones), oldest first."""
    return (
        db.session.execute(
            sa.select(HeldPayment)
            .where(HeldPayment.grant_id == grant.id, HeldPayment.status.in_(statuses))
            .options(
                sa.orm.joinedload(HeldPayment.recorded_by),
                sa.orm.joinedload(HeldPayment.decided_by),
                sa.orm.joinedload(HeldPayment.allocation).joinedload(Allocation.pool),
            )
            .order_by(HeldPayment.id)
        )
        .scalars()
        .all()
    )
