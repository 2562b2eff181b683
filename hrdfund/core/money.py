"""Money: Decimal parsing, quantizing, formatting and conversion. Never float.

Every amount and every rate that enters the application passes :func:`parse_amount` or
:func:`parse_rate` (the form fields of :mod:`hrdfund.core.fields` are built on them), and the
column types of :mod:`hrdfund.core.columns` refuse to store anything else (:func:`stored_amount`,
:func:`stored_rate`), whoever calls.
"""

import functools
import re
import unicodedata
from decimal import ROUND_HALF_UP, Decimal

from babel import Locale
from babel.numbers import (
    format_currency,
    format_decimal,
    get_currency_name,
    get_currency_precision,
    get_currency_symbol,
)
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l

from .digits import plain_number

CENT = Decimal("0.01")
#: Largest amount a Numeric(14, 2) column holds.
MAX_AMOUNT = Decimal("999999999999.99")
#: The largest sum a column of kept totals (Numeric(20, 2)) holds: many amounts added up.
MAX_SUM = Decimal("999999999999999999.99")
#: A rate has at most the eight places of its Numeric(18, 8) column.
RATE_PLACES = Decimal("0.00000001")
#: The range a rate may take, in units of one currency per unit of the other. It is the
#: same range read either way round (1 / MIN_RATE == MAX_RATE), so a rate from the table
#: stays usable when a conversion reads it the other way.
MIN_RATE = Decimal("0.000001")
MAX_RATE = Decimal("1000000")
#: A share a limit is set in (a percentage, from 0 to 100) has at most six places: what
#: its Numeric(9, 6) column holds, where a payment keeps the limits it was weighed against.
PERCENT_PLACES = Decimal("0.000001")
#: What a person types: figures and at most one point, or thousands grouped by commas.
PLAIN = re.compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
#: Commas only as thousands separators: "12,50" is refused, never read as 1250.
#: A first group never starts with 0: "0,500" is half a dinar in Tunisia, never 500.
GROUPED = re.compile(r"^[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]*)?$")
#: Where the reader's language writes cents after a comma (1 250,50 in French, 1.250,50 in
#: Spanish): the whole units grouped by points or by spaces, in threes.
WHOLE_BY_POINTS = re.compile(r"^[1-9][0-9]{0,2}(?:\.[0-9]{3})+$")
WHOLE_BY_SPACES = re.compile(r"^[1-9][0-9]{0,2}(?: [0-9]{3})+$")
#: The spaces a language groups thousands with, read as one plain space.
GROUP_SPACES = {"\u00a0": " ", "\u202f": " ", "\u2009": " "}
#: Longer text is refused before it is read: no amount or rate needs more characters.
MAX_LENGTH = 40
#: Separators of other scripts, read as the point and the comma they are: the Arabic
#: decimal and thousands separators, the full-width point and comma.
SEPARATORS = {"\u066b": ".", "\u066c": ",", "\uff0e": ".", "\uff0c": ","}

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
    "CNY",
    "SYP",
)


class MoneyError(ValueError):
    """An amount or currency that cannot be used."""


class ConversionError(MoneyError):
    """A conversion whose result no amount can hold: the rate is not usable."""


