"""Payments: who is paid and how, each instalment paid from the grant's allocations in turn,
a payment now and then coming back and sent again, and the payee side's answers on
whether each arrived."""

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from .. import audit
from ..core import geo
from ..core.money import convert, quantize, smallest_unit
from ..core.support import Category
from ..ledger.models import (
    Channel,
    Disbursement,
    PayeeType,
    ReceiptAnswer,
    reference_key,
)

PAYEE_DETAILS = {
    Channel.BANK: "Demo bank account",
    Channel.MONEY_TRANSFER: "Demo transfer recipient",
    Channel.MOBILE_MONEY: "Demo mobile wallet",
    Channel.CASH_THROUGH_PARTNER: "Demo partner cash handover",
    Channel.IN_KIND: "Demo supplier order",
}
#: Share of a payment its channel charges, now and then.
FEE_PERCENT = {
    Channel.BANK: "0.005",
    Channel.MONEY_TRANSFER: "0.03",
    Channel.MOBILE_MONEY: "0.015",
    Channel.CASH_THROUGH_PARTNER: "0.02",
}
RETURN_REASONS = (
    "Returned by the receiving bank",
    "Mobile money number no longer active",
    "Payee could not collect the cash",
)


def choose_payee(world, grant, country):
    """Who is paid, through which channel, in which currency, for the whole grant."""
    rng = world.rng
    category = grant.category
    local = geo.local_currency(country)
    if category == Category.MEDICAL and rng.random() < 0.7:
        payee, channel = PayeeType.VENDOR, Channel.BANK
    elif category == Category.RELOCATION and rng.random() < 0.6:
        payee, channel, local = PayeeType.HOST_ORGANISATION, Channel.BANK, None
    elif category == Category.DIGITAL_SECURITY and rng.random() < 0.4:
        payee, channel = PayeeType.VENDOR, Channel.IN_KIND
    elif category == Category.LEGAL and rng.random() < 0.5:
        payee, channel = PayeeType.VENDOR, Channel.BANK
    elif rng.random() < 0.15:
        payee, channel = PayeeType.INTERMEDIARY, Channel.CASH_THROUGH_PARTNER
    elif geo.region_of(country) == "East Africa" and rng.random() < 0.6:
        payee, channel = PayeeType.DEFENDER, Channel.MOBILE_MONEY
    else:
        payee = PayeeType.DEFENDER
        channel = rng.choice((Channel.BANK, Channel.MONEY_TRANSFER))
    grant.payee, grant.channel = payee, channel
    grant.paid_currency = local if local and rng.random() < 0.75 else None


def pay(world, grant, inst_id, value, paid_on):
    """Pay one instalment (``value`` in grant currency) from the allocations in turn;
    now and then a payment comes back and is sent again. True if money went out."""
    rng = world.rng
    sent = False
    for alloc in grant.allocations:
        if value < 1:
            break
        in_pool = min(quantize(value * alloc["rate"]), alloc["left"])
        if in_pool <= 0:
            continue
        value -= in_pool if alloc["rate"] == 1 else quantize(in_pool / alloc["rate"])
        payment = add_disbursement(world, grant, alloc, inst_id, in_pool, paid_on)
        if payment is None:
            continue
        sent = True
        standing = payment
        back_on = paid_on + timedelta(days=rng.randint(2, 7))
        if rng.random() < 0.02 and back_on <= world.last_day:
            standing = None
            partial = rng.random() < 0.2
            add_disbursement(
                world, grant, alloc, inst_id, None, back_on, reverses=payment, partial=partial
            )
            again_on = back_on + timedelta(days=rng.randint(1, 5))
            # Usually sent again; a payment that came back in part is left at that.
            if not partial and rng.random() < 0.85 and again_on <= world.last_day:
                standing = add_disbursement(
                    world, grant, alloc, inst_id, payment["amount"], again_on
                )
        if standing is not None:
            add_receipt(world, grant, standing)
    return sent


def add_disbursement(world, grant, alloc, inst_id, in_pool, paid_on, reverses=None, partial=False):
    """One sealed payment of about ``in_pool`` (pool currency), or the reversal of
    ``reverses``; return what was written, or None when the amount rounds to nothing."""
    pool = alloc["pool"]
    currency, rate, amount_paid, kept = _terms(
        world, grant, pool, in_pool, paid_on, reverses, partial
    )
    amount = convert(amount_paid, rate)
    if amount_paid <= 0 or amount <= 0:
        return None
    uid = world.uid()
    fee = Decimal("0.00")
    percent = FEE_PERCENT.get(grant.channel)
    if reverses is None and percent and world.rng.random() < 0.7:
        fee = quantize(amount * Decimal(percent))
    values = {
        "uid": uid,
        "grant_id": grant.id,
        "allocation_id": alloc["id"],
        "pool_id": pool.id,
        "instalment_id": inst_id,
        "amount_paid": amount_paid,
        "currency_paid": currency,
        "amount": amount,
        "fx_rate": rate,
        "fee_amount": fee,
        "exchange_difference": Decimal("0.00"),
        "paid_on": paid_on,
        "reversal_of_id": reverses["id"] if reverses else None,
        **kept,
    }
    row_id, reference = _write(world, grant, values, reverses)
    alloc["left"] += -amount if reverses is None else amount
    return {
        "id": row_id,
        "reference": reference,
        "amount": amount,
        "amount_paid": amount_paid,
        "rate": rate,
        "currency": currency,
        "paid_on": paid_on,
    }


