"""The forms of invitations to new accounts: staff and donors only see them."""

from flask_babel import lazy_gettext as _l
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from ..core.forms import PageForm
from .forms import PasswordRules
from .models import User
from .services import PASSWORD_MAX


class InviteForm(PageForm):
    """An administrator's invitation to a new account of their fund. The roles and donors
    offered are set by the view; the service checks both again."""

    def __init__(self, *args, roles=(), donors=(), **kwargs):
        kwargs.setdefault("prefix", "invite")
        super().__init__(*args, **kwargs)
        self.role.choices = [("", _l("Choose a role"))] + list(roles)
        self.donor.choices = [("", _l("Not a donor account"))] + list(donors)

    role = SelectField(_l("Role"), [DataRequired(_l("Choose a role."))])
    login = StringField(
        _l("Login name of the new account"),
        [DataRequired(_l("Enter a login name.")), Length(max=User.LOGIN_MAX)],
        description=_l(
            "3 to 64 letters, digits, dots, dashes or underscores. The person signs in with it;"
            " it need not be their name."
        ),
        render_kw={"autocomplete": "off", "autocapitalize": "none"},
    )
    donor = SelectField(
        _l("Donor (for a donor account)"),
        [Optional()],
        description=_l("A donor account reads the pools of this donor only."),
    )


class AcceptInvitationForm(PageForm):
    """The password of an invited account, chosen by the person who opened the link; for
    an account that reads cases or moves money, the code a manager of the fund gave them
    (the view requires it then)."""

    SECRET_FIELDS = ("code",)
    code = StringField(
        _l("Code from a manager of the fund"),
        [Optional(), Length(max=40)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )

    password = PasswordField(
        _l("Password or passphrase"),
        [DataRequired(_l("Choose a password.")), Length(max=PASSWORD_MAX), PasswordRules()],
        render_kw={"autocomplete": "new-password"},
    )
    again = PasswordField(
        _l("The password again"),
        [
            DataRequired(_l("Type the password again.")),
            Length(max=PASSWORD_MAX),
            EqualTo("password", _l("The two passwords differ.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
