"""Sign-in forms."""

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp, ValidationError

from ..core.forms import PageForm
from .models import User
from .services import PASSWORD_MAX, PasswordPolicyError, check_password_rules

#: Longest safe-contact note an applicant may leave.
CONTACT_MAX = 200


class PasswordRules:
    """The rules a new password must follow, checked with the form's other fields, so
    that a refused form names every problem at once: a password too short is said even
    while the second copy differs. The login the rules weigh is the form's field
    ``login_field`` when given, else its ``rules_login``, set by the view when it knows
    it."""

    def __init__(self, login_field=None):
        self.login_field = login_field

    def __call__(self, form, field):
        if not field.data:
            return  # DataRequired says so
        if self.login_field is not None:
            login = form[self.login_field].data
        else:
            login = getattr(form, "rules_login", None)
        try:
            check_password_rules(field.data, login)
        except PasswordPolicyError as exc:
            raise ValidationError(_("This password cannot be used: %(why)s.", why=exc)) from None


class LoginForm(PageForm):
    login = StringField(
        _l("Login name"),
        validators=[DataRequired(_l("Enter your login name.")), Length(max=User.LOGIN_MAX)],
        render_kw={"autocomplete": "username", "autocapitalize": "none"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("Enter your password.")), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )


class CodeForm(PageForm):
    SECRET_FIELDS = ("code",)

    code = StringField(
        _l("Six-digit code from your authenticator app"),
        validators=[
            DataRequired(_l("Enter the code.")),
            Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message=_l("The code is six digits.")),
        ],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class ResetCodeForm(PageForm):
    SECRET_FIELDS = ("code",)

    code = StringField(
        _l("Code from your fund's administrator"),
        validators=[DataRequired(_l("Enter the code.")), Length(max=40)],
        render_kw={"autocomplete": "off"},
    )


class RecoveryForm(PageForm):
    SECRET_FIELDS = ("code",)

    code = StringField(
        _l("One of your recovery codes"),
        validators=[DataRequired(_l("Enter a recovery code.")), Length(max=40)],
        render_kw={"autocomplete": "off"},
    )


class PasswordChangeForm(PageForm):
    """A new password, given with the current one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "password")
        super().__init__(*args, **kwargs)

    current = PasswordField(
        _l("Current password"),
        [DataRequired(_l("Enter your current password.")), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )
    new = PasswordField(
        _l("New password or passphrase"),
        [DataRequired(_l("Choose a new password.")), Length(max=PASSWORD_MAX), PasswordRules()],
        render_kw={"autocomplete": "new-password"},
    )
    again = PasswordField(
        _l("The new password again"),
        [
            DataRequired(_l("Type the new password again.")),
            Length(max=PASSWORD_MAX),
            EqualTo("new", _l("The two new passwords differ.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class RenewCodesForm(PageForm):
    """New recovery codes, given the current password."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "codes")
        super().__init__(*args, **kwargs)

    password = PasswordField(
        _l("Current password"),
        [DataRequired(_l("Enter your current password.")), Length(max=PASSWORD_MAX)],
        render_kw={"autocomplete": "current-password"},
    )


class RegisterForm(PageForm):
    """Sign-up for applicants: nothing that names the person. The login name is made by
    the server and carried with its seal (``logins.made_login`` checks both); the page
    shows it, and passes it to a password manager, without letting anyone type over it."""

    login = StringField(
        _l("Your login name"),
        [Length(max=User.LOGIN_MAX)],
        render_kw={"autocomplete": "username", "readonly": True, "hidden": True},
    )
    login_seal = HiddenField(validators=[Length(max=64)])
    password = PasswordField(
        _l("Password or passphrase"),
        [DataRequired(_l("Choose a password.")), Length(max=128), PasswordRules()],
        render_kw={"autocomplete": "new-password"},
    )
    #: Typed twice: nobody can recover an account made with a slip in its password.
    password_again = PasswordField(
        _l("The same password again"),
        [
            DataRequired(_l("Type the password again.")),
            Length(max=128),
            EqualTo("password", _l("The two passwords differ: type the same one in both.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    contact = StringField(
        _l("A safe way for the fund to reach you (optional)"),
        [Optional(), Length(max=CONTACT_MAX)],
        description=_l(
            "For example a Signal number, an email address, or 'through my partner organisation'."
        ),
    )


class AlertSettingsForm(PageForm):
    """Where a staff member's alerts go, and whether they are on duty."""

    user = HiddenField(validators=[DataRequired()])
    email = StringField(
        _l("Alert email"),
        [
            Optional(),
            Length(max=254),
            Regexp(
                r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                message=_l("Enter an email address, or leave it empty."),
            ),
        ],
    )
    on_duty = BooleanField(_l("On duty"))


class NoticeSettingsForm(PageForm):
    """The applicant side's safe contact, and the notices of news sent to it."""

    contact = StringField(
        _l("Your safe contact"),
        [Optional(), Length(max=CONTACT_MAX)],
        description=_l(
            "For example a Signal number, an email address, or 'through my partner organisation'."
        ),
    )
    notices = BooleanField(_l("Send a notice to my email address when there is news"))
    discreet = BooleanField(_l("Discreet: the notice does not name the fund"))
