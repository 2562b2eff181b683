"""The form on each payment the applicant side sees: "I received it", "I received less"
(with the amount received) or "I did not receive it", with an optional short note."""

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length, Optional, StopValidation

from ..core.fields import MoneyField
from ..core.forms import PageForm
from ..ledger.models import ReceiptAnswerKind
from .receipts import NOTE_MAX


class ReceiptAnswerForm(PageForm):
    """An answer to "did this payment reach you?". The buttons send the answer; the amount
    counts only with "I received less", in the payment's currency (sent with the form, and
    checked against the payment)."""

    answer = StringField(validators=[Length(max=20)])
    amount = MoneyField(_l("Amount you received"))
    currency = HiddenField()
    note = TextAreaField(
        _l("A short note for the fund (optional)"), [Optional(), Length(max=NOTE_MAX)]
    )

    def validate_answer(self, field):
        if field.data not in {kind.value for kind in ReceiptAnswerKind}:
            raise StopValidation(_l("Choose one of the answers offered."))

    def validate_amount(self, field):
        if self.answer.data != ReceiptAnswerKind.LESS:
            # Only "I received less" takes an amount: whatever else was typed is dropped.
            field.errors.clear()
            field.data = None
            raise StopValidation()
        if field.data is None and not field.errors:
            raise StopValidation(_l("Enter the amount you received."))
