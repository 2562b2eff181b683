"""Forms of the staff side of a case: assignment, conflicts, checks, notes, assessment,
questions, rejection and other funders."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from ..cases.forms import LONG_MAX, REFERENCE_STATUSES, TEXT_MAX
from ..core.fields import MoneyField
from ..core.forms import PageForm, PrefixedForm, currency_options, options
from .models import NoteKind, Recommendation, RiskLevel

RISK_LABELS = {
    RiskLevel.LOW: _l("Low"),
    RiskLevel.MEDIUM: _l("Medium"),
    RiskLevel.HIGH: _l("High"),
    RiskLevel.CRITICAL: _l("Critical"),
}
RECOMMENDATION_LABELS = {
    Recommendation.APPROVE: _l("Approve in full"),
    Recommendation.APPROVE_PARTLY: _l("Approve in part"),
    Recommendation.REJECT: _l("Reject"),
}
NOTE_LABELS = {
    NoteKind.NOTE: _l("Confidential note"),
    NoteKind.PARTNER_CHECK: _l("Check with a local partner"),
}


def optional_id(value):
    """A row id chosen in a select, or None for the select's empty first option."""
    return None if value in (None, "") else int(value)


class AssignForm(PrefixedForm):
    PREFIX = "assign"
    reviewer = SelectField(
        _l("Reviewer"),
        coerce=optional_id,
        validators=[InputRequired(_l("Choose who takes the case."))],
    )


class ConflictForm(PrefixedForm):
    PREFIX = "conflict"

    confirm = BooleanField(
        _l("I have a conflict of interest on this case and leave it"),
        [DataRequired(_l("Tick the box to confirm."))],
    )


class ReferenceCheckForm(PageForm):
    status = SelectField(
        _l("What the reference said"),
        choices=options((s.value, label) for s, label in REFERENCE_STATUSES.items()),
    )
    notes = TextAreaField(_l("Notes (staff only)"), [Optional(), Length(max=LONG_MAX)])


class NoteForm(PrefixedForm):
    PREFIX = "note"

    kind = SelectField(
        _l("Kind"), choices=options((k.value, label) for k, label in NOTE_LABELS.items())
    )
    body = TextAreaField(
        _l("Note (staff on this case only)"),
        [DataRequired(_l("Write the note first.")), Length(max=LONG_MAX)],
    )


def _risk_field():
    """The risk, chosen on purpose: no level is taken for the reviewer who left it."""
    return SelectField(
        _l("Risk to the defender"),
        [DataRequired(_l("Say how much risk the defender faces."))],
        choices=options(
            [("", _l("Choose the risk")), *((r.value, label) for r, label in RISK_LABELS.items())]
        ),
    )


def _assessment_field():
    return TextAreaField(
        _l("Assessment (staff only)"),
        [DataRequired(_l("Say briefly why.")), Length(max=LONG_MAX)],
    )


class RecommendForm(PrefixedForm):
    PREFIX = "recommend"

    risk_level = _risk_field()
    recommendation = SelectField(
        _l("Recommendation"),
        choices=options((r.value, label) for r, label in RECOMMENDATION_LABELS.items()),
    )
    #: One recommended amount per budget line, in the case's order.
    lines = FieldList(MoneyField(_l("Recommended"), allow_zero=True))
    assessment = _assessment_field()


class QuickRecommendForm(PrefixedForm):
    """From the queue, for an urgent case: take it and recommend the budget as asked, or
    rejection (a part is recommended on the case page, line by line)."""

    PREFIX = "quick"

    risk_level = _risk_field()
    recommendation = SelectField(
        _l("Recommendation"),
        choices=options(
            (r.value, label)
            for r, label in RECOMMENDATION_LABELS.items()
            if r != Recommendation.APPROVE_PARTLY
        ),
    )
    assessment = _assessment_field()


class NetworkForm(PrefixedForm):
    """The button that asks the other member funds (the duplicate check across funds)."""

    PREFIX = "network"


class CofundingForm(PrefixedForm):
    PREFIX = "cofunding"

    funder = StringField(
        _l("Other funder"), [DataRequired(_l("Name the other funder.")), Length(max=TEXT_MAX)]
    )
    amount = MoneyField(_l("Amount they pay"))
    currency = SelectField(_l("Currency"), choices=currency_options(), default="EUR")
    starts_on = DateField(_l("From"), [Optional()])
    ends_on = DateField(_l("Until"), [Optional()])
