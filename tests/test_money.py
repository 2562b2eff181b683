"""Amounts: typed text becomes exact cents or a clear refusal; conversion rounds half up."""

from decimal import Decimal

import pytest

from hrdfund.core.money import (
    MAX_AMOUNT,
    MAX_RATE,
    MIN_RATE,
    ConversionError,
    MoneyError,
    check_currency,
    convert,
    format_money,
    parse_amount,
    parse_rate,
    quantize,
    stored_amount,
    stored_rate,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12.50", "12.50"),
        ("12.5", "12.50"),
        ("12", "12.00"),
        ("1,000.00", "1000.00"),
        ("1,234,567.89", "1234567.89"),
        ("  300  ", "300.00"),
        ("0.01", "0.01"),
        ("999999999999.99", "999999999999.99"),
        (Decimal("7.1"), "7.10"),
        (25, "25.00"),
    ],
)
def test_amounts_people_type_are_read_exactly(text, expected):
    value = parse_amount(text)
    assert isinstance(value, Decimal)
    assert value == Decimal(expected)
    assert str(value) == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        (12.5, "never floats"),
        (0.1, "never floats"),
        ("-5", "above zero"),
        ("-0.01", "above zero"),
        ("-0", "above zero"),
        ("0", "above zero"),
        ("0.00", "above zero"),
        ("1.234", "may mean thousands"),
        ("0.005", "two decimal places"),
        ("100.005", "may mean thousands"),
        # As Spanish, Portuguese or Turkish pages write thousands: never 1.50 or 250.00.
        ("1.500", "may mean thousands"),
        ("250.000", "may mean thousands"),
        ("١٫٥٠٠", "may mean thousands"),
        ("1.5000", "two decimal places"),
        ("NaN", "in figures"),
        ("sNaN", "in figures"),
        ("-sNaN", "in figures"),
        (Decimal("sNaN"), "in figures"),
        ("Infinity", "in figures"),
        ("-inf", "in figures"),
        (Decimal("Infinity"), "in figures"),
        ("1000000000000", "too large"),
        ("1e3", "in figures"),
        ("1E3", "in figures"),
        ("1e30", "in figures"),
        ("0E-1000000", "in figures"),
        ("9" * 40, "too large"),
        ("9" * 41, "at most 40 characters"),
        ("0." + "0" * 5000 + "1", "at most 40 characters"),
        ("1_000", "in figures"),
        ("1 000", "in figures"),
        ("+5", "in figures"),
        ("0x10", "in figures"),
        ("abc", "in figures"),
        ("", "in figures"),
        ("   ", "in figures"),
        (".", "in figures"),
        ("12.5.0", "in figures"),
        ("€12", "in figures"),
        ("１2", "in figures"),  # digits of two scripts in one amount
        (None, "in figures"),
        (True, "in figures"),
        ("12,50", "commas only between thousands"),
        ("1,0000", "commas only between thousands"),
        ("1,000,00", "commas only between thousands"),
        ("0,500", "commas only between thousands"),  # half a Tunisian dinar, not 500
    ],
)
def test_unusable_amounts_are_refused_with_a_reason(text, reason):
    """Every refusal is a MoneyError a form can show, never a crash or a wrong amount:
    what Python's Decimal() would take (exponents, NaN, underscores) included."""
    with pytest.raises(MoneyError, match=reason):
        parse_amount(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("１２", "12.00"),  # full-width
        ("１２．５０", "12.50"),
        ("١٢٠٠٫٥", "1200.50"),  # Arabic-Indic, with the Arabic decimal separator
        ("١٬٢٠٠", "1200.00"),  # and its thousands separator
        ("۱۲۳", "123.00"),  # Eastern Arabic-Indic (Persian, Urdu)
        ("१२", "12.00"),  # Devanagari
    ],
)
def test_digits_of_other_scripts_are_read_as_the_digits_they_are(text, expected):
    """A defender on a phone with an Arabic or a Japanese keyboard types digits of that
    script: they are read deliberately, by each digit's value, under the same rules."""
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1250,50", "1250.50"),
        ("15000,5", "15000.50"),
        ("1.250,50", "1250.50"),  # Spanish, Portuguese, Turkish
        ("20.000,50", "20000.50"),
        ("1 250,50", "1250.50"),
        ("1\u202f250,50", "1250.50"),  # French: a narrow no-break space
        ("15\u00a0000,50", "15000.50"),  # Russian: a no-break space
        ("1.500.000", "1500000.00"),  # two points: thousands, whatever the language
        ("1 500 000", "1500000.00"),
        ("1250.50", "1250.50"),  # a point before cents still reads as written
        ("1,250.50", "1250.50"),  # and so does the English way, whole
        ("1,250,000", "1250000.00"),
        ("۱۲۵۰٫۵", "1250.50"),
    ],
)
def test_where_cents_follow_a_comma_a_comma_is_read_as_the_decimal_comma(text, expected):
    """A defender reading in French, Spanish, Portuguese, Russian or Turkish writes
    amounts as their pages write them: read exactly, not refused."""
    assert parse_amount(text, decimal_comma=True) == Decimal(expected)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1,500", "comma before three figures"),  # 1500 in English, 1.5 in French
        ("1.500", "two figures after the comma"),  # 1500 in Spanish, 1.5 in English
        ("1,5000", "two decimal places"),
        ("1.25,50", "a comma before the cents"),
        ("1 50,5", "a comma before the cents"),
        ("1,2,3", "a comma before the cents"),
        (",50", "a comma before the cents"),
        ("12,5e3", "a comma before the cents"),
        ("-1,50", "above zero"),
        # Figures that only look like digits are refused in words, never a server error.
        ("1,\u00b2", "a comma before the cents"),
        ("\u00b2,5", "a comma before the cents"),
        ("\u2460,5", "a comma before the cents"),
        # A first group of thousands never starts with 0: half a dinar is not 500.
        ("0.500,00", "a comma before the cents"),
        ("0 500", "a comma before the cents"),
    ],
)
def test_where_cents_follow_a_comma_what_may_mean_two_amounts_is_refused(text, reason):
    with pytest.raises(MoneyError, match=reason):
        parse_amount(text, decimal_comma=True)


