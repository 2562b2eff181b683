"""Sign in (password, then a TOTP code or a recovery code for staff and donors), sign out,
role homes."""

import io

import segno
import sqlalchemy as sa
from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_user, logout_user

from .. import audit
from ..columns import utcnow
from ..extensions import db
from . import bp, services
from .forms import (
    AlertSettingsForm,
    CodeForm,
    ConfirmForm,
    LoginForm,
    PasswordChangeForm,
    RecoveryForm,
    RegisterForm,
    RenewCodesForm,
)
from .guard import role_required
from .models import Role, User

#: Where each role lands after signing in.
HOME_ENDPOINTS = {
    Role.APPLICANT: "applications.mine",
    Role.PARTNER: "applications.referrals",
    Role.REVIEWER: "applications.queue",
    Role.MANAGER: "applications.queue",
    Role.FINANCE: "disbursements.index",
    Role.DONOR: "reports.portal",
    Role.ADMIN: "auth.users",
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
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.login.data, form.password.data)
        except services.AuthError as exc:
            db.session.commit()
            if exc.reason == "locked":
                form.form_errors.append(
                    _(
                        "Too many failed attempts. Wait %(minutes)d minutes, then try again.",
                        minutes=exc.wait_minutes,
                    )
                )
            else:
                form.form_errors.append(_("Login name or password is not right."))
            return render_template("auth/login.html", form=form), 200
        if user.needs_totp:
            if user.totp_secret is None:
                user.totp_secret = services.new_totp_secret()
            db.session.commit()
            session.clear()
            session["pending"] = {"user": user.get_id(), "at": int(utcnow().timestamp())}
            return redirect(url_for("auth.code"))
        return _finish_login(user)
    return render_template("auth/login.html", form=form)


@bp.route("/login/code", methods=["GET", "POST"])
def code():
    """Second step for roles that need it: a TOTP code, used only once."""
    user = _pending_user()
    if user is None:
        session.pop("pending", None)
        return redirect(url_for("auth.login"))
    form = CodeForm()
    enrolling = user.totp_confirmed_at is None
    if form.validate_on_submit():
        if user.locked_until and user.locked_until > utcnow():
            form.form_errors.append(
                _("Too many failed attempts. Wait a few minutes, then sign in again.")
            )
        elif services.verify_totp(user, form.code.data):
            if enrolling:
                # The second factor is active: the recovery codes are shown this once.
                codes = services.issue_recovery_codes(user)
                _finish_login(user)
                return render_template("auth/recovery_codes.html", codes=codes)
            return _finish_login(user)
        else:
            services.register_failure(user)
            db.session.commit()
            form.code.errors = [
                _(
                    "That code is not right or was already used. "
                    "Wait for the next code and try again."
                )
            ]
    uri = services.totp_uri(user, current_app.config["FUND_NAME"]) if enrolling else None
    return render_template(
        "auth/code.html",
        form=form,
        enrolling=enrolling,
        secret=user.totp_secret if enrolling else None,
        uri=uri,
    )


@bp.get("/login/code/qr.svg")
def qr():
    """The enrolment key as a QR code, drawn on the server: no script, no other host."""
    user = _pending_user()
    if user is None or user.totp_confirmed_at is not None:
        abort(404)
    image = io.BytesIO()
    uri = services.totp_uri(user, current_app.config["FUND_NAME"])
    segno.make(uri, error="m").save(image, kind="svg", scale=5, border=2, xmldecl=False)
    return Response(image.getvalue(), mimetype="image/svg+xml")


