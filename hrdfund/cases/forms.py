"""Forms of the applicant side. Limits come from the models; every label is translated."""

import functools

from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    FormField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    AnyOf,
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..core import geo
from ..core.fields import MoneyField, WholeNumberField
from ..core.forms import (
    KeptOptionsSelect,
    PageForm,
    PartForm,
    PrefixedForm,
    currency_options,
    options,
)
from ..core.money import MoneyError, check_units
from ..core.support import CATEGORY_LABELS, Category
from . import steps
from .categories import CATEGORY_FIELDS
from .labels import LABEL_MAX
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
#: The consent a partner organisation records when it refers a defender.
SUBMISSION_LABEL = _l("The partner organisation may apply on the defender's behalf")


#: How the defender told a partner organisation that they give or withdraw a consent (the
#: codes of ``consents.PARTNER_HOW``).
HOW_CHOICES = [
    ("in_person", _l("In person")),
    ("phone", _l("By phone")),
    ("in_writing", _l("In writing")),
    ("secure_message", _l("By secure message")),
]


#: The countries' select: their options drawn once per language and answer.
COUNTRY_SELECT = KeptOptionsSelect()


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
    #: The budget's currency, as its form chose it: set on each line before the form is
    #: validated (:func:`_lines_in_currency`), so that a line in cents of a currency that
    #: has none is refused beside its amount.
    budget_currency = None

    def validate_amount(self, field):
        try:
            check_units(field.data, self.budget_currency)
        except MoneyError as exc:
            raise ValidationError(str(exc)) from exc

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
    relation = StringField(_l("Relationship to the defender"), [Optional(), Length(max=60)])
    age = WholeNumberField(
        _l("Age"), [Optional(), NumberRange(0, 120, _l("Enter an age from 0 to 120, in years."))]
    )

    def validate_age(self, field):
        """An age with no one it belongs to would read "no answer, age 12": ask who, at
        the question of who it is."""
        if field.data is not None and not (self.relation.data or "").strip():
            self.relation.errors.append(
                _l("Say who this is to the defender, such as daughter or father.")
            )


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
        return WholeNumberField(
            label, [Optional(), NumberRange(0, 1000, _l("Enter a number from 0 to 1000."))]
        )
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
        return SelectField(label, [Optional()], choices=country_choices, widget=COUNTRY_SELECT)
    raise ValueError(kind)


def details_form_class(category):
    """A sub-form with the questions of one category."""
    fields = {
        name: _detail_field(kind, label)
        for name, kind, label, _ in CATEGORY_FIELDS[Category(category)]
    }
    return type(f"Details{Category(category).name.title()}Form", (PartForm,), fields)


class StartForm(PageForm):
    """The choice of a fund and a kind of support, sent by GET to the first step: it
    stores nothing, so a reload or the Back button never asks to send it again."""

    SENT_BY_GET = True

    class Meta:
        csrf = False

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


#: How a partner may have been given the defender's consent.
class ReferralStartForm(StartForm):
    consent = BooleanField(
        _l(
            "The defender agreed that we apply on their behalf and share "
            "these details with the fund"
        ),
        validators=[DataRequired(_l("A referral needs the defender's consent."))],
    )
    #: Nothing is chosen for the partner: a method set beforehand would be recorded as the
    #: defender's way of consenting by a partner in a hurry.
    consent_method = SelectField(
        _l("How the defender gave consent"),
        choices=options([("", _l("Choose")), *HOW_CHOICES]),
        validate_choice=False,
        validators=[
            AnyOf(
                [value for value, _label in HOW_CHOICES],
                message=_l("Choose how the defender gave consent, from the list."),
            )
        ],
    )


GENDER_LABELS = {
    Gender.WOMAN.value: _l("Woman"),
    Gender.MAN.value: _l("Man"),
    Gender.NON_BINARY.value: _l("Non-binary"),
}
URGENCY_LABELS = {
    Urgency.URGENT.value: _l("Urgent: danger now or within days"),
    Urgency.NORMAL.value: _l("Not urgent"),
}