def _terms(world, grant, pool, in_pool, paid_on, reverses, partial):
    """(currency paid, rate, amount paid, what the rate was weighed with) of a payment of
    about ``in_pool``, or of the reversal of ``reverses`` (half of it when ``partial``)."""
    if reverses is not None:
        amount_paid = reverses["amount_paid"]
        if partial:
            amount_paid = (amount_paid / 2).quantize(
                smallest_unit(reverses["currency"]), ROUND_DOWN
            )
        kept = dict.fromkeys(("table_rate", "rate_entry_id", *world.bounds.columns()))
        return reverses["currency"], reverses["rate"], amount_paid, kept
    currency = grant.paid_currency or pool.currency
    rate, entry_id = world.rates.entry(pool.currency, currency, paid_on)
    # Paid at the table's rate, a manager confirmed: weighed as the app weighs it.
    kept = {"table_rate": rate, "rate_entry_id": entry_id, **world.bounds.columns()}
    # Rounded down, so that the converted amount never exceeds what is left; in whole
    # units of a currency without cents, as a bank pays CFA francs.
    return currency, rate, (in_pool / rate).quantize(smallest_unit(currency), ROUND_DOWN), kept


def _write(world, grant, values, reverses):
    """Queue the sealed payment row with its encrypted details; return its id and its
    reference. A reversal carries the reference of the payment it reverses and, as the
    app's reversals do, no payee details of its own."""
    rng, uid, rate = world.rng, values["uid"], values["fx_rate"]
    table = world.tables[Disbursement]
    reference = reverses["reference"] if reverses else f"PAY-{table.next_id:08d}"
    payee = None
    if reverses is None:
        payee = world.enc(
            "disbursements",
            "payee_details",
            uid,
            f"{PAYEE_DETAILS[grant.channel]} {rng.randrange(10**7, 10**8)}",
        )
    row_id = table.add(
        {
            **values,
            "seal": audit.seal("disbursements", values, world.audit_key),
            "payee_type": grant.payee,
            "payee_details": payee,
            "channel": grant.channel,
            "rate_source": (
                world.enc("disbursements", "rate_source", uid, "Demo reference rates, monthly")
                if rate != 1
                else None
            ),
            "reference": world.enc("disbursements", "reference", uid, reference),
            "reference_key": reference_key(reference),
            "idempotency_key": None if reverses else f"demo-{uid}",
            "reason": (
                world.enc("disbursements", "reason", uid, rng.choice(RETURN_REASONS))
                if reverses
                else None
            ),
            "recorded_by_id": world.finance,
            "proof_document_id": None,
            "created_at": datetime.combine(values["paid_on"], datetime.min.time())
            + world.hours(8, 18),
        }
    )
    return row_id, reference


def add_receipt(world, grant, payment):
    """The applicant side answers "received" for about half the payments; of the
    others, one in eleven it reports received short or not received, with a note, for
    finance to follow up (chosen by the payment's id: the seeded stream stays as it was)."""
    rng = world.rng
    if grant.owner is None:
        return
    if rng.random() < 0.5:
        if payment["id"] % 11 == 0:
            _report_problem(world, grant, payment)
        return
    at = datetime.combine(payment["paid_on"], datetime.min.time()) + world.hours(30, 24 * 10)
    if at < world.now:
        world.tables[ReceiptAnswer].add(
            {
                "uid": world.uid(),
                "disbursement_id": payment["id"],
                "answer": "received",
                "amount_received": None,
                "currency_received": None,
                "note": None,
                "answered_by_id": grant.owner,
                "answered_at": at,
            }
        )


#: What a defender writes when a payment arrived short, and when nothing arrived.
SHORT_NOTES = (
    "The agent kept part of it as a fee.",
    "The bank took a charge I did not expect.",
)
MISSING_NOTES = (
    "Nothing has reached my account yet.",
    "The transfer office asked for a document I do not have.",
)


def _report_problem(world, grant, payment):
    """The applicant side reports ``payment`` received short (nine tenths of it) or not
    received, three days after it was made."""
    at = datetime.combine(payment["paid_on"], datetime.min.time()) + timedelta(days=3, hours=10)
    if at >= world.now:
        return
    uid = world.uid()
    short = payment["id"] % 2 == 0 and payment["amount_paid"] >= 1
    notes = SHORT_NOTES if short else MISSING_NOTES
    world.tables[ReceiptAnswer].add(
        {
            "uid": uid,
            "disbursement_id": payment["id"],
            "answer": "less" if short else "not_received",
            "amount_received": _short(payment) if short else None,
            "currency_received": payment["currency"] if short else None,
            "note": world.enc(
                "receipt_answers", "note", uid, notes[payment["id"] // 2 % len(notes)]
            ),
            "answered_by_id": grant.owner,
            "answered_at": at,
        }
    )


def _short(payment):
    """What a payee reports receiving of a payment that arrived short: nine tenths of it,
    in the units its currency is paid in."""
    unit = smallest_unit(payment["currency"])
    return (payment["amount_paid"] * Decimal("0.9")).quantize(unit, ROUND_DOWN)
