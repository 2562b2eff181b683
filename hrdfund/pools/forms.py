"""Forms for donors, pools, contributions and the rate table."""

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..core import geo
from ..core.fields import Entered, MoneyField, RateField
from ..core.forms import PrefixedForm, currency_options, options
from ..core.support import CATEGORY_LABELS
from .models import Pool

CURRENCY_CHOICES = currency_options()


def _country_options():
    """Every country, named in the user's language."""
    return options(geo.countries(str(get_locale() or "en")))


class DonorForm(PrefixedForm):
    PREFIX = "donor"
    name = StringField(_l("Donor's name"), [DataRequired(_l("Enter a name.")), Length(max=160)])


class PoolForm(PrefixedForm):
    PREFIX = "pool"
    donor = SelectField(_l("Donor"), coerce=int)
    name = StringField(
        _l("Pool name"), [DataRequired(_l("Enter a name.")), Length(max=Pool.NAME_MAX)]
    )
    currency = SelectField(_l("Currency"), choices=CURRENCY_CHOICES)
    cap_per_grant = MoneyField(_l("Cap per grant (empty: none)"))
    starts_on = DateField(_l("Open from"), [Optional()])
    ends_on = DateField(_l("Open until"), [Optional()])
    categories = SelectMultipleField(
        _l("Kinds of support funded (none ticked: all)"),
        choices=options((c.value, label) for c, label in CATEGORY_LABELS.items()),
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    countries = SelectMultipleField(
        _l("Countries funded (none chosen: all)"),
        choices=_country_options,
        render_kw={"size": 8},
    )


class ContributionForm(PrefixedForm):
    PREFIX = "contribution"
    amount = MoneyField(_l("Amount received"), [Entered(_l("Enter the amount received."))])
    currency = SelectField(_l("Currency received"), choices=CURRENCY_CHOICES)
    received_on = DateField(_l("Received on"), [DataRequired(_l("Enter the date received."))])
    reference = StringField(_l("Reference (grant letter, bank entry)"), [Length(max=80)])


class ContributionReversalForm(PrefixedForm):
    PREFIX = "uncontribute"
    reason = StringField(
        _l("Why it is taken back"), [DataRequired(_l("Say why.")), Length(max=200)]
    )


class RateForm(PrefixedForm):
    PREFIX = "rate"
    on_date = DateField(_l("Date"), [DataRequired(_l("Enter the date."))])
    base = SelectField(_l("From (1 unit of)"), choices=CURRENCY_CHOICES)
    quote = SelectField(_l("To (units of)"), choices=CURRENCY_CHOICES)
    rate = RateField(_l("Rate"), [Entered(_l("Enter the rate."))])
    source = StringField(
        _l("Source"), [DataRequired(_l("Say where the rate comes from.")), Length(max=80)]
    )
