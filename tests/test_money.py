"""Amounts: typed text becomes exact cents or a clear refusal; conversion rounds half up."""

from decimal import Decimal

import pytest

from hrdfund.money import (
    MAX_AMOUNT,
    MoneyError,
    check_currency,
    convert,
    parse_amount,
    quantize,
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
        ("-5", "more than zero"),
        ("-0.01", "more than zero"),
        ("0", "more than zero"),
        ("0.00", "more than zero"),
        ("1.234", "two decimal places"),
        ("0.005", "two decimal places"),
        ("NaN", "not a number"),
        ("sNaN", "not a number"),
        ("Infinity", "not a number"),
        ("-inf", "not a number"),
        ("1000000000000", "too large"),
        ("1e30", "too large"),
        ("9" * 40, "too large"),
        ("abc", "not a number"),
        ("", "not a number"),
        ("12.5.0", "not a number"),
        ("€12", "not a number"),
        (None, "not a number"),
        ("12,50", "commas only between thousands"),
        ("1,0000", "commas only between thousands"),
    ],
)
def test_unusable_amounts_are_refused_with_a_reason(text, reason):
    """Every refusal is a MoneyError a form can show, never a crash or a wrong amount."""
    with pytest.raises(MoneyError, match=reason):
        parse_amount(text)


def test_zero_only_where_allowed():
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")
    with pytest.raises(MoneyError):
        parse_amount("-1", allow_zero=True)


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
