"""Money: Decimal parsing, quantizing, formatting and conversion. Never float."""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_name

CENT = Decimal("0.01")
#: Largest amount a Numeric(14, 2) column holds.
MAX_AMOUNT = Decimal("999999999999.99")
RATE_PLACES = Decimal("0.00000001")
#: Commas only as thousands separators: "12,50" is refused, never read as 1250.
GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")

#: Currencies funds pay in; the list is a setting of the product, easy to extend.
CURRENCIES = (
    "EUR",
    "USD",
    "GBP",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "CAD",
    "AUD",
    "KES",
    "UGX",
    "TZS",
    "NGN",
    "GHS",
    "ZAR",
    "ZWL",
    "ETB",
    "SDG",
    "CDF",
    "XOF",
    "XAF",
    "EGP",
    "MAD",
    "TND",
    "JOD",
    "LBP",
    "TRY",
    "IQD",
    "YER",
    "COP",
    "MXN",
    "BRL",
    "GTQ",
    "HNL",
    "NIO",
    "VES",
    "PEN",
    "BOB",
    "INR",
    "PKR",
    "BDT",
    "NPR",
    "LKR",
    "MMK",
    "THB",
    "PHP",
    "IDR",
    "KHR",
    "MYR",
    "AFN",
    "KGS",
    "KZT",
    "UZS",
    "TJS",
    "GEL",
    "AMD",
    "AZN",
    "UAH",
    "RUB",
    "BYN",
)


class MoneyError(ValueError):
    """An amount or currency that cannot be used."""


def quantize(amount):
    """Round a Decimal to cents, half up; never "-0.00", which prints and seals apart from
    the 0.00 a database gives back."""
    rounded = Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    return rounded if rounded else CENT * 0


def parse_amount(text, allow_zero=False):
    """Parse user input into a positive Decimal in cents, or raise :class:`MoneyError`."""
    if isinstance(text, float):
        raise MoneyError("amounts are never floats")
    text = str(text).strip()
    if "," in text and not GROUPED.match(text):
        raise MoneyError("use a point for decimals; commas only between thousands")
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation as exc:
        raise MoneyError("not a number") from exc
    if not value.is_finite():
        raise MoneyError("not a number")
    # Before quantizing, which fails on numbers of more digits than the context holds.
    if value.copy_abs() > MAX_AMOUNT:
        raise MoneyError("too large")
    if value != quantize(value):
        raise MoneyError("at most two decimal places")
    if value < 0 or (value == 0 and not allow_zero):
        raise MoneyError("must be more than zero")
    return quantize(value)


def check_currency(code):
    """Return ``code`` if it is a known currency, else raise :class:`MoneyError`."""
    if code not in CURRENCIES:
        raise MoneyError("unknown currency")
    return code


def convert(amount, rate):
    """Convert ``amount`` with an exchange ``rate`` (units of target per unit of source)."""
    return quantize(Decimal(amount) * Decimal(rate))


def format_money(amount, currency_code, locale="en"):
    """Format an amount with its currency for display."""
    if amount is None:
        return ""
    return format_currency(Decimal(amount), currency_code, locale=locale)


def currency_name(code, locale="en"):
    return get_currency_name(code, locale=locale)