NOT_FIGURES = _l(
    "Enter the amount in figures, like 1250.50: a point before the cents, no spaces, "
    "letters or exponents."
)
COMMAS = _l("Use a point for decimals; commas only between thousands, like 1,250.50.")
TWO_PLACES = _l("Enter at most two decimal places.")
THOUSANDS_POINT = _l(
    "A point before three figures, like 1.500, may mean thousands: write 1500 for one "
    "thousand five hundred, or two figures after the point for cents, like 1.50."
)
#: The same words where the reader's language writes cents after a comma.
NOT_FIGURES_COMMA = _l(
    "Enter the amount in figures, like 1250,50: a comma before the cents, no letters or exponents."
)
THOUSANDS_COMMA = _l(
    "A comma before three figures, like 1,500, may mean thousands: write 1500 for one "
    "thousand five hundred, or two figures after the comma for cents, like 1,50."
)
THOUSANDS_POINT_COMMA = _l(
    "A point before three figures, like 1.500, may mean thousands: write 1500 for one "
    "thousand five hundred, or two figures after the comma for cents, like 1,50."
)
TOO_LARGE = _l("This amount is too large: at most 999,999,999,999.99.")
ABOVE_ZERO = _l("Enter an amount above zero.")
ZERO_OR_MORE = _l("Enter zero or more.")
RATE_FIGURES = _l(
    "Enter the rate in figures, like 1.0825: a point before the decimals, no spaces, "
    "letters or exponents."
)
RATE_FIGURES_COMMA = _l(
    "Enter the rate in figures, like 1,0825: a comma before the decimals, no spaces, points, "
    "letters or exponents."
)
EIGHT_PLACES = _l("Enter a rate with at most eight decimal places.")
RATE_RANGE = _l("Enter a rate between 0.000001 and 1,000,000.")
TOO_LONG = _l("Enter at most %(count)d characters.", count=MAX_LENGTH)
OUT_OF_RANGE = _l("No usable rate: converting at it gives no amount that can be recorded.")
TOTAL_TOO_LARGE = _l(
    "These amounts add up to more than 999,999,999,999.99, the most one amount can be: lower them."
)


def quantize(amount):
    """Round a Decimal to cents, half up; never "-0.00", which prints and seals apart from
    the 0.00 a database gives back."""
    rounded = Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    return rounded if rounded else CENT * 0


def _figures(text, not_figures, commas, decimal_comma=False):
    """The number written in ``text`` (a leading minus sign included, for the caller to
    refuse), or raise :class:`MoneyError`. Digits of any one script (Arabic-Indic,
    full-width...) are read as the digits 0 to 9 they are; no plus sign, exponent,
    underscore, space inside, NaN or infinity is taken. With ``decimal_comma`` (the
    reader's language writes 1 250,50), a comma before one or two figures at the end is
    the decimal comma, and the whole units may be grouped by points or spaces
    (:func:`_comma_figures`)."""
    if text is None or isinstance(text, (bool, float)):
        raise MoneyError(not_figures)
    if isinstance(text, (Decimal, int)):
        value = Decimal(text)
        if not value.is_finite():
            raise MoneyError(not_figures)
        return value
    text = str(text).strip()
    if len(text) > MAX_LENGTH:
        raise MoneyError(TOO_LONG)
    written, zeros = [], set()
    for char in text:
        if unicodedata.category(char) == "Nd":
            digit = unicodedata.decimal(char)
            zeros.add(ord(char) - digit)
            written.append(str(digit))
        else:
            written.append(SEPARATORS.get(char, char))
    if len(zeros) > 1:  # digits of two scripts in one number: a slip or a trick
        raise MoneyError(not_figures)
    text = "".join(written)
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    if PLAIN.match(digits):
        value = Decimal(digits)
    elif GROUPED.match(digits) and not (decimal_comma and _one_comma_group(digits)):
        value = Decimal(digits.replace(",", ""))
    elif decimal_comma:
        value = _comma_figures(digits)
    elif "," in digits and PLAIN.match(digits.replace(",", "")):
        raise MoneyError(commas)
    else:
        raise MoneyError(not_figures)
    return value.copy_negate() if negative else value


def _one_comma_group(digits):
    """1,500: thousands in English, one and a half where cents follow a comma."""
    return digits.count(",") == 1 and "." not in digits


