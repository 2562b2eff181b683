"""Forms of the directory: an entry as its owner fund's manager writes it, how finance pays
it, and a CSV of entries to import."""

from babel import Locale
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, StopValidation
from wtforms.widgets import CheckboxInput, ListWidget

from ..core import geo
from ..core.forms import PageForm, PrefixedForm, options
from .models import SERVICE_LABELS, VISIBILITY_LABELS, DirectoryEntry

#: The languages an entry may say it speaks: those defenders and staff of the network
#: most often need, each shown by its name in the reader's language.
LANGUAGES = (
    "am",
    "ar",
    "bn",
    "en",
    "es",
    "fa",
    "fr",
    "ha",
    "hi",
    "ku",
    "my",
    "ne",
    "ps",
    "pt",
    "ru",
    "so",
    "sw",
    "tr",
    "uk",
    "ur",
    "zh",
)


def language_names(locale=None):
    """(code, name) of every language of :data:`LANGUAGES`, by name in ``locale``."""
    names = Locale.parse(str(locale or get_locale() or "en")).languages
    return sorted(((c, names.get(c, c)) for c in LANGUAGES), key=lambda item: item[1].casefold())


def _checkboxes(label, choices, validators=()):
    return SelectMultipleField(
        label,
        list(validators),
        choices=choices,
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class Ticked:
    """At least one box of a group of checkboxes ticked. DataRequired would say so too, but
    it marks the field required, and each of its boxes is then drawn ``required``: a
    browser then refuses the form until every box is ticked."""

    def __init__(self, message):
        self.message = message

    def __call__(self, form, field):
        if not field.data:
            raise StopValidation(self.message)


def _services():
    return options((s.value, label) for s, label in SERVICE_LABELS.items())


def _countries():
    return options(geo.countries(str(get_locale() or "en")))


def _regions():
    return options((r, geo.region_label(r)) for r in geo.REGIONS)


def _languages():
    return options(language_names())


class EntryForm(PrefixedForm):
    """A provider or partner, as its owner fund's manager describes it."""

    PREFIX = "entry"
    name = StringField(
        _l("Name of the provider or partner"),
        [DataRequired(_l("Enter the provider's name.")), Length(max=DirectoryEntry.NAME_MAX)],
    )
    services = _checkboxes(
        _l("Services it gives"), _services, [Ticked(_l("Choose at least one service."))]
    )
    countries = SelectMultipleField(
        _l("Countries it serves"), choices=_countries, render_kw={"size": 8}
    )
    regions = _checkboxes(_l("Whole regions it serves"), _regions)
    languages = _checkboxes(_l("Languages it works in"), _languages)
    contact = TextAreaField(
        _l("How to contact it safely (Signal, an encrypted address, through whom)"),
        [DataRequired(_l("Say how to contact it safely.")), Length(max=DirectoryEntry.CONTACT_MAX)],
    )
    referrers = TextAreaField(
        _l("Who may refer a defender to it"),
        [Optional(), Length(max=DirectoryEntry.REFERRERS_MAX)],
    )
    visibility = RadioField(
        _l("Who finds it"),
        choices=options((v.value, label) for v, label in VISIBILITY_LABELS.items()),
        default="fund",
    )
    verified_on = DateField(
        _l("Last verified on"), [DataRequired(_l("Enter the date it was last verified."))]
    )


class PaymentDetailsForm(PrefixedForm):
    """How finance pays the entry."""

    PREFIX = "payment"
    SECRET_FIELDS = ("details",)
    details = TextAreaField(
        _l("Payment details (account, phone or name; seen by finance only; empty: none)"),
        [Optional(), Length(max=DirectoryEntry.PAYMENT_MAX)],
    )


class ImportForm(PageForm):
    """A CSV of entries to add or correct."""

    entries = FileField(
        _l("Entries (CSV, in the columns of the export)"),
        validators=[FileRequired(_l("Choose the CSV file."))],
    )
