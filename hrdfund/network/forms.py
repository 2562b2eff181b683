"""Forms of the member funds: a new fund and its first administrator, what a fund covers,
and its own limits."""

from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ..auth.forms import PasswordRules
from ..auth.language import NAMES
from ..auth.models import User
from ..core import geo
from ..core.fields import Entered, MoneyField, WholeNumberField
from ..core.forms import PrefixedForm, currency_options, options
from ..core.support import CATEGORY_LABELS

#: A target is at most a year, in hours.
TARGET_MAX_HOURS = 24 * 366
#: The longest reason a referral or its refusal gives.
REASON_MAX = 2000


class NewFundForm(PrefixedForm):
    PREFIX = "fund"
    SECRET_FIELDS = ("admin_password",)
    name = StringField(_l("Fund's name"), [DataRequired(_l("Enter a name.")), Length(max=120)])
    admin_login = StringField(
        _l("Login of its first administrator"),
        [DataRequired(_l("Enter a login.")), Length(max=User.LOGIN_MAX)],
        render_kw={"autocomplete": "off"},
    )
    admin_password = PasswordField(
        _l("Their first password"),
        [DataRequired(_l("Choose a password.")), Length(max=128), PasswordRules("admin_login")],
        description=_l(
            "Give it to them by a safe channel. They set up their second factor when they "
            "first sign in, and may change the password then."
        ),
        render_kw={"autocomplete": "new-password"},
    )


class NewPartnerForm(PrefixedForm):
    PREFIX = "partner"
    name = StringField(
        _l("Organisation's name"), [DataRequired(_l("Enter a name.")), Length(max=160)]
    )
    country = SelectField(
        _l("Country it works in (optional)"),
        [Optional()],
        choices=lambda: options([("", _l("Choose a country"))]) + _countries(),
    )


def _checkboxes(label, choices):
    return SelectMultipleField(
        label, choices=choices, widget=ListWidget(prefix_label=False), option_widget=CheckboxInput()
    )


def _languages():
    return options((code, NAMES[code]) for code in current_app.config["LANGUAGES"])


def _countries():
    return options(geo.countries(str(get_locale() or "en")))


class FundProfileForm(PrefixedForm):
    PREFIX = "profile"
    takes_applications = BooleanField(_l("Takes applications (listed on the page of funds)"))
    categories = _checkboxes(
        _l("Kinds of support it gives (none ticked: every kind)"),
        options((c.value, label) for c, label in CATEGORY_LABELS.items()),
    )
    countries = SelectMultipleField(
        _l("Countries it works in (none chosen: every country)"),
        choices=_countries,
        render_kw={"size": 8},
    )
    languages = _checkboxes(_l("Languages its staff answer in (none ticked: not said)"), _languages)


def _hours(label):
    return WholeNumberField(
        label,
        [
            Optional(),
            NumberRange(
                1, TARGET_MAX_HOURS, _l("Between 1 and %(max)d hours.", max=TARGET_MAX_HOURS)
            ),
        ],
    )


class FundLimitsForm(PrefixedForm):
    PREFIX = "limits"
    four_eyes_threshold = MoneyField(
        _l("Four-eyes threshold (empty: the instance's)"), allow_zero=True
    )
    target_response_hours_urgent = _hours(_l("First response to an urgent case, in hours"))
    target_decision_hours_urgent = _hours(_l("Decision on an urgent case, in hours"))
    target_response_hours_normal = _hours(_l("First response to other cases, in hours"))
    target_decision_hours_normal = _hours(_l("Decision on other cases, in hours"))
    time_zone = StringField(
        _l("Time zone of the fund's staff (empty: UTC)"),
        [Optional(), Length(max=64)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


class ReferForm(PrefixedForm):
    """A referral of the case, or of a part of its need, to another member fund."""

    PREFIX = "refer"
    to_fund = SelectField(_l("To the fund"), [DataRequired(_l("Choose a fund."))])
    category = SelectField(
        _l("Kind of support asked"),
        choices=options((c.value, label) for c, label in CATEGORY_LABELS.items()),
    )
    months_from = WholeNumberField(
        _l("From month (of the stay or monthly support; empty: not in months)"),
        [Optional(), NumberRange(1, 36, _l("Between 1 and 36."))],
    )
    months_to = WholeNumberField(
        _l("To month"),
        [Optional(), NumberRange(1, 36, _l("Between 1 and 36."))],
    )
    amount = MoneyField(_l("Amount asked"), [Entered(_l("Enter the amount asked."))])
    currency = SelectField(_l("Currency"), choices=currency_options())
    shares = _checkboxes(
        _l("What the other fund may open (nothing ticked: only what is asked, and why)"),
        options(
            (
                ("answers", _l("The defender's answers in the application")),
                ("documents", _l("The documents")),
                ("assessment", _l("Our assessment")),
            )
        ),
    )
    reason = TextAreaField(
        _l("Why we refer it"), [DataRequired(_l("Say why.")), Length(max=REASON_MAX)]
    )
    answer_by = DateField(
        _l("Answer needed by"), [DataRequired(_l("Enter the date an answer is needed by."))]
    )


class DeclineForm(PrefixedForm):
    PREFIX = "decline"
    reason = TextAreaField(
        _l("Why the fund declines"),
        [DataRequired(_l("Say why the fund declines.")), Length(max=REASON_MAX)],
    )


class PartnerForm(PrefixedForm):
    """A partner fund on another server: its name, key line and fingerprint heard."""

    PREFIX = "partner"
    name = StringField(
        _l("Partner fund's name"),
        [Optional(), Length(max=120)],
        description=_l("Leave empty when giving a new key of a partner already registered."),
    )
    key_line = StringField(
        _l("Its key line"),
        [DataRequired(_l("Paste the key line the partner fund sent.")), Length(max=200)],
    )
    fingerprint = StringField(
        _l("Its fingerprint, as read out on a call"),
        [DataRequired(_l("Enter the fingerprint you heard.")), Length(max=100)],
    )
    revoke = BooleanField(
        _l(
            "Its old key may be in other hands: refuse packets signed with it from now on "
            "(otherwise they are accepted for a while, for packets already on their way)"
        )
    )


class PacketForm(PrefixedForm):
    """A packet file from a partner fund."""

    PREFIX = "packet"
    file = FileField(
        _l("Packet file (.hrdp)"), validators=[FileRequired(_l("Choose a packet file."))]
    )


class HoldForm(PrefixedForm):
    """Confirm the import of a packet checked and held for its preview."""

    PREFIX = "hold"
    token = HiddenField(validators=[DataRequired(), Length(min=32, max=32)])


class AskPartnerForm(PrefixedForm):
    """Ask a partner fund on another server whether it has the same case."""

    PREFIX = "ask"
    partner = SelectField(_l("Partner fund"), [DataRequired(_l("Choose a partner fund."))])
