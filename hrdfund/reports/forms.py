"""Forms of the reports' staff pages: the search, and explaining a variance to a donor."""

import functools

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..core import geo
from ..core.forms import PageForm, PrefixedForm, options
from .explanations import NOTE_MAX
from .search import TERM_MAX


def country_choices():
    """Every country, named in the reader's language, after "any country"."""
    return _countries(str(get_locale() or "en"))


@functools.cache
def _countries(language):
    return tuple(options([("", _l("Any country"))] + list(geo.countries(language))))


class SearchForm(PageForm):
    """A case's short or long code, a payment's reference or code, or a defender's name;
    sent by POST, so nothing typed reaches an address, a log or the browser's history."""

    q = StringField(
        _l("Code, payment reference or defender’s full name"),
        [DataRequired(_l("Type what you are looking for.")), Length(max=TERM_MAX)],
    )
    country = SelectField(
        _l("Country of the defender (for a name)"), [Optional()], choices=country_choices
    )


class VarianceNoteForm(PrefixedForm):
    """A manager's explanation of one variance, for the donor's report of its period."""

    PREFIX = "variance"
    period = HiddenField(validators=[DataRequired(), Length(max=7)])
    line = HiddenField(validators=[DataRequired(), Length(max=32)])
    text = TextAreaField(
        _l("Why paid differs from committed"),
        [DataRequired(_l("Write the explanation.")), Length(max=NOTE_MAX)],
    )