def test_zero_only_where_allowed():
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")
    for text in ("-1", "-0", "-0.00"):
        with pytest.raises(MoneyError, match="zero or more"):
            parse_amount(text, allow_zero=True)


def test_the_largest_amount_fits_the_columns():
    """Numeric(14, 2) holds twelve digits before the point."""
    assert MAX_AMOUNT == Decimal("999999999999.99")
    assert parse_amount(str(MAX_AMOUNT)) == MAX_AMOUNT


@pytest.mark.parametrize(
    "amount, rate, expected",
    [
        ("10.005", "1", "10.01"),
        ("10.004", "1", "10.00"),
        ("0.125", "1", "0.13"),
        ("100", "0.00125", "0.13"),
        ("100", "0.00124999", "0.12"),
        ("3.333", "1.5", "5.00"),
        ("1000", "129.41250000", "129412.50"),
        ("2.50", "0.002", "0.01"),
        ("2.49", "0.002", "0.00"),
    ],
)
def test_convert_rounds_half_up_to_cents(amount, rate, expected):
    """Half a cent rounds up, as a bank statement does, never to even."""
    result = convert(Decimal(amount), Decimal(rate))
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -2


def test_a_small_negative_amount_rounds_to_a_plain_zero():
    """ "-0.00" would print with a minus sign and seal apart from the 0.00 a database
    gives back."""
    assert str(quantize(Decimal("-0.003"))) == "0.00"
    assert str(convert(Decimal("-0.01"), Decimal("0.3"))) == "0.00"
    assert str(quantize(Decimal("-0.005"))) == "-0.01"


@pytest.mark.parametrize("code", ["eur", "EURO", "XXX", "", None, "EU"])
def test_unknown_currencies_are_refused(code):
    with pytest.raises(MoneyError):
        check_currency(code)


def test_known_currencies_are_accepted():
    assert check_currency("KES") == "KES"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.0825", "1.08250000"),
        ("130", "130.00000000"),
        ("0.000001", "0.00000100"),
        ("1000000", "1000000.00000000"),
        ("1,234.5", "1234.50000000"),
        ("٠٫٥", "0.50000000"),
        (Decimal("0.91"), "0.91000000"),
    ],
)
def test_rates_are_read_exactly_within_their_range(text, expected):
    assert parse_rate(text) == Decimal(expected)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("1e40", "in figures"),
        ("1e30", "in figures"),
        ("Infinity", "in figures"),
        ("sNaN", "in figures"),
        ("NaN", "in figures"),
        ("-1", "between 0.000001 and 1,000,000"),
        ("0", "between 0.000001 and 1,000,000"),
        ("-0", "between 0.000001 and 1,000,000"),
        ("0.0000009", "between 0.000001 and 1,000,000"),
        ("1000000.01", "between 0.000001 and 1,000,000"),
        ("9" * 30, "between 0.000001 and 1,000,000"),
        ("1.123456789", "eight decimal places"),
        ("1_000", "in figures"),
        ("1,5", "in figures"),
        (1.5, "never floats"),
    ],
)
def test_unusable_rates_are_refused_with_a_reason(text, reason):
    with pytest.raises(MoneyError, match=reason):
        parse_rate(text)


def test_the_rate_range_is_the_same_either_way_round():
    """A rate read the other way round (1 / rate, at eight places) stays in the range."""
    assert (1 / MIN_RATE).quantize(Decimal("0.00000001")) == MAX_RATE
    assert (1 / MAX_RATE).quantize(Decimal("0.00000001")) == MIN_RATE


