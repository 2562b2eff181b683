"""The bounds a payment is held to, and who may lift them.

One finance officer alone may book a payment at the fund's table rate (or within
``HRDFUND_RATE_TOLERANCE_PERCENT`` of it), with a fee up to ``HRDFUND_MAX_FEE_PERCENT`` of
what the payment costs the pool and an exchange difference up to
``HRDFUND_MAX_EXCHANGE_DIFFERENCE_PERCENT`` of the commitment it settles. A rate is never
its own reference: when the table entry a payment takes its rate from, or measures a typed
rate against, is one the payer recorded and nobody else confirmed, the payment passes a
bound too. Beyond any of them the payment is held until a second person (another finance
officer or a manager of the fund, never the one who entered it) confirms it. The payment
keeps what it was weighed against (the table rate and entry of its day, the limits then in
force), sealed, and `check` weighs it again against those, so a later change of a setting
or of the table changes no past verdict.
"""

from dataclasses import dataclass
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from ..alerts.models import AlertKind
from ..alerts.outbox import notify_users
from ..auth.models import Role, User
from ..cases.access import staff_on_case
from ..core import limits
from ..core.extensions import db
from ..pools.services import MissingRateError, checked_rate, table_rate
from .models import HoldReason


class PaymentError(Exception):
    """A payment the rules refuse; the message says which rule in plain words, and
    ``field`` names the form's field it is about, if one is (shown beside it)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


#: A rate is taken for one written upside down (paid currency per pool unit) when its
#: inverse is within this share of the table rate while it is itself this many times
#: further from it, or more: 150.4 for a table rate of 0.00713 (KES to USD).
INVERSE_NEAR = Decimal("0.25")
INVERSE_FAR = 2


#: What a payment says when a rate's source or reason comes without the rate.
RATE_OR_NOTHING = _l(
    "A source or reason was given without a rate: enter the rate, or leave its source and "
    "reason empty to use the fund's table."
)


@dataclass(frozen=True)
class Bounds:
    """The limits a payment is weighed against, as percentages."""

    tolerance: Decimal
    fee: Decimal
    difference: Decimal

    @classmethod
    def in_force(cls):
        """The limits the settings give now."""
        return cls(
            limits.rate_tolerance_percent(),
            limits.max_fee_percent(),
            limits.max_difference_percent(),
        )

    @classmethod
    def kept_on(cls, row):
        """The limits a payment (held or booked) kept, or None on one from before they
        were kept."""
        if row.rate_tolerance_percent is None:
            return None
        return cls(row.rate_tolerance_percent, row.max_fee_percent, row.max_difference_percent)

    def columns(self):
        """The payment columns that keep these limits."""
        return {
            "rate_tolerance_percent": self.tolerance,
            "max_fee_percent": self.fee,
            "max_difference_percent": self.difference,
        }


@dataclass(frozen=True)
class PaymentRate:
    """The rate frozen on a payment and what it was weighed against."""

    rate: Decimal
    source: str | None
    set_by_id: int | None
    reason: str | None
    #: The table's rate of the day and its entry (None without one).
    table: Decimal | None
    entry_id: int | None
    #: Further than the tolerance from the table rate, or no table rate at all.
    beyond: bool
    #: The table entry used or measured against is the payer's alone.
    own: bool

    def columns(self):
        """The payment columns it fills."""
        return {
            "fx_rate": self.rate,
            "rate_source": self.source,
            "rate_set_by_id": self.set_by_id,
            "table_rate": self.table,
            "rate_entry_id": self.entry_id,
        }


def payment_rate(fund_id, paid, pool_currency, on, rate, source, reason, actor, bounds):
    """The rate to freeze on a payment and what it was weighed against (a
    :class:`PaymentRate`). A source or reason given without a rate is refused rather than
    dropped."""
    if rate is None and ((source or "").strip() or (reason or "").strip()):
        raise PaymentError(RATE_OR_NOTHING)
    if paid == pool_currency:
        if rate is not None:
            raise PaymentError(
                _l(
                    "This payment is in the pool's own currency (%(currency)s): leave the "
                    "rate, its source and reason empty.",
                    currency=paid,
                ),
                "rate",
            )
        return PaymentRate(Decimal(1), None, None, None, Decimal(1), None, False, False)
    try:
        table = table_rate(fund_id, paid, pool_currency, on)
    except MissingRateError:
        table = None
    reference = table.rate if table is not None else None
    entry_id = table.entry.id if table is not None else None
    # A table entry the payer recorded and nobody else confirmed is no reference for them.
    own = table is not None and table.alone(actor.id)
    if rate is None:
        if table is None:
            raise PaymentError(
                _l(
                    "No rate from %(paid)s to %(pool)s is in the table: enter the rate used "
                    "and its source.",
                    paid=paid,
                    pool=pool_currency,
                ),
                "rate",
            )
        return PaymentRate(
            table.rate, table.source, table.set_by_id, None, reference, entry_id, False, own
        )
    rate = checked_rate(rate, PaymentError)
    if looks_inverted(rate, reference):
        raise PaymentError(
            _l(
                "This rate looks upside down: enter how many %(pool)s one %(paid)s is "
                "worth (the fund's table: %(table)s); %(rate)s is how many %(paid)s one "
                "%(pool)s is worth.",
                pool=pool_currency,
                paid=paid,
                table=reference,
                rate=rate,
            ),
            "rate",
        )
    if not (source or "").strip():
        raise PaymentError(_l("Say where the rate comes from."), "rate_source")
    reason = (reason or "").strip() or None
    beyond = rate_beyond_tolerance(rate, reference, bounds.tolerance)
    if beyond and reason is None and reference is None:
        raise PaymentError(
            _l(
                "The fund's table has no rate for this currency on that day to weigh this "
                "one against: give a reason for it; a second person confirms it."
            ),
            "rate_reason",
        )
    if beyond and reason is None:
        raise PaymentError(
            _l(
                "This rate is more than %(pct)s%% away from the fund's table "
                "(%(table)s): give a reason for it; a second person confirms it.",
                pct=format(bounds.tolerance.normalize(), "f"),
                table=reference,
            ),
            "rate_reason",
        )
    return PaymentRate(rate, source.strip(), actor.id, reason, reference, entry_id, beyond, own)


def looks_inverted(rate, table):
    """Whether ``rate`` reads as the table rate written upside down: its inverse near the
    table's, itself far from it (see INVERSE_NEAR). Near parity (1.08 and 0.93) the two
    readings are too close to tell: such a rate is only beyond the tolerance."""
    if table is None or rate <= 0 or table <= 0:
        return False
    far = max(rate / table, table / rate) >= INVERSE_FAR
    return far and abs(1 / rate - table) <= table * INVERSE_NEAR


def rate_beyond_tolerance(rate, table, tolerance):
    """True when ``rate`` is further than ``tolerance`` (a percentage) from the ``table``
    rate, or when the table has none to compare with."""
    return table is None or abs(rate - table) > table * tolerance / 100


def bounds_passed(amount, fee, difference, bounds, rate_beyond=False, own_rate=False):
    """The bounds a payment passes that one person may not pass alone (HoldReason values),
    against ``bounds`` (a :class:`Bounds`): a rate beyond the tolerance, a rate whose table
    entry is the payer's alone, a fee above its share of what the payment costs the pool,
    an exchange difference above its share of the commitment it settles."""
    passed = []
    if rate_beyond:
        passed.append(HoldReason.RATE)
    if own_rate:
        passed.append(HoldReason.OWN_RATE)
    if fee > (amount + difference) * bounds.fee / 100:
        passed.append(HoldReason.FEE)
    if abs(difference) > amount * bounds.difference / 100:
        passed.append(HoldReason.DIFFERENCE)
    return passed


#: Who may be the second person on a payment.
SECOND_PERSONS = (Role.FINANCE, Role.MANAGER)


def second_persons(held, application):
    """Who may confirm ``held``: active finance officers and managers of the fund, but not
    the one who entered it nor anyone with a declared conflict on the case."""
    return (
        db.session.execute(
            staff_on_case(application, SECOND_PERSONS)
            .where(User.id != held.recorded_by_id)
            .order_by(User.id)
        )
        .scalars()
        .all()
    )


def alert_second_persons(held, application):
    """Queue an alert, in the outbox, to everyone who may confirm ``held``."""
    return notify_users(second_persons(held, application), application, AlertKind.PAYMENT_HELD)
