"""Forms of the applicant side. Limits come from the models; every label is translated."""

import functools

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..core import geo
from ..core.fields import MoneyField
from ..core.forms import PageForm, PartForm, options
from ..core.money import CURRENCIES
from ..core.support import CATEGORY_LABELS, Category
from .categories import CATEGORY_FIELDS
from .models import (
    BudgetLine,
    ConsentKind,
    DocumentKind,
    Gender,
    Message,
    Urgency,
    VerificationStatus,
)

TEXT_MAX = 200
LONG_MAX = 2000
STORY_MAX = 4000

#: What the defender agrees to, in the form and on the case page where it is taken back.
CONSENT_LABELS = {
    ConsentKind.REFERRAL: _l(
        "If this fund cannot help, it may refer the case to another protection fund"
    ),
    ConsentKind.STORY: _l("An anonymised story of this case may be shown to the fund's donors"),
}


def country_choices():
    """Every country (as :func:`geo.countries` defines them), named in the user's language
    and sorted by name, after an empty first choice."""
    return _countries(str(get_locale() or "en"))


@functools.cache
def _countries(language):
    """The country options of one language, built once: the applicant's forms show them
    up to twice each, and building them took about a quarter of a millisecond a time."""
    return tuple(options([("", _l("Choose a country"))] + list(geo.countries(language))))


class BudgetLineForm(PartForm):
    description = StringField(
        _l("What it pays for"), [Optional(), Length(max=BudgetLine.DESCRIPTION_MAX)]
    )
    amount = MoneyField(_l("Amount"))

    def validate_description(self, field):
        """A described cost without an amount would be lost on saving: ask for it."""
        if (
            field.data
            and field.data.strip()
            and self.amount.data is None
            and not self.amount.process_errors
        ):
            raise ValidationError(_l("Enter the amount for this line."))


class DependantForm(PartForm):
    relation = StringField(_l("Relationship to you"), [Optional(), Length(max=60)])
    age = IntegerField(_l("Age"), [Optional(), NumberRange(min=0, max=120)])


class ReferenceForm(PartForm):
    name = StringField(_l("Name"), [Optional(), Length(max=TEXT_MAX)])
    organisation = StringField(_l("Organisation"), [Optional(), Length(max=TEXT_MAX)])
    contact = StringField(
        _l("How the fund can reach them safely"), [Optional(), Length(max=TEXT_MAX)]
    )


def _detail_field(kind, label):
    if kind == "text":
        return StringField(label, [Optional(), Length(max=TEXT_MAX)])
    if kind == "long":
        return TextAreaField(label, [Optional(), Length(max=LONG_MAX)])
    if kind == "int":
        return IntegerField(label, [Optional(), NumberRange(min=0, max=1000)])
    if kind == "money":
        return MoneyField(label)
    if kind == "scope":
        return SelectField(
            label,
            [Optional()],
            choices=options(
                [
                    ("", _l("Choose")),
                    ("in_country", _l("Within my country")),
                    ("region", _l("To a nearby country")),
                    ("abroad", _l("Further abroad")),
                ]
            ),
        )
    if kind == "where":
        return SelectField(
            label,
            [Optional()],
            choices=options(
                [("", _l("Choose")), ("in_country", _l("In my country")), ("exile", _l("In exile"))]
            ),
        )
    if kind == "country":
        return SelectField(label, [Optional()], choices=country_choices)
    raise ValueError(kind)


def details_form_class(category):
    """A sub-form with the questions of one category."""
    fields = {
        name: _detail_field(kind, label)
        for name, kind, label, _ in CATEGORY_FIELDS[Category(category)]
    }
    return type(f"Details{Category(category).name.title()}Form", (PartForm,), fields)


class StartForm(PageForm):
    fund = RadioField(
        _l("Which fund do you apply to?"),
        choices=[],
        validators=[InputRequired(_l("Choose a fund."))],
    )
    category = RadioField(
        _l("What kind of support is needed?"),
        choices=options([(c.value, label) for c, label in CATEGORY_LABELS.items()]),
        validators=[InputRequired(_l("Choose the kind of support."))],
    )


class ReferralStartForm(StartForm):
    consent = BooleanField(
        _l(
            "The defender agreed that we apply on their behalf and share "
            "these details with the fund"
        ),
        validators=[DataRequired(_l("A referral needs the defender's consent."))],
    )
    consent_method = SelectField(
        _l("How the defender gave consent"),
        choices=options(
            [
                ("in_person", _l("In person")),
                ("phone", _l("By phone")),
                ("secure_message", _l("By secure message")),
            ]
        ),
    )


