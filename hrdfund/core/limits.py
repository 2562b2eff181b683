"""The money limits a fund sets: the four-eyes threshold and the currency it is read in,
and how far a payment may stray before a second person must confirm it.

Each is read from the settings once per use, as a Decimal; a malformed value stops the
start (:func:`check_config`), so a typo never silently turns a control off.
"""

from decimal import Decimal, InvalidOperation

from flask import current_app

from .money import CENT, CURRENCIES, PERCENT_PLACES


class LimitConfigError(RuntimeError):
    """A money limit in the settings that cannot be used."""


#: Setting -> (lowest allowed, highest allowed, places) for the limits given as numbers.
#: Each is kept on the rows weighed against it (a payment its percentages, an approval its
#: threshold), so no more places than those columns hold.
NUMBERS = {
    "FOUR_EYES_THRESHOLD": (Decimal(0), Decimal("999999999999.99"), CENT),
    "RATE_TOLERANCE_PERCENT": (Decimal(0), Decimal(100), PERCENT_PLACES),
    "MAX_FEE_PERCENT": (Decimal(0), Decimal(100), PERCENT_PLACES),
    "MAX_EXCHANGE_DIFFERENCE_PERCENT": (Decimal(0), Decimal(100), PERCENT_PLACES),
}


def _number(config, name):
    try:
        value = Decimal(str(config[name]).strip())
    except (InvalidOperation, ValueError) as exc:
        raise LimitConfigError(f"{name} must be a number, not {config[name]!r}") from exc
    low, high, places = NUMBERS[name]
    if not value.is_finite() or not low <= value <= high:
        raise LimitConfigError(f"{name} must be between {low} and {high}")
    if value != value.quantize(places):
        raise LimitConfigError(
            f"{name} must have at most {-places.as_tuple().exponent} decimal places"
        )
    return value


def check_config(config):
    """Refuse to start with a limit that is not a number in its range, or a reporting
    currency the fund cannot hold."""
    for name in NUMBERS:
        _number(config, name)
    if config["REPORTING_CURRENCY"] not in CURRENCIES:
        raise LimitConfigError(f"HRDFUND_REPORTING_CURRENCY must be one of {', '.join(CURRENCIES)}")


def reporting_currency():
    """The currency the fund's thresholds are set in and amounts across currencies are
    compared in."""
    return current_app.config["REPORTING_CURRENCY"]


def four_eyes_threshold(fund=None):
    """Approvals worth this much or more, in the reporting currency, need two managers:
    ``fund``'s own threshold where it sets one in the reporting currency, else the
    environment's (a threshold set in a reporting currency the instance no longer uses is
    never read as an amount of another). A fund's own is never read above the
    environment's: a fund makes the control stricter, never looser (one set before the
    environment's was lowered counts as the environment's)."""
    instance = _number(current_app.config, "FOUR_EYES_THRESHOLD")
    if (
        fund is not None
        and fund.four_eyes_threshold is not None
        and fund.four_eyes_currency == reporting_currency()
    ):
        return min(fund.four_eyes_threshold, instance)
    return instance


def rate_tolerance_percent():
    """:func:`rate_tolerance` as the percentage it is set in."""
    return _number(current_app.config, "RATE_TOLERANCE_PERCENT")


def max_fee_percent():
    """:func:`max_fee_share` as the percentage it is set in."""
    return _number(current_app.config, "MAX_FEE_PERCENT")


def max_difference_percent():
    """:func:`max_difference_share` as the percentage it is set in."""
    return _number(current_app.config, "MAX_EXCHANGE_DIFFERENCE_PERCENT")


def rate_tolerance():
    """How far (a fraction) a payment's rate may be from the fund's table before a second
    person confirms it."""
    return _number(current_app.config, "RATE_TOLERANCE_PERCENT") / 100


def max_fee_share():
    """The largest fee, as a fraction of the payment, booked without a second person."""
    return _number(current_app.config, "MAX_FEE_PERCENT") / 100


def max_difference_share():
    """The largest exchange difference, as a fraction of the commitment the payment
    settles, booked without a second person."""
    return _number(current_app.config, "MAX_EXCHANGE_DIFFERENCE_PERCENT") / 100
