"""Sign in (password, then a TOTP code or a recovery code for staff and donors), sign out,
role homes."""

import io
import re

import segno
from flask import (
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from ..core.columns import utcnow
from ..core.extensions import db
from ..core.forms import ConfirmForm
from ..core.work import perform
from . import attempts, bp, language, logins, refused, second_factor, services
from .client import client_token, refusal, remember_client
from .forms import CodeForm, LoginForm, RecoveryForm, RegisterForm, ResetCodeForm
from .models import Role, User

#: Where each role lands after signing in.
HOME_ENDPOINTS = {
    Role.APPLICANT: "cases.mine",
    Role.PARTNER: "cases.referrals",
    Role.REVIEWER: "reports.dashboard",
    Role.MANAGER: "reports.dashboard",
    Role.FINANCE: "reports.dashboard",
    Role.DONOR: "reports.portal",
    Role.ADMIN: "auth.users",
    Role.NETWORK_ADMIN: "network.funds",
}
PENDING_MAX_SECONDS = 300
#: Each role as the accounts page names it.
ROLE_LABELS = {
    Role.APPLICANT: _l("Applicant"),
    Role.PARTNER: _l("Partner organisation"),
    Role.REVIEWER: _l("Reviewer"),
    Role.MANAGER: _l("Manager"),
    Role.FINANCE: _l("Finance"),
    Role.DONOR: _l("Donor"),
    Role.ADMIN: _l("Administrator"),
    Role.NETWORK_ADMIN: _l("Network administrator"),
}


@bp.get("/")
def index():
    """Send each user to their role's home page."""
    return redirect(url_for(HOME_ENDPOINTS[current_user.role]))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """First step of signing in: login name and password."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.index"))
    form = LoginForm()
    if not form.is_submitted():
        return render_template("auth/login.html", form=refused.restore(form))
    if form.validate_on_submit():
        try:
            done = attempts.sign_in(form.login.data, form.password.data, client_token())
        except services.AuthError as exc:
            form.form_errors.append(refusal(exc, _("Login name or password is not right.")))
        else:
            user = done.user
            if user.needs_totp:
                _fresh_session()
                session["pending"] = {"user": user.get_id(), "at": int(utcnow().timestamp())}
                return redirect(url_for("auth.code"))
            return new_session(user, done)
    # The login name comes back; the password never does.
    return refused.refuse(form, to=url_for("auth.login"))


@bp.route("/login/code", methods=["GET", "POST"])
def code():
    """Second step for roles that need it: a TOTP code, used only once."""
    user = _pending_user()
    if user is None:
        session.pop("pending", None)
        return redirect(url_for("auth.login"))
    if _needs_reset_code(user):
        return redirect(url_for("auth.reset_code"))
    form = CodeForm()
    enrolling = user.totp_confirmed_at is None
    if form.validate_on_submit():
        try:
            done = attempts.check_code(user, form.code.data, client_token())
        except services.AuthError as exc:
            form.code.errors = [
                refusal(
                    exc,
                    _(
                        "That code is not right or was already used. "
                        "Wait for the next code and try again."
                    ),
                )
            ]
        else:
            response = new_session(user, done)
            if done.extra is not None:
                # The second factor is active: the recovery codes are shown this once.
                return render_template("auth/recovery_codes.html", codes=done.extra)
            return response
    if form.is_submitted():
        return refused.refuse(form, to=url_for("auth.code"))  # the code is not kept
    uri = second_factor.totp_uri(user, current_app.config["FUND_NAME"]) if enrolling else None
    return render_template(
        "auth/code.html",
        form=refused.restore(form),
        enrolling=enrolling,
        secret=user.totp_secret if enrolling else None,
        uri=uri,
    )


@bp.get("/login/code/qr.svg")
def qr():
    """The enrolment key as a QR code, drawn on the server: no script, no other host."""
    user = _pending_user()
    if user is None or user.totp_confirmed_at is not None or _needs_reset_code(user):
        abort(404)
    image = io.BytesIO()
    uri = second_factor.totp_uri(user, current_app.config["FUND_NAME"])
    segno.make(uri, error="m").save(image, kind="svg", scale=5, border=2, xmldecl=False)
    return Response(image.getvalue(), mimetype="image/svg+xml")


def _needs_reset_code(user):
    """Whether ``user``'s second factor was reset and the administrator's code is still to
    be typed in this sign-in before the new key is shown."""
    vouched = session.get("pending", {}).get("vouched")
    return user.totp_confirmed_at is None and user.reset_code_hash is not None and not vouched


@bp.route("/login/code/reset", methods=["GET", "POST"])
def reset_code():
    """After a reset: the code the administrator handed over, before the new key shows;
    a password alone does not set up an authenticator."""
    user = _pending_user()
    if user is None:
        session.pop("pending", None)
        return redirect(url_for("auth.login"))
    if not _needs_reset_code(user):
        return redirect(url_for("auth.code"))
    form = ResetCodeForm()
    if form.validate_on_submit():
        try:
            attempts.check_reset_code(user, form.code.data, client_token())
        except services.AuthError as exc:
            form.code.errors = [
                refusal(
                    exc, _("That is not the code your administrator was given. Check it with them.")
                )
            ]
        else:
            session["pending"] = {**session["pending"], "vouched": True}
            return redirect(url_for("auth.code"))
    if form.is_submitted():
        return refused.refuse(form, to=url_for("auth.reset_code"))  # the code is not kept
    return render_template("auth/reset_code.html", form=refused.restore(form))


@bp.route("/login/recovery", methods=["GET", "POST"])
def recovery():
    """Second step without the authenticator: one of the recovery codes, each used once."""
    user = _pending_user()
    if user is None or user.totp_confirmed_at is None:
        session.pop("pending", None)
        return redirect(url_for("auth.login"))
    form = RecoveryForm()
    if form.validate_on_submit():
        try:
            done = attempts.check_recovery_code(user, form.code.data, client_token())
        except services.AuthError as exc:
            form.code.errors = [
                refusal(exc, _("That recovery code is not right or was already used."))
            ]
        else:
            response = new_session(user, done)  # starts a new session: flash after it
            flash(
                ngettext(
                    "You signed in with a recovery code; %(num)d is left. If your"
                    " authenticator is lost, ask an administrator to reset it.",
                    "You signed in with a recovery code; %(num)d are left. If your"
                    " authenticator is lost, ask an administrator to reset it.",
                    done.extra,
                ),
                "info",
            )
            return response
    if form.is_submitted():
        return refused.refuse(form, to=url_for("auth.recovery"))  # the code is not kept
    return render_template("auth/recovery.html", form=refused.restore(form))


def _pending_user():
    pending = session.get("pending")
    if not pending or utcnow().timestamp() - pending.get("at", 0) > PENDING_MAX_SECONDS:
        return None
    try:
        user_id, version = (int(p) for p in pending["user"].split(":"))
    except (KeyError, ValueError, AttributeError):
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def _fresh_session():
    """Start the session afresh, as every step of signing in does, keeping only the page
    language chosen before it; returns that choice. The new session holds its CSRF token
    from the start: pages opened at once after signing in (two tabs) are given the same
    one, where each would otherwise make its own and the one overwritten be refused."""
    chosen = session.get(language.SESSION_KEY)
    session.clear()
    if chosen:
        session[language.SESSION_KEY] = chosen
    g.pop("csrf_token", None)  # a token made earlier in this request is the old session's
    generate_csrf()
    return chosen


def new_session(user, done=None):
    """A fresh session for ``user`` (a new cookie, the current session version); a complete
    sign-in also keeps this browser known to the login (``done.client_token``)."""
    if done is not None and done.client_token:
        remember_client(done.client_token)
    chosen = _fresh_session()
    login_user(user, remember=False)
    if chosen in language.offered(user):  # the latest choice wins, and is kept
        perform(language.set_language, user, chosen)
    # Flask-Login stores a hash of the address and browser; the cookie carries neither.
    session.pop("_id", None)
    now = int(utcnow().timestamp())
    session["auth_at"] = now
    session["seen_at"] = now
    # A form sent after an earlier session of the account ended, from this browser, goes
    # back to its page, filled in (wherever on the page it is: said at the top).
    page = refused.resume_unsent()
    if page:
        with force_locale(language.select_locale()):  # the account's, now it is signed in
            flash(_("What you were sending is filled in again below: check it, then send it."))
        return redirect(page)
    return redirect(url_for("auth.index"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    """An applicant account: a login name the server makes, and a password, nothing that
    names the person.

    The form carries the login made for it with a seal only the server can compute; a
    login without its seal (any other login, an existing one included) is refused before
    anything is counted or hashed, in the same words whatever it names. Sign-up has one
    other outcome: an account is made and signed in."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.index"))
    form = RegisterForm()
    login_name = None
    if form.is_submitted():
        login_name = logins.made_login(form.login.data, form.login_seal.data)
        if login_name is None:
            form.form_errors.append(
                _(
                    "Your login name is made for you by this page. Note the one shown"
                    " below, then send the form again."
                )
            )
    form.rules_login = login_name
    if form.validate_on_submit() and login_name is not None:
        try:
            done = attempts.sign_up(
                login_name,
                form.password.data,
                client_token(),
                contact=form.contact.data or None,
            )
        except services.PasswordPolicyError as exc:
            form.password.errors.append(_("This password cannot be used: %(why)s.", why=exc))
        except services.AuthError as exc:
            form.form_errors.append(refusal(exc))
        else:
            response = new_session(done.user, done)
            # The first session's pages say the login name, to note it down: the page
            # that showed it may have been left, or shown another (a language changed).
            session[logins.NEW_LOGIN_KEY] = True
            if done.user.login != login_name:
                # Another account took the login meanwhile: this one has another.
                return render_template("auth/login_changed.html", login=done.user.login)
            return response
    if form.is_submitted():
        # The contact comes back, and the login made for the form with its seal; the
        # password never does.
        return refused.refuse(form, to=url_for("auth.register"))
    form = refused.restore(form)
    # A login the form carried with its seal stays, so that one noted down stays right;
    # any other is replaced by a new one.
    login_name = logins.made_login(form.login.data, form.login_seal.data)
    login_name = login_name or logins.make_login()
    form.login.data, form.login_seal.data = login_name, logins.login_seal(login_name)
    return render_template(
        "auth/register.html",
        form=form,
        suggestion=logins.suggest_passphrase(),
        login_name=login_name,
    )


