"""Accounts made in the browser: the administrator's invitations and the deactivation of
accounts, and the page an invitation's link opens (before any sign-in)."""

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..core.columns import utcnow
from ..core.extensions import db, reading
from ..core.forms import ConfirmForm
from ..core.work import perform
from . import attempts, bp, invitations, refused, services
from .account_views import _fund_account_or_404
from .client import client_token, refusal
from .guard import role_required
from .invitation_forms import AcceptInvitationForm, InviteForm
from .models import INVITABLE_ROLES, Invitation, Role
from .views import ROLE_LABELS, _fresh_session

#: The session's key for the token of the invitation being accepted: the link's address
#: is left at once for one without it, so the token stays out of the browser's history.
SESSION_KEY = "invitation"


def _invite_form(**kwargs):
    """The invitation form, offering the roles an admin grants and the fund's donors; with
    the map of each donor's uid (what the form sends) to its id."""
    donors = invitations.fund_donors(current_user.fund_id)
    return InviteForm(
        **kwargs,
        roles=[(r.value, ROLE_LABELS[r]) for r in INVITABLE_ROLES],
        donors=[(d.uid, d.name) for d in donors],
    ), {d.uid: d.id for d in donors}


@bp.get("/admin/users/invite")
@role_required(Role.ADMIN)
def invite():
    """The form of an invitation to a new account of the fund."""
    form, _donors = _invite_form(formdata=None)
    return render_template(
        "auth/invite.html",
        form=refused.restore(form),
        hours=current_app.config["INVITATION_HOURS"],
    )


@bp.post("/admin/users/invite")
@role_required(Role.ADMIN)
def send_invitation():
    """Make the invitation and show its link, this once: only its hash is kept."""
    form, donors = _invite_form()
    again = url_for("auth.invite")
    if not form.validate_on_submit():
        return refused.refuse(form, to=again)
    donor_id = donors.get(form.donor.data) if form.donor.data else None
    if form.donor.data and donor_id is None:
        form.donor.errors = [_("Choose one of the fund's donors.")]
        return refused.refuse(form, to=again)
    done = perform(
        invitations.invite_account,
        current_user._get_current_object(),
        form.role.data,
        form.login.data,
        donor_id,
        refused=invitations.REFUSALS,
    )
    if not done.ok:
        if isinstance(done.refusal, services.UserExistsError):
            form.login.errors = [_("That login name is taken: choose another.")]
        else:
            form.form_errors.append(done.words)
        return refused.refuse(form, to=again)
    invitation, token = done.value
    link = current_app.config["BASE_URL"].rstrip("/") + url_for("auth.invitation_link", token=token)
    return render_template("auth/invited.html", invitation=invitation, link=link, roles=ROLE_LABELS)


def _fund_invitation_or_404(uid):
    invitation = db.session.execute(
        sa.select(Invitation).where(
            Invitation.uid == uid, Invitation.fund_id == current_user.fund_id
        )
    ).scalar_one_or_none()
    if invitation is None:
        abort(404)
    return invitation


@bp.post("/admin/invitations/<uid>/revoke")
@role_required(Role.ADMIN)
def revoke_invitation(uid):
    """Withdraw an invitation: its link stops working at once."""
    invitation = _fund_invitation_or_404(uid)
    if ConfirmForm().validate_on_submit():
        done = perform(
            invitations.revoke_invitation,
            current_user._get_current_object(),
            invitation,
            refused=invitations.InvitationError,
        )
        if done.ok:
            flash(_("The invitation is withdrawn: its link no longer works."), "info")
        else:
            flash(done.words, "error")
    return redirect(url_for("auth.users", _anchor="invitations"))


@bp.post("/admin/users/<uid>/deactivate")
@role_required(Role.ADMIN)
def deactivate(uid):
    """The account can no longer sign in, and each of its sessions ends at once."""
    words = _("That account is deactivated: it can no longer sign in; its sessions have ended.")
    return _change_account(uid, invitations.deactivate_account, words)


@bp.post("/admin/users/<uid>/reactivate")
@role_required(Role.ADMIN)
def reactivate(uid):
    """The account may sign in again."""
    words = _("That account may sign in again.")
    return _change_account(uid, invitations.reactivate_account, words)