def _step_fields(category):
    """The whole form's questions for one category, by the step that asks them
    (``steps.FIELDS``)."""
    return {
        steps.DEFENDER: {
            "defender_name": StringField(
                _l("Name or pseudonym the fund may use"), [Optional(), Length(max=120)]
            ),
            "country": SelectField(
                _l("Country where the defender is now"),
                [Optional()],
                choices=country_choices,
                widget=COUNTRY_SELECT,
            ),
            "gender": SelectField(
                _l("Gender"),
                [Optional()],
                choices=options([("", _l("Prefer not to say")), *GENDER_LABELS.items()]),
            ),
            "defender_work": TextAreaField(
                _l("The defender's human rights work"), [Optional(), Length(max=STORY_MAX)]
            ),
            "threat": TextAreaField(
                _l("The threat or attack linked to that work"),
                [Optional(), Length(max=STORY_MAX)],
            ),
        },
        steps.URGENCY: {
            # Nothing is chosen for the defender: sending asks for an answer.
            "urgency": RadioField(
                _l("How urgent is it?"),
                [Optional()],
                choices=options(URGENCY_LABELS.items()),
            ),
            "urgency_reason": TextAreaField(
                _l("Why is it urgent, and why could it not be foreseen?"),
                [Optional(), Length(max=LONG_MAX)],
            ),
        },
        steps.SUPPORT: {
            "details": FormField(details_form_class(category), label=_l("About this support")),
        },
        steps.BUDGET: {
            # The stored currency is shown; until the budget is saved it follows the country.
            "currency": SelectField(
                _l("Currency of the budget"),
                [Optional()],
                choices=currency_options(),
            ),
            "budget": FieldList(FormField(BudgetLineForm), min_entries=5, max_entries=10),
        },
        steps.DEPENDANTS: {
            "dependants": FieldList(FormField(DependantForm), min_entries=4, max_entries=10),
        },
        steps.REFERENCES: {
            "references": FieldList(FormField(ReferenceForm), min_entries=2, max_entries=2),
        },
        steps.OTHER: {
            "other_funders": TextAreaField(
                _l("Other funders asked, or already paying, for the same need"),
                [Optional(), Length(max=LONG_MAX)],
            ),
            "consent_referral": BooleanField(CONSENT_LABELS[ConsentKind.REFERRAL]),
            "consent_story": BooleanField(CONSENT_LABELS[ConsentKind.STORY]),
        },
    }


def _lines_in_currency(form, extra_validators=None):
    """Validate a form that holds the budget, each line knowing the currency chosen."""
    for line in form.budget:
        line.form.budget_currency = form.currency.data
    return PageForm.validate(form, extra_validators)


def _with_budget(fields):
    """``fields``, and the budget's validation when they hold the budget."""
    return {**fields, "validate": _lines_in_currency} if "budget" in fields else fields


def application_form_class(category):
    """The whole application form for one category, every step's questions on one page."""
    fields = {}
    for step_fields in _step_fields(category).values():
        fields.update(step_fields)
    fields["save"] = SubmitField(_l("Save draft"))
    fields["submit"] = SubmitField(_l("Send application"))
    return type("ApplicationForm", (PageForm,), _with_budget(fields))


def step_form_class(category, step):
    """The form of one step: that step's questions of the whole form, under the same
    names."""
    fields = dict(_step_fields(category)[step])
    fields["save"] = SubmitField(_l("Save and continue"))
    return type(f"Step{step.title()}Form", (PageForm,), _with_budget(fields))


def new_application_form_class(referral):
    """The first step before anything is stored: its questions, and the fund and kind of
    support chosen on the page before, carried in the form (for a partner, the defender's
    consent and how it was given too), so nothing is written until the first save."""
    fields = dict(_step_fields(Category.OTHER)[steps.DEFENDER])
    fields["fund"] = HiddenField()
    fields["category"] = HiddenField(
        validators=[AnyOf([c.value for c in Category], _l("Choose the kind of support."))]
    )
    if referral:
        fields["consent"] = HiddenField(
            validators=[AnyOf(["y"], _l("A referral needs the defender's consent."))]
        )
        fields["consent_method"] = HiddenField(
            validators=[AnyOf([value for value, _label in HOW_CHOICES])]
        )
    fields["save"] = SubmitField(_l("Save and continue"))
    return type("NewReferralForm" if referral else "NewApplicationForm", (PageForm,), fields)


