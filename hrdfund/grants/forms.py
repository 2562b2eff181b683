"""The approval form (an amount, and the pools it is drawn from), the payment plan and
the closing of a grant."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..cases.forms import LONG_MAX
from ..cases.models import Message
from ..core.fields import Entered, MoneyField, WholeNumberField
from ..core.forms import PartForm, PrefixedForm, options
from .models import PlanKind
from .plans import MAX_MONTHS

#: Pools one approval can draw on; more is rare and can be done as a second grant.
DRAW_ROWS = 3


class DrawForm(PartForm):
    pool = SelectField(_l("Pool"), validate_choice=False)
    amount = MoneyField(_l("Amount from this pool"))


class ApproveForm(PrefixedForm):
    PREFIX = "approve"

    amount = MoneyField(_l("Amount approved"), [Entered(_l("Enter the amount approved."))])
    draws = FieldList(FormField(DrawForm), min_entries=DRAW_ROWS, max_entries=DRAW_ROWS)


PLAN_LABELS = {
    PlanKind.ONE_OFF: _l("One payment"),
    PlanKind.TRANCHES: _l("Tranches"),
    PlanKind.STIPEND: _l("Monthly stipend"),
}


class SecondApprovalForm(PrefixedForm):
    """A second manager confirms a first approval as it stands, from the dashboard; the
    button is the whole form."""

    PREFIX = "second"


class PlanForm(PrefixedForm):
    """How an approved grant is paid."""

    PREFIX = "plan"

    kind = SelectField(_l("How it is paid"), choices=options(PLAN_LABELS.items()))
    starts_on = DateField(
        _l("First payment on"), [DataRequired(_l("Enter the date of the first payment."))]
    )
    count = WholeNumberField(
        _l("Number of tranches or months"),
        [Optional(), NumberRange(min=1, max=MAX_MONTHS, message=_l("Between 1 and 36."))],
        default=1,
    )
    interval_days = WholeNumberField(
        _l("Days between tranches"),
        [Optional(), NumberRange(min=1, max=366, message=_l("Between 1 and 366 days."))],
        default=30,
    )
    renewal_review_on = DateField(_l("Renewal review on (stipends)"), [Optional()])
    hold_for_report = BooleanField(_l("Hold each next tranche until the applicant reports"))


class CloseForm(PrefixedForm):
    """Closing a grant; what it did not use goes back to its pools."""

    PREFIX = "close"

    reason = StringField(
        _l("Why the grant closes"),
        [DataRequired(_l("Say why the grant closes.")), Length(max=200)],
    )


class QuestionForm(PrefixedForm):
    PREFIX = "question"

    question = TextAreaField(
        _l("Question for the applicant"),
        [DataRequired(_l("Write the question first.")), Length(max=Message.BODY_MAX)],
    )


class RejectForm(PrefixedForm):
    PREFIX = "reject"

    reason = TextAreaField(
        _l("Reason, in plain words: the applicant reads it"),
        [DataRequired(_l("Give the applicant a reason.")), Length(max=LONG_MAX)],
    )
