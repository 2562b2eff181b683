"""The form fields for money, rates and whole numbers, used by every form that takes one.

What a person types is read by :func:`hrdfund.core.money.parse_amount` or
:func:`hrdfund.core.money.parse_rate` and nothing else, so every form refuses the same things
with the same words (more than two places, exponents, NaN, infinities, signs, underscores,
commas as decimals, anything beyond Numeric(14, 2)). A field shows back what was typed
when it was refused, and a stored Decimal, or the text a draft kept, otherwise.
"""

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from wtforms import Field, IntegerField
from wtforms.validators import StopValidation
from wtforms.widgets import TextInput

from .digits import ascii_digits, plain_number
from .money import MAX_LENGTH, MoneyError, parse_amount, parse_rate, writes_decimal_comma


class Entered:
    """The field must be filled in: empty (or only spaces) gets ``message``; text that
    does not read as a number keeps its own, more precise, error."""

    field_flags = {"required": True}

    def __init__(self, message):
        self.message = message

    def __call__(self, form, field):
        if field.data is None and not field.process_errors:
            raise StopValidation(self.message)


class _NumberField(Field):
    """A text input read by ``parse``; empty is None, which is allowed unless the field
    has the :class:`Entered` validator."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs):
        render_kw = {"inputmode": "decimal", "autocomplete": "off"}
        render_kw.update(kwargs.pop("render_kw", None) or {})
        super().__init__(label, validators, render_kw=render_kw, **kwargs)
        self._kept = None

    def parse(self, text):
        raise NotImplementedError

    def process_data(self, value):
        """Data given to the form: a Decimal from the database, or text a draft kept. Text
        that does not read as a number is shown as it was, for its owner to correct."""
        self._kept = None
        if value is None or value == "":
            self.data = None
            return
        try:
            self.data = self.parse(value)
        except MoneyError:
            self.data = None
            self._kept = str(value)

    def process_formdata(self, valuelist):
        if not valuelist:  # not sent at all: the default stands
            return
        if not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = self.parse(valuelist[0])
        except MoneyError as exc:
            self.data = None
            raise ValueError(str(exc)) from None

    def _value(self):
        if self.raw_data:
            # What was typed, to correct; anything longer is refused whatever it says.
            return self.raw_data[0][: MAX_LENGTH * 2]
        if self.data is not None:
            # As the reader's language writes a number, and reads it back: 1500,50 where
            # cents follow a comma; never grouped, so nothing can read as thousands.
            shown = format(self.data, "f")
            return shown.replace(".", ",") if writes_decimal_comma() else shown
        return self._kept or ""


class MoneyField(_NumberField):
    """An amount: above zero, or zero or more with ``allow_zero``; its data is a Decimal in
    cents or None."""

    def __init__(self, label=None, validators=None, allow_zero=False, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.allow_zero = allow_zero

    def parse(self, text):
        if isinstance(text, Decimal | int) and not isinstance(text, bool):
            # A stored amount: shown as it is, even one a later rule would refuse.
            return parse_amount(text, allow_zero=True)
        return parse_amount(text, allow_zero=self.allow_zero, decimal_comma=writes_decimal_comma())


class RateField(_NumberField):
    """An exchange rate: from MIN_RATE to MAX_RATE units per unit, at most eight places;
    its data is a Decimal or None."""

    def parse(self, text):
        return parse_rate(text, decimal_comma=writes_decimal_comma())


class WholeNumberField(IntegerField):
    """A whole number (an age, a count of months or people), typed in the digits of any
    script. A text box with a keyboard of figures, not a number box: a browser empties a
    number box holding ۱۲ and sends nothing, so the answer was lost without a word."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs):
        render_kw = {"inputmode": "numeric", **(kwargs.pop("render_kw", None) or {})}
        super().__init__(label, validators, render_kw=render_kw, **kwargs)

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        typed = ascii_digits(valuelist[0]).strip()
        if plain_number(typed) and len(typed) <= 9:
            self.data = int(typed)
            return
        self.data = None
        if typed:
            raise ValueError(_l("Enter a whole number in figures, such as 12."))

    def pre_validate(self, form):
        """An answer that is no number says so once: no range or other rule is weighed
        against the nothing it was read as."""
        if self.process_errors:
            raise StopValidation()