class SendForm(PageForm):
    """The last step's button: send the application as saved."""


#: How the error summary names a line of a repeated part.
LINE_NAMES = {
    "budget": _l("Budget line %(n)d"),
    "dependants": _l("Dependant %(n)d"),
    "references": _l("Reference %(n)d"),
}


def error_links(form):
    """Every error of ``form``, as (the id of its field, the words), in the order the page
    shows the fields, each naming its question; messages with no field of their own come
    first, with None."""
    found = [(None, str(message)) for message in form.form_errors]
    for field, line in _visible_fields(form):
        # Arabic, Persian and Chinese write their own comma between the two.
        named = (
            gettext("%(first)s, %(second)s", first=line, second=field.label.text)
            if line
            else field.label.text
        )
        label = gettext("%(label)s:", label=named)  # French spaces its colon
        found.extend((field.id, f"{label} {message}") for message in field.errors)
    return found


def _visible_fields(form, line=None):
    """The fields a person fills in, with the name of the line each belongs to."""
    for field in form:
        if isinstance(field, FormField):
            yield from _visible_fields(field.form, line)
        elif isinstance(field, FieldList):
            for index, entry in enumerate(field.entries):
                named = LINE_NAMES.get(field.short_name)
                named = str(named) % {"n": index + 1} if named else None
                if isinstance(entry, FormField):
                    yield from _visible_fields(entry.form, named)
                else:
                    yield entry, named
        elif field.type not in ("CSRFTokenField", "HiddenField", "SubmitField"):
            yield field, line


def required_fields(application_category, partner):
    """The ids of the questions sending needs answered, for the mark beside them: the
    defender's name only when a partner applies for them."""
    required = {"country", "defender_work", "threat", "urgency"}
    if partner:
        required.add("defender_name")
    required.update(
        f"details-{name}"
        for name, _kind, _label, needed in CATEGORY_FIELDS[Category(application_category)]
        if needed
    )
    for index in range(2):
        required.update({f"references-{index}-name", f"references-{index}-contact"})
    return required


class WithdrawForm(PageForm):
    """The applicant side withdraws an application sent and not decided."""

    reason = TextAreaField(
        _l("Why, if you wish to say (the fund reads it as a message)"),
        [Optional(), Length(max=Message.BODY_MAX)],
    )


class MessageForm(PageForm):
    body = TextAreaField(
        _l("Your message"),
        [DataRequired(_l("Write a message first.")), Length(max=Message.BODY_MAX)],
    )


#: What each kind of document is, as the upload form and the case's list of documents
#: name it.
DOCUMENT_LABELS = {
    DocumentKind.QUOTE: _l("A quote or invoice"),
    DocumentKind.MEDICAL_REPORT: _l("A medical report"),
    DocumentKind.EVIDENCE: _l("Evidence of the threat"),
    DocumentKind.PROOF_OF_PAYMENT: _l("A proof of payment"),
    DocumentKind.OTHER: _l("Something else"),
}


class DocumentForm(PageForm):
    kind = SelectField(
        _l("What the document is"),
        choices=options(
            (kind.value, label)
            for kind, label in DOCUMENT_LABELS.items()
            if kind != DocumentKind.PROOF_OF_PAYMENT
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


class ConsentChangeForm(PrefixedForm):
    """Give or withdraw one consent on the case page; a partner says how the defender told
    them (the page's form for each consent carries the consent's name as its prefix)."""

    how = SelectField(
        _l("How the defender told you"),
        choices=options([("", _l("Choose")), *HOW_CHOICES]),
        validate_choice=False,
        validators=[
            AnyOf(
                [value for value, _label in HOW_CHOICES],
                message=_l("Choose how the defender told you, from the list."),
            )
        ],
    )


class PartnerLabelForm(PrefixedForm):
    """A partner organisation's own label for a case it referred."""

    PREFIX = "label"
    label = StringField(
        _l("Your label for this case"),
        [Optional(), Length(max=LABEL_MAX, message=_l("A label is at most %(max)d characters."))],
    )