@bp.route("/login/recovery", methods=["GET", "POST"])
def recovery():
    """Second step without the authenticator: one of the recovery codes, each used once."""
    user = _pending_user()
    if user is None or user.totp_confirmed_at is None:
        session.pop("pending", None)
        return redirect(url_for("auth.login"))
    form = RecoveryForm()
    if form.validate_on_submit():
        if user.locked_until and user.locked_until > utcnow():
            form.form_errors.append(
                _("Too many failed attempts. Wait a few minutes, then sign in again.")
            )
        else:
            left = services.use_recovery_code(user, form.code.data)
            if left is not None:
                response = _finish_login(user)  # starts a new session: flash after it
                flash(
                    ngettext(
                        "You signed in with a recovery code; %(num)d is left. If your"
                        " authenticator is lost, ask an administrator to reset it.",
                        "You signed in with a recovery code; %(num)d are left. If your"
                        " authenticator is lost, ask an administrator to reset it.",
                        left,
                    ),
                    "info",
                )
                return response
            services.register_failure(user)
            db.session.commit()
            form.code.errors = [_("That recovery code is not right or was already used.")]
    return render_template("auth/recovery.html", form=form)


def _pending_user():
    pending = session.get("pending")
    if not pending or utcnow().timestamp() - pending.get("at", 0) > PENDING_MAX_SECONDS:
        return None
    try:
        user_id, version = (int(p) for p in pending["user"].split(":"))
    except (KeyError, ValueError, AttributeError):
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.session_version != version:
        return None
    return user


def _finish_login(user):
    services.complete_login(user)
    db.session.commit()
    return _new_session(user)