def _change_account(uid, service, words):
    user = _fund_account_or_404(uid)
    if ConfirmForm().validate_on_submit():
        done = perform(
            service,
            current_user._get_current_object(),
            user,
            refused=invitations.REFUSALS,
        )
        # Flashes travel in the session cookie: the message names no account.
        flash(words if done.ok else done.words, "info" if done.ok else "error")
    return redirect(url_for("auth.users"))


def _gone():
    """The one answer for a link that opens no invitation, whatever the reason."""
    session.pop(SESSION_KEY, None)
    return render_template("auth/invitation_gone.html"), 404


@bp.get("/invitation/<token>")
def invitation_link(token):
    """The link of an invitation: its token goes to the session, and the browser to a page
    whose address does not carry it."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.index"))
    if invitations.open_invitation(token) is None:
        return _gone()
    session[SESSION_KEY] = token
    return redirect(url_for("auth.invitation"), 303)


@bp.route("/invitation", methods=["GET", "POST"])
def invitation():
    """The invited person sets the account's password; the second factor comes next."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.index"))
    token = session.get(SESSION_KEY)
    form = AcceptInvitationForm()
    if form.is_submitted():
        with reading():
            opened = invitations.open_invitation(token)
            form.rules_login = opened.login if opened is not None else None
        if form.validate_on_submit():
            try:
                done = attempts.accept_invitation(
                    token, form.password.data, client_token(), form.code.data
                )
            except invitations.InvitationClosedError:
                return _gone()
            except invitations.InvitationWaitingError:
                return redirect(url_for("auth.invitation"))
            except invitations.InvitationCodeError as exc:
                form.code.errors = [
                    _("Enter the code a manager of the fund gave you.")
                    if exc.missing
                    else _(
                        "That is not the code a manager of the fund gave for this invitation:"
                        " check it with them."
                    )
                ]
            except services.PasswordPolicyError as exc:
                form.password.errors = [_("This password cannot be used: %(why)s.", why=exc)]
            except services.AuthError as exc:
                form.form_errors.append(refusal(exc))
            else:
                # The account exists; it works once its second factor is enrolled.
                _fresh_session()
                session["pending"] = {
                    "user": done.user.get_id(),
                    "at": int(utcnow().timestamp()),
                }
                flash(
                    _(
                        "Your password is set. Now set up your second factor: the account"
                        " works once it is active."
                    ),
                    "info",
                )
                return redirect(url_for("auth.code"))
        return refused.refuse(form, to=url_for("auth.invitation"))
    with reading():
        found = invitations.open_invitation(token)
        if found is None:
            return _gone()
        details = {
            "login": found.login,
            "role": ROLE_LABELS[found.role],
            "fund": found.fund.name,
            "expires_at": found.expires_at,
            "needs_code": found.needs_code,
            "waiting": found.waiting_for_manager,
        }
    return render_template("auth/invitation.html", form=refused.restore(form), **details)


@bp.app_context_processor
def _invitations_to_confirm():
    """For a manager's dashboard: how many of the fund's invitations wait for a manager
    (counted only where a page asks)."""

    def count():
        if not current_user.is_authenticated or current_user.role != Role.MANAGER:
            return 0
        return invitations.waiting_for_manager(current_user.fund_id)

    return {"invitations_to_confirm": count}


@bp.get("/fund/invitations")
@role_required(Role.MANAGER)
def invitations_to_confirm():
    """A manager's list of the fund's open invitations to accounts that read cases or
    move money: those to confirm, and those confirmed whose code may be shown anew."""
    return render_template(
        "auth/invitations_to_confirm.html",
        invitations=invitations.staff_invitations(current_user.fund_id),
        confirm=ConfirmForm(),
        roles=ROLE_LABELS,
    )


@bp.post("/fund/invitations/<uid>/confirm")
@role_required(Role.MANAGER)
def confirm_invitation(uid):
    """Confirm an invitation and show its code, this once: only its hash is kept."""
    invitation = _fund_invitation_or_404(uid)
    back = url_for("auth.invitations_to_confirm")
    if not ConfirmForm().validate_on_submit():
        return redirect(back)
    done = perform(
        invitations.confirm_invitation,
        current_user._get_current_object(),
        invitation,
        refused=invitations.InvitationError,
    )
    if not done.ok:
        flash(done.words, "error")
        return redirect(back)
    invitation, code = done.value
    return render_template(
        "auth/invitation_confirmed.html",
        invitation=invitation,
        code=invitations.shown_code(code),
        roles=ROLE_LABELS,
    )