def application_form_class(category):
    """The whole application form for one category."""

    class ApplicationForm(PageForm):
        defender_name = StringField(
            _l("Name or pseudonym the fund may use"), [Optional(), Length(max=120)]
        )
        country = SelectField(
            _l("Country where the defender is now"), [Optional()], choices=country_choices
        )
        gender = SelectField(
            _l("Gender"),
            [Optional()],
            choices=options(
                [
                    ("", _l("Prefer not to say")),
                    (Gender.WOMAN.value, _l("Woman")),
                    (Gender.MAN.value, _l("Man")),
                    (Gender.NON_BINARY.value, _l("Non-binary")),
                ]
            ),
        )
        urgency = RadioField(
            _l("How urgent is it?"),
            [Optional()],
            default=Urgency.NORMAL.value,
            choices=options(
                [
                    (Urgency.URGENT.value, _l("Urgent: danger now or within days")),
                    (Urgency.NORMAL.value, _l("Not urgent")),
                ]
            ),
        )
        urgency_reason = TextAreaField(
            _l("Why is it urgent, and why could it not be foreseen?"),
            [Optional(), Length(max=LONG_MAX)],
        )
        defender_work = TextAreaField(
            _l("The defender's human rights work"), [Optional(), Length(max=STORY_MAX)]
        )
        threat = TextAreaField(
            _l("The threat or attack linked to that work"), [Optional(), Length(max=STORY_MAX)]
        )
        details = FormField(details_form_class(category), label=_l("About this support"))
        currency = SelectField(
            _l("Currency of the budget"),
            [Optional()],
            default="USD",
            choices=options([(c, c) for c in CURRENCIES]),
        )
        budget = FieldList(FormField(BudgetLineForm), min_entries=5, max_entries=10)
        dependants = FieldList(FormField(DependantForm), min_entries=4, max_entries=10)
        references = FieldList(FormField(ReferenceForm), min_entries=2, max_entries=2)
        other_funders = TextAreaField(
            _l("Other funders asked, or already paying, for the same need"),
            [Optional(), Length(max=LONG_MAX)],
        )
        consent_referral = BooleanField(CONSENT_LABELS[ConsentKind.REFERRAL])
        consent_story = BooleanField(CONSENT_LABELS[ConsentKind.STORY])
        save = SubmitField(_l("Save draft"))
        submit = SubmitField(_l("Send application"))

    return ApplicationForm


class MessageForm(PageForm):
    body = TextAreaField(
        _l("Your message"),
        [DataRequired(_l("Write a message first.")), Length(max=Message.BODY_MAX)],
    )


class DocumentForm(PageForm):
    kind = SelectField(
        _l("What the document is"),
        choices=options(
            [
                (DocumentKind.QUOTE.value, _l("A quote or invoice")),
                (DocumentKind.MEDICAL_REPORT.value, _l("A medical report")),
                (DocumentKind.EVIDENCE.value, _l("Evidence of the threat")),
                (DocumentKind.OTHER.value, _l("Something else")),
            ]
        ),
    )
    file = FileField(
        _l("File (PDF, PNG or JPEG)"), validators=[FileRequired(_l("Choose a file to send."))]
    )


class ReportForm(PageForm):
    felt_safer = RadioField(
        _l("Do you feel safer since the support?"),
        choices=options([("yes", _l("Yes")), ("no", _l("No")), ("unsure", _l("Not sure"))]),
        validators=[InputRequired(_l("Choose an answer."))],
    )
    continued_work = RadioField(
        _l("Could you continue your human rights work?"),
        choices=options([("yes", _l("Yes")), ("no", _l("No")), ("unsure", _l("Not sure"))]),
        validators=[InputRequired(_l("Choose an answer."))],
    )
    narrative = TextAreaField(
        _l("How was the support used, and what changed? (optional)"),
        [Optional(), Length(max=LONG_MAX)],
    )


REFERENCE_STATUSES = {
    VerificationStatus.PENDING: _l("Not contacted yet"),
    VerificationStatus.CONFIRMED: _l("Confirmed the account"),
    VerificationStatus.NOT_CONFIRMED: _l("Did not confirm"),
    VerificationStatus.UNREACHABLE: _l("Could not be reached"),
}
