"""Forms of the money side: a payment, its reversal, the applicant's receipt, a bank
statement to reconcile."""

import secrets

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..core.fields import Entered, MoneyField, RateField
from ..core.forms import PageForm, PrefixedForm, currency_options, options
from ..core.money import format_money
from ..ledger.models import Channel, PayeeType
from .bounds import RATE_OR_NOTHING
from .models import HoldReason

PAYEE_LABELS = {
    PayeeType.DEFENDER: _l("The defender"),
    PayeeType.VENDOR: _l("A vendor (hospital, landlord, lawyer...)"),
    PayeeType.HOST_ORGANISATION: _l("A host organisation"),
    PayeeType.INTERMEDIARY: _l("A trusted intermediary"),
}
CHANNEL_LABELS = {
    Channel.BANK: _l("Bank transfer"),
    Channel.MONEY_TRANSFER: _l("Money transfer service"),
    Channel.MOBILE_MONEY: _l("Mobile money"),
    Channel.CASH_THROUGH_PARTNER: _l("Cash through a partner"),
    Channel.IN_KIND: _l("In kind"),
}
#: Why a payment waits for a second person, in plain words.
BOUND_WORDS = {
    HoldReason.RATE: _l("the rate is far from the fund's table, or the table has none"),
    HoldReason.OWN_RATE: _l(
        "the table rate it uses or is measured against is one its payer recorded and nobody "
        "else confirmed"
    ),
    HoldReason.FEE: _l("the fee is a large share of the payment"),
    HoldReason.DIFFERENCE: _l("the exchange difference is a large share of the payment"),
}


def instalment_words(instalment, due):
    """An instalment as the payment form offers it: its number, due date, and what is
    still due of it in the grant's currency."""
    locale = str(get_locale() or "en")
    amount = format_money(instalment.amount, instalment.currency, locale)
    if due <= 0:
        return _(
            "%(seq)d · due %(day)s · %(amount)s, paid",
            seq=instalment.seq,
            day=instalment.due_on.isoformat(),
            amount=amount,
        )
    if due == instalment.amount:
        return _(
            "%(seq)d · due %(day)s · %(amount)s to pay",
            seq=instalment.seq,
            day=instalment.due_on.isoformat(),
            amount=amount,
        )
    return _(
        "%(seq)d · due %(day)s · %(due)s still to pay of %(amount)s",
        seq=instalment.seq,
        day=instalment.due_on.isoformat(),
        due=format_money(due, instalment.currency, locale),
        amount=amount,
    )


class HeldConfirmForm(PrefixedForm):
    """A second person confirms a held payment; the button is the whole form."""

    PREFIX = "confirm"


class PaymentForm(PrefixedForm):
    """One payment out of a grant, as finance records it."""

    PREFIX = "pay"

    allocation = SelectField(_l("Paid from pool"), coerce=int)
    instalment = SelectField(_l("Instalment"), coerce=int)
    #: An entry of the directory with payment details: its payee type and details are
    #: taken from the entry (choices set by ``panels.payment_form``).
    payee_entry = SelectField(
        _l("Payee from the directory (empty: the two fields below)"), default=""
    )
    payee_type = SelectField(_l("Paid to"), choices=options(PAYEE_LABELS.items()))
    payee_details = TextAreaField(
        _l("Payee details (account, phone or name; seen by finance only)"), [Length(max=500)]
    )
    channel = SelectField(_l("Channel"), choices=options(CHANNEL_LABELS.items()))
    amount_paid = MoneyField(_l("Amount paid"), [Entered(_l("Enter the amount paid."))])
    currency_paid = SelectField(_l("Currency paid"), choices=currency_options())
    rate = RateField(_l("Rate: pool currency per unit paid (empty: the fund's table)"))
    rate_source = StringField(_l("Source of the rate"), [Optional(), Length(max=80)])
    rate_reason = StringField(
        _l("Why this rate (when far from the table)"), [Optional(), Length(max=200)]
    )
    fee = MoneyField(_l("Fee, in the pool's currency"), allow_zero=True, default=0)
    paid_on = DateField(_l("Paid on"), [DataRequired(_l("Enter the date of payment."))])
    reference = StringField(_l("Payment reference"), [Optional(), Length(max=64)])
    proof = FileField(_l("Proof of payment (PDF, PNG or JPEG)"))
    idempotency_key = HiddenField(validators=[Length(max=64)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.idempotency_key.data:
            self.idempotency_key.data = secrets.token_hex(16)

    def validate_payee_details(self, field):
        """Who was paid: typed here, or an entry of the directory."""
        if not self.payee_entry.data and not (field.data or "").strip():
            raise ValidationError(_l("Enter who was paid and where."))

    def validate_rate(self, field):
        """A source or reason typed without a rate would be dropped: say so instead."""
        typed = (self.rate_source.data or "").strip() or (self.rate_reason.data or "").strip()
        if field.data is None and not field.process_errors and typed:
            raise ValidationError(RATE_OR_NOTHING)


class ReverseForm(PrefixedForm):
    """A payment that failed, came back or was wrong."""

    PREFIX = "reverse"

    reason = StringField(
        _l("Why (bounced, returned, wrong amount...)"),
        [DataRequired(_l("Say why the payment is reversed.")), Length(max=200)],
    )
    amount = MoneyField(
        _l("Amount taken back, in the pool's currency (empty: all that has not come back yet)")
    )
    fee_refunded = BooleanField(_l("The fee was refunded too"))


class ProofForm(PrefixedForm):
    """The proof of a payment recorded without one, added when it came."""

    PREFIX = "proof"

    proof = FileField(
        _l("Proof of payment (PDF, PNG or JPEG)"),
        validators=[FileRequired(_l("Choose the file of the proof."))],
    )


class MoveForm(PrefixedForm):
    """A manager moving the dates of a plan's instalments not paid on yet."""

    PREFIX = "move"

    first_due_on = DateField(
        _l("The first of them due on"),
        [DataRequired(_l("Enter the date the first of them falls due."))],
    )


class RefuseForm(PrefixedForm):
    """A second person refusing a held payment."""

    PREFIX = "refuse"

    reason = StringField(
        _l("Why it is refused"),
        [DataRequired(_l("Say why the payment is refused.")), Length(max=200)],
    )


class StatementForm(PageForm):
    """A bank's or provider's statement of what it delivered, as CSV."""

    statement = FileField(
        _l("Statement (CSV: reference, amount, currency, date, status)"),
        validators=[FileRequired(_l("Choose the statement file."))],
    )