@pytest.mark.parametrize(
    "amount, rate",
    [
        ("1000", "1e40"),
        (MAX_AMOUNT, "2"),
        ("1000", "0"),
        ("1000", "-1"),
        ("1000", "NaN"),
        ("1000", "sNaN"),
        ("1000", "Infinity"),
        ("sNaN", "1"),
    ],
)
def test_a_conversion_that_overflows_is_a_conversion_error(amount, rate):
    """A rate written behind the application would make a conversion fail deep in the
    decimal module; it is one error the pages turn into "no usable rate"."""
    with pytest.raises(ConversionError, match="No usable rate"):
        convert(Decimal(amount), Decimal(rate))


@pytest.mark.parametrize(
    "value",
    [
        Decimal("100.005"),
        Decimal("0.001"),
        Decimal("-0.00"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("1E+12"),
        12.5,
        "12.50",
        None,
        True,
    ],
)
def test_a_money_column_stores_only_whole_cents(value):
    with pytest.raises(MoneyError):
        stored_amount(value)


@pytest.mark.parametrize(
    "value, expected",
    [
        (Decimal("12.5"), "12.50"),
        (Decimal("100.000"), "100.00"),
        (Decimal("-3.10"), "-3.10"),
        (7, "7.00"),
        (MAX_AMOUNT, str(MAX_AMOUNT)),
    ],
)
def test_a_money_column_stores_cents_exactly(value, expected):
    assert str(stored_amount(value)) == expected


@pytest.mark.parametrize(
    "value",
    [Decimal("1E+40"), Decimal("0"), Decimal("1.123456789"), Decimal("NaN"), 1.1, "1.1"],
)
def test_a_rate_column_stores_only_rates_in_range(value):
    with pytest.raises(MoneyError):
        stored_rate(value)


@pytest.mark.parametrize(
    "amount, currency, shown",
    [
        ("999999999999.99", "XOF", "XOF\u202f999,999,999,999.99"),
        ("1000.00", "XOF", "XOF\u202f1,000"),
        ("12.50", "JPY", "¥12.50"),
        ("1250.50", "EUR", "€1,250.50"),
    ],
)
def test_an_amount_with_cents_in_a_currency_without_them_shows_its_cents(amount, currency, shown):
    """CFA francs and yen are written without cents; an amount that has some (a referral
    typed 999,999,999,999.99) shows them, never rounded to a million it is not."""
    assert format_money(Decimal(amount), currency).replace("\xa0", "\u202f") == shown


@pytest.mark.parametrize(
    ("locale", "west", "central"),
    [
        ("en", "XOF\xa0622,193.71", "XAF\xa0176,709"),
        ("fr", "622\u202f193,71\xa0XOF", "176\u202f709\xa0XAF"),
        ("es", "622.193,71\xa0XOF", "176.709\xa0XAF"),
    ],
)
def test_the_two_cfa_francs_are_told_apart_by_their_codes(locale, west, central):
    """Their symbols differ by a space ("F CFA", "FCFA"): finance could not tell which
    franc a figure is in; their codes say it."""
    assert format_money(Decimal("622193.71"), "XOF", locale) == west
    assert format_money(Decimal("176709"), "XAF", locale) == central
    assert "€" in format_money(Decimal("12.50"), "EUR", locale)  # the others keep symbols


@pytest.mark.parametrize(
    ("currency", "locale", "shown"),
    [
        ("TZS", "en", "TZS\xa02,591,438.41"),
        ("SEK", "zh", "SEK\xa02,591,438.41"),
        ("USD", "en", "$2,591,438.41"),
        ("CAD", "en", "CA$2,591,438.41"),
        ("KES", "fr", "2\u202f591\u202f438,41\xa0KES"),
    ],
)
def test_a_symbol_of_letters_keeps_a_space_from_the_figures(currency, locale, shown):
    """TZS2,591,438.41 reads as one word; a sign (€, $) sits close as it always did."""
    assert format_money(Decimal("2591438.41"), currency, locale) == shown


@pytest.mark.parametrize(
    "text, expected",
    [("1,085", "1.085"), ("0,00769231", "0.00769231"), ("140,5", "140.5"), ("1.0825", "1.0825")],
)
def test_where_decimals_follow_a_comma_a_rate_reads_them_so(text, expected):
    """1,085 typed on a French page is a euro's 1.085 dollars, never 1085."""
    assert parse_rate(text, decimal_comma=True) == Decimal(expected)


@pytest.mark.parametrize("text", ["1.085,5", "1,085,5", "1,0,8"])
def test_where_decimals_follow_a_comma_a_rate_with_a_point_too_is_refused(text):
    with pytest.raises(MoneyError, match="a comma before the decimals"):
        parse_rate(text, decimal_comma=True)
