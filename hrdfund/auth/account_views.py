"""The signed-in user's own account (a new password, new recovery codes) and the admin's
list of the fund's accounts."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..core.extensions import db
from ..core.forms import ConfirmForm
from ..core.work import perform
from . import attempts, bp, handed, invitations, refused, second_factor, services
from .client import client_token, refusal, remember_client
from .contacts import email_address
from .forms import AlertSettingsForm, NoticeSettingsForm, PasswordChangeForm, RenewCodesForm
from .guard import role_required
from .models import Role, User
from .views import ROLE_LABELS, new_session

#: The staff alerts are mailed to, whose address an admin sets.
ALERTED_ROLES = (Role.REVIEWER, Role.MANAGER, Role.FINANCE)


@bp.get("/account")
def account():
    """The signed-in user's own account: a new password, new recovery codes, and on the
    applicant side the safe contact and the notices sent to it."""
    user = current_user._get_current_object()
    enrolled = user.totp_confirmed_at is not None
    notices_form = None
    if user.is_applicant_side:
        notices_form = refused.restore(
            NoticeSettingsForm(
                formdata=None,
                contact=user.contact,
                notices=user.notices,
                discreet=user.notices_discreet,
            )
        )
    return render_template(
        "auth/account.html",
        password_form=refused.restore(PasswordChangeForm(formdata=None)),
        codes_form=refused.restore(RenewCodesForm(formdata=None)) if enrolled else None,
        codes_left=second_factor.recovery_codes_left(user) if enrolled else None,
        notices_form=notices_form,
        contact_is_email=email_address(user.contact) is not None,
    )


@bp.post("/account/notices")
def notice_settings():
    """The applicant side's safe contact, and whether notices of news go to it and name
    the fund."""
    user = current_user._get_current_object()
    if not user.is_applicant_side:
        abort(404)
    form = NoticeSettingsForm()
    if not form.validate_on_submit():
        return refused.refuse(form, to=url_for("auth.account", _anchor="safe-contact"))
    perform(
        services.set_notice_settings,
        user,
        form.contact.data,
        form.notices.data,
        form.discreet.data,
    )
    flash(_("Your contact and notices are saved."), "info")
    return redirect(url_for("auth.account", _anchor="safe-contact"))


@bp.post("/account/password")
def change_password():
    """A new password; every other session of the user ends, this one is renewed."""
    form = PasswordChangeForm()
    form.rules_login = current_user.login
    again = url_for("auth.account", _anchor="password")
    if not form.validate_on_submit():
        return refused.refuse(form, to=again)
    try:
        done = attempts.change_password(
            current_user.id, form.current.data, form.new.data, client_token()
        )
    except services.AuthError as exc:  # the failure counts towards the lock
        form.current.errors = [refusal(exc, _("That is not your current password."))]
        return refused.refuse(form, to=again)
    except services.PasswordPolicyError as exc:
        form.new.errors = [_("This password cannot be used: %(why)s.", why=exc)]
        return refused.refuse(form, to=again)
    response = new_session(done.user, done)
    flash(_("Your password is changed. Every other session of yours has ended."), "info")
    return response


@bp.post("/account/recovery-codes")
def renew_recovery_codes():
    """Ten new recovery codes, shown once; the earlier ones stop working."""
    if current_user.totp_confirmed_at is None:
        abort(404)
    form = RenewCodesForm()
    again = url_for("auth.account", _anchor="codes")
    if not form.validate_on_submit():
        return refused.refuse(form, to=again)
    try:
        done = attempts.reauthenticate(
            current_user.id,
            form.password.data,
            client_token(),
            then=second_factor.issue_recovery_codes,
        )
    except services.AuthError as exc:
        form.password.errors = [refusal(exc, _("That is not your current password."))]
        return refused.refuse(form, to=again)
    if done.client_token:
        remember_client(done.client_token)
    return render_template("auth/recovery_codes.html", codes=done.extra, renewed=True)


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
        u.id: refused.restore(
            AlertSettingsForm(
                formdata=None, user=u.uid, email=u.contact, on_duty=u.on_duty, prefix=f"u{u.id}"
            )
        )
        for u in rows
        if u.role in ALERTED_ROLES
    }
    return render_template(
        "auth/users.html",
        users=rows,
        forms=forms,
        confirm=ConfirmForm(),
        roles=ROLE_LABELS,
        invitations=invitations.open_invitations(current_user.fund_id),
        unconfirmed=invitations.opened_with_link_alone(current_user.fund_id),
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
        perform(services.end_sessions, user, actor=current_user._get_current_object())
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
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("auth.users"))
    done = perform(services.reset_second_factor, user, current_user._get_current_object())
    # The code is shown on this page, this once, never in a flash (that is a cookie).
    return render_template(
        "auth/second_factor_reset.html", account=user, code=handed.shown(done.value)
    )


@bp.post("/admin/users/alerts")
@role_required(Role.ADMIN)
def alert_settings():
    """Set where a reviewer's, manager's or finance officer's alerts go and whether they
    are on duty."""
    prefix = next((k[: -len("-user")] for k in request.form if k.endswith("-user")), "")
    form = AlertSettingsForm(prefix=prefix)
    user = db.session.execute(
        sa.select(User).where(
            User.uid == (form.user.data or ""),
            User.fund_id == current_user.fund_id,
            User.role.in_(ALERTED_ROLES),
        )
    ).scalar_one_or_none()
    if user is None:
        abort(404)
    if not form.validate_on_submit():
        return refused.refuse(form, to=url_for("auth.users", _anchor=f"account-{user.uid}"))
    perform(
        services.set_alert_settings,
        user,
        form.email.data,
        form.on_duty.data,
        current_user._get_current_object(),
    )
    flash(_("Alert settings saved."), "info")
    return redirect(url_for("auth.users"))