def _comma_figures(digits):
    """An amount as languages that write cents after a comma write it: 1250,50,
    1.250,50, 1 250,50, 1.250.000 or 1 250 000. A comma before three figures (1,500) may
    be the thousands of an English 1,500 and is refused, as a point before three is."""
    digits = "".join(GROUP_SPACES.get(char, char) for char in digits)
    whole, comma, cents = digits.rpartition(",")
    if not comma:
        whole, cents = digits, ""
    if "," in whole or not (plain_number(cents) or not comma):
        raise MoneyError(NOT_FIGURES_COMMA)
    if len(cents) == 3:
        raise MoneyError(THOUSANDS_COMMA)
    if len(cents) > 2:
        raise MoneyError(TWO_PLACES)
    if not plain_number(whole) and not WHOLE_BY_SPACES.match(whole):
        # Grouped by points: 1.250,50, or 1.250.000 (two points: no decimal point).
        if not WHOLE_BY_POINTS.match(whole) or not (comma or whole.count(".") > 1):
            raise MoneyError(NOT_FIGURES_COMMA)
    return Decimal(whole.replace(".", "").replace(" ", "") + (f".{cents}" if comma else ""))


def writes_decimal_comma():
    """Whether the reader's language writes cents after a comma (French, Spanish,
    Portuguese, Russian, Turkish...): what they type is read so (:func:`parse_amount`)."""
    locale = get_locale()
    if locale is None:
        return False
    symbols = locale.number_symbols
    return symbols.get("latn", symbols).get("decimal") == ","


def parse_amount(text, allow_zero=False, decimal_comma=False):
    """Read an amount a person typed (or a Decimal) as a positive Decimal in cents, or
    raise :class:`MoneyError` with a message to show: at most two places (three typed, as
    in 1.500, are refused as meaning thousands perhaps, even when the last is a zero),
    nothing beyond Numeric(14, 2), zero only when ``allow_zero``. With ``decimal_comma``
    (a form read in a language that writes 1 250,50), a comma may be the decimal comma."""
    if isinstance(text, float):
        raise MoneyError("amounts are never floats")
    value = _figures(text, NOT_FIGURES, COMMAS, decimal_comma)
    if value < 0 or (value.is_zero() and value.is_signed()):
        raise MoneyError(ZERO_OR_MORE if allow_zero else ABOVE_ZERO)
    # "1.500" or "250.000", as many languages write thousands, would otherwise be read
    # as 1.50 and 250.00: three figures typed after a point are refused as two readings.
    places = -value.as_tuple().exponent if isinstance(text, str) else 0
    if places == 3 and value >= 1:
        raise MoneyError(THOUSANDS_POINT_COMMA if decimal_comma else THOUSANDS_POINT)
    if places > 2:  # "1.5000" too, though it equals 1.50: what was typed is unclear
        raise MoneyError(TWO_PLACES)
    # Before quantizing, which fails on numbers of more digits than the context holds.
    if value > MAX_AMOUNT:
        raise MoneyError(TOO_LARGE)
    if value != quantize(value):
        raise MoneyError(TWO_PLACES)
    if value == 0 and not allow_zero:
        raise MoneyError(ABOVE_ZERO)
    return quantize(value)


def parse_rate(text, decimal_comma=False):
    """Read an exchange rate a person typed (or a Decimal): units of one currency per unit
    of the other, from :data:`MIN_RATE` to :data:`MAX_RATE`, at most eight places; or
    raise :class:`MoneyError` with a message to show. With ``decimal_comma`` (a form read
    in a language that writes 1,085), a comma is the decimal comma, and a rate that holds
    a comma and a point is refused as unclear."""
    if isinstance(text, float):
        raise MoneyError("rates are never floats")
    if decimal_comma and isinstance(text, str) and "," in text:
        if "." in text or text.count(",") > 1:
            raise MoneyError(RATE_FIGURES_COMMA)
        text = text.replace(",", ".")
    value = _figures(text, RATE_FIGURES, RATE_FIGURES)
    if not MIN_RATE <= value <= MAX_RATE:
        raise MoneyError(RATE_RANGE)
    if value != value.quantize(RATE_PLACES):
        raise MoneyError(EIGHT_PLACES)
    return value.quantize(RATE_PLACES)


def usable_rate(rate):
    """Whether a stored ``rate`` can convert amounts: a finite number in the rate range
    (one written in the table before the range held, or behind the application, may
    not be)."""
    try:
        rate = Decimal(rate)
    except (TypeError, ValueError, ArithmeticError):
        return False
    return rate.is_finite() and MIN_RATE <= rate <= MAX_RATE