def _new_session(user):
    """A fresh session for ``user`` (a new cookie, the current session version)."""
    session.clear()
    login_user(user, remember=False)
    # Flask-Login stores a hash of the address and browser; the cookie carries neither.
    session.pop("_id", None)
    now = int(utcnow().timestamp())
    session["auth_at"] = now
    session["seen_at"] = now
    return redirect(url_for("auth.index"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    """An applicant account: a login name and a password, nothing that names the person."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = services.create_user(
                Role.APPLICANT,
                form.login.data,
                form.password.data,
                contact=form.contact.data or None,
            )
        except services.PasswordPolicyError as exc:
            form.password.errors.append(_("This password cannot be used: %(why)s.", why=exc))
        except (services.UserExistsError, ValueError):
            form.login.errors.append(
                _("This login name is taken or not allowed. Please choose another.")
            )
        else:
            return _finish_login(user)
    return render_template(
        "auth/register.html", form=form, suggestion=services.suggest_passphrase()
    )


@bp.get("/account")
def account():
    """The signed-in user's own account: a new password, new recovery codes."""
    return _account_page()


def _account_page(password_form=None, codes_form=None, status=200):
    user = current_user._get_current_object()
    enrolled = user.totp_confirmed_at is not None
    page = render_template(
        "auth/account.html",
        password_form=password_form or PasswordChangeForm(formdata=None),
        codes_form=(codes_form or RenewCodesForm(formdata=None)) if enrolled else None,
        codes_left=services.recovery_codes_left(user) if enrolled else None,
    )
    return page, status


@bp.post("/account/password")
def change_password():
    """A new password; every other session of the user ends, this one is renewed."""
    user = current_user._get_current_object()
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return _account_page(password_form=form, status=400)
    try:
        services.change_password(user, form.current.data, form.new.data)
    except services.AuthError as exc:
        db.session.commit()  # the failure counts towards the lock
        form.current.errors = [_reauth_error(exc)]
        return _account_page(password_form=form, status=400)
    except services.PasswordPolicyError as exc:
        db.session.rollback()
        form.new.errors = [_("This password cannot be used: %(why)s.", why=exc)]
        return _account_page(password_form=form, status=400)
    db.session.commit()
    response = _new_session(user)
    flash(_("Your password is changed. Every other session of yours has ended."), "info")
    return response


@bp.post("/account/recovery-codes")
def renew_recovery_codes():
    """Ten new recovery codes, shown once; the earlier ones stop working."""
    user = current_user._get_current_object()
    if user.totp_confirmed_at is None:
        abort(404)
    form = RenewCodesForm()
    if not form.validate_on_submit():
        return _account_page(codes_form=form, status=400)
    try:
        services.reauthenticate(user, form.password.data)
    except services.AuthError as exc:
        db.session.commit()
        form.password.errors = [_reauth_error(exc)]
        return _account_page(codes_form=form, status=400)
    codes = services.issue_recovery_codes(user)
    db.session.commit()
    return render_template("auth/recovery_codes.html", codes=codes, renewed=True)


def _reauth_error(exc):
    if exc.reason == "locked":
        return _(
            "Too many failed attempts. Wait %(minutes)d minutes, then try again.",
            minutes=exc.wait_minutes,
        )
    return _("That is not your current password.")


@bp.post("/logout")
def logout():
    """Sign out everywhere: every cookie of this user stops working."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        return redirect(url_for("auth.index"))
    services.end_sessions(current_user._get_current_object(), action="auth.logout")
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.get("/admin/users")
@role_required(Role.ADMIN)
def users():
    """The admin's list of accounts of their fund (no case content)."""
    rows = (
        db.session.execute(
            sa.select(User)
            .where(User.fund_id == current_user.fund_id)
            .order_by(User.role, User.login)
        )
        .scalars()
        .all()
    )
    forms = {
        u.id: AlertSettingsForm(
            formdata=None, user=u.uid, email=u.contact, on_duty=u.on_duty, prefix=f"u{u.id}"
        )
        for u in rows
        if u.role in (Role.REVIEWER, Role.MANAGER)
    }
    return render_template(
        "auth/users.html", users=rows, forms=forms, confirm=ConfirmForm(), roles=ROLE_LABELS
    )


def _fund_account_or_404(uid):
    """Another account of the admin's fund; 404 otherwise."""
    user = db.session.execute(
        sa.select(User).where(User.uid == uid, User.fund_id == current_user.fund_id)
    ).scalar_one_or_none()
    if user is None or user.id == current_user.id:
        abort(404)
    return user


@bp.post("/admin/users/<uid>/sessions")
@role_required(Role.ADMIN)
def end_user_sessions(uid):
    """Sign an account out everywhere: every cookie of it stops working at once."""
    user = _fund_account_or_404(uid)
    if ConfirmForm().validate_on_submit():
        services.end_sessions(user, actor=current_user._get_current_object())
        db.session.commit()
        # Flashes travel in the session cookie: the message names no account.
        flash(_("Every session of that account has ended."), "info")
    return redirect(url_for("auth.users"))


@bp.post("/admin/users/<uid>/second-factor")
@role_required(Role.ADMIN)
def reset_second_factor(uid):
    """For a lost authenticator: the account sets up a new one at its next sign-in."""
    user = _fund_account_or_404(uid)
    if not user.needs_totp:
        abort(404)
    if ConfirmForm().validate_on_submit():
        services.reset_second_factor(user, current_user._get_current_object())
        db.session.commit()
        flash(
            _(
                "That account sets up a new authenticator at its next sign-in; its recovery"
                " codes no longer work and its sessions have ended."
            ),
            "info",
        )
    return redirect(url_for("auth.users"))


@bp.post("/admin/users/alerts")
@role_required(Role.ADMIN)
def alert_settings():
    """Set where a reviewer's or manager's alerts go and whether they are on duty."""
    prefix = next((k[: -len("-user")] for k in request.form if k.endswith("-user")), "")
    form = AlertSettingsForm(prefix=prefix)
    user = db.session.execute(
        sa.select(User).where(
            User.uid == (form.user.data or ""),
            User.fund_id == current_user.fund_id,
            User.role.in_([Role.REVIEWER, Role.MANAGER]),
        )
    ).scalar_one_or_none()
    if user is None:
        abort(404)
    if not form.validate_on_submit():
        for error in form.email.errors:
            flash(error, "error")
        return redirect(url_for("auth.users"))
    user.contact = (form.email.data or "").strip() or None
    user.on_duty = bool(form.on_duty.data)
    audit.record("auth.alert_settings", user, actor=current_user._get_current_object())
    db.session.commit()
    flash(_("Alert settings saved."), "info")
    return redirect(url_for("auth.users"))