#: A path of this site to go back to, as the language form sends it.
SAME_SITE_PATH = re.compile(r"/[^\s\\\x00-\x1f\x7f]{0,2000}")


@bp.post("/language")
def choose_language():
    """The language of the pages, from the small form on every page: kept for this browser,
    and for the account once signed in. Back to the page it was chosen on."""
    code = request.form.get("language")
    if ConfirmForm().validate_on_submit() and code in language.offered(current_user):
        session[language.SESSION_KEY] = code
        if current_user.is_authenticated:
            perform(language.set_language, current_user._get_current_object(), code)
    back = request.form.get("next") or ""
    # Only a page of this site: a path with no space, control character or backslash a
    # browser would drop or read as another host ("/\t/host" is "//host" to it).
    if not SAME_SITE_PATH.fullmatch(back) or back.startswith("//"):
        back = url_for("auth.index")
    return redirect(back, 303)


@bp.app_errorhandler(attempts.Busy)
def busy(_exc):
    """No password can be checked just now: a plain page, nothing kept, nothing hashed."""
    return (
        render_template("errors/503.html", code=503, language_back="/"),
        503,
        {"Retry-After": "60"},
    )


@bp.post("/logout")
def logout():
    """Sign out everywhere: every cookie of this user stops working."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.index"))
    user = current_user._get_current_object()
    # The sign-in page after goes on in the language the account read in, as it did
    # before signing in: a defender on a shared phone is not sent back to English.
    reading_in = user.language if user.language in language.offered(None) else None
    perform(services.end_sessions, user, action="auth.logout")
    logout_user()
    session.clear()
    if reading_in:
        session[language.SESSION_KEY] = reading_in
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))