def stored_amount(value):
    """``value`` as a money column stores it, or raise :class:`MoneyError`: only a finite
    Decimal (or int) of whole cents within Numeric(14, 2), negative allowed (the column's
    CHECK says where); never a float, a string, NaN or "-0", which would print and seal
    apart from the amount the database gives back."""
    return _whole_cents(value, MAX_AMOUNT)


def stored_sum(value):
    """``value`` as a column of kept totals stores it: as :func:`stored_amount`, up to
    Numeric(20, 2)."""
    return _whole_cents(value, MAX_SUM)


def _whole_cents(value, limit):
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise MoneyError(f"an amount to store must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite() or value.copy_abs() > limit:
        raise MoneyError(f"amount {value} is out of range")
    if value != quantize(value) or (value.is_zero() and value.is_signed()):
        raise MoneyError(f"amount {value} is not whole cents")
    return quantize(value)


def stored_rate(value):
    """``value`` as a rate column stores it, or raise :class:`MoneyError`: only a finite
    Decimal (or int) in the rate range with at most eight places."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise MoneyError(f"a rate to store must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not usable_rate(value):
        raise MoneyError(f"rate {value} is out of range")
    if value != value.quantize(RATE_PLACES):
        raise MoneyError(f"rate {value} has more than eight places")
    return value.quantize(RATE_PLACES)


def total(amounts):
    """The sum of ``amounts`` (each a Decimal in cents; None and zero are left out), to
    be stored as one amount; or raise :class:`MoneyError` saying so in words when it is
    beyond :data:`MAX_AMOUNT`, though each part is within it."""
    result = sum((Decimal(a) for a in amounts if a), start=Decimal("0.00"))
    if not result.is_finite() or result.copy_abs() > MAX_AMOUNT:
        raise MoneyError(TOTAL_TOO_LARGE)
    return quantize(result)


def stored_percent(value):
    """``value`` as a percentage column stores it, or raise :class:`MoneyError`: only a
    finite Decimal (or int) from 0 to 100 with at most six places."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise MoneyError(f"a percentage to store must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite() or not 0 <= value <= 100:
        raise MoneyError(f"percentage {value} is out of range")
    if value != value.quantize(PERCENT_PLACES):
        raise MoneyError(f"percentage {value} has more than six places")
    return value.quantize(PERCENT_PLACES)


@functools.cache
def smallest_unit(code):
    """The smallest amount of currency ``code`` that can be paid: a cent, or one whole
    unit for a currency that has no cents (CFA francs, Ugandan shillings, Iraqi dinars).
    A currency of three places (Jordanian and Tunisian dinars) is kept to the cent, as
    every amount is."""
    return Decimal(1).scaleb(-min(2, get_currency_precision(code)))


def in_units(amount, code):
    """``amount`` rounded half up to the smallest unit of currency ``code``: whole francs
    for a currency without cents (what a conversion into it is credited as)."""
    return quantize(Decimal(amount).quantize(smallest_unit(code), rounding=ROUND_HALF_UP))


def check_units(amount, code):
    """Refuse, with :class:`MoneyError` saying so in words, an amount in cents of a
    currency that has none (XOF 1500.50); amounts in other currencies, and None, pass."""
    if amount is None or code not in CURRENCIES:
        return amount
    unit = smallest_unit(code)
    if unit == CENT or Decimal(amount) == Decimal(amount).quantize(unit):
        return amount
    name = currency_name(code, str(get_locale() or "en"))
    raise MoneyError(
        gettext("%(currency)s has no cents: enter a whole amount, like 1500.", currency=name)
    )


def check_currency(code):
    """Return ``code`` if it is a known currency, else raise :class:`MoneyError`."""
    if code not in CURRENCIES:
        raise MoneyError("unknown currency")
    return code


def convert(amount, rate):
    """Convert ``amount`` with an exchange ``rate`` (units of target per unit of source),
    rounded half up to cents. Raises :class:`ConversionError` when the rate is not a
    positive number or the result is beyond what an amount can hold."""
    try:
        amount, rate = Decimal(amount), Decimal(rate)
        usable = amount.is_finite() and rate.is_finite() and rate > 0
        result = quantize(amount * rate) if usable else None
    except (TypeError, ArithmeticError):  # quantize fails beyond the context's digits
        result = None
    if result is None or result.copy_abs() > MAX_AMOUNT:
        raise ConversionError(OUT_OF_RANGE)
    return result


def format_money(amount, currency_code, locale="en"):
    """Format an amount with its currency for display."""
    if amount is None:
        return ""
    return _formatted(str(Decimal(amount)), currency_code, str(locale))


def money_words(amount, currency_code):
    """An amount with its currency as the reader's language writes it (€1,250.50,
    1.250,50 €), for a message."""
    return format_money(amount, currency_code, get_locale() or "en")


def figure(amount):
    """An amount's figure as the reader's language writes it, with its cents and its
    thousands grouped (1,250.50; 1.250,50), for a message that names the currency apart."""
    return format_decimal(Decimal(amount), format="#,##0.00", locale=get_locale() or "en")


def rate_figure(rate, locale=None):
    """A rate as the reader's language writes a number: its decimal sign and the places it
    has (at most eight), never thousands grouped, as a rate field takes it typed back
    (0.93486128 in English, 0,93486128 in French). A rate outside the range (one put in
    the database behind the application) is written as it is stored."""
    value = Decimal(rate)
    if not (value.is_finite() and MIN_RATE <= value <= MAX_RATE):
        return str(value)
    return format_decimal(value, format="0.########", locale=locale or get_locale() or "en")


@functools.lru_cache(maxsize=4096)
def _formatted(amount, currency_code, locale):
    """An amount (as its exact text, so 0.00 and -0.00 stay apart) in words, remembered:
    Babel takes a tenth of a millisecond for each, and a page of charts writes hundreds,
    the same ones from one request to the next."""
    value = Decimal(amount)
    # A currency written without cents (CFA francs, yen) still shows cents an amount has:
    # rounded away, 999,999.99 XOF would read as a million.
    whole = Decimal(1).scaleb(-get_currency_precision(currency_code))
    exact = value.is_finite() and value != value.quantize(whole, rounding=ROUND_HALF_UP)
    return format_currency(
        value,
        currency_code,
        format=code_pattern(currency_code, locale),
        locale=locale,
        currency_digits=not exact,
    )


#: Currencies whose symbols tell them apart by a space at most (the West and Central
#: African CFA francs: "F CFA" and "FCFA"): written with their codes, XOF and XAF.
BY_CODE = frozenset({"XOF", "XAF"})


def code_pattern(currency_code, locale, pattern=None):
    """The pattern to write an amount of ``currency_code`` with: ``pattern`` (the locale's
    standard one by default), with the currency's code for its symbol when the symbol
    does not tell it apart (:data:`BY_CODE`), and a space between figures and a symbol
    that is letters (SEK 1,250.00, never SEK1,250.00). None means the locale's own."""
    by_code = currency_code in BY_CODE
    symbol = currency_code if by_code else get_currency_symbol(currency_code, locale=str(locale))
    letters_before, letters_after = symbol[-1:].isalpha(), symbol[:1].isalpha()
    if not (by_code or letters_before or letters_after):
        return pattern
    pattern = pattern or Locale.parse(str(locale)).currency_formats["standard"].pattern
    if letters_before:
        pattern = re.sub(r"¤(?=[#0])", "¤\u00a0", pattern)
    if letters_after:
        pattern = re.sub(r"(?<=[#0])¤", "\u00a0¤", pattern)
    return pattern.replace("¤", "¤¤") if by_code else pattern


def currency_name(code, locale="en"):
    return get_currency_name(code, locale=locale)
