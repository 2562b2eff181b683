"""Pages of the network: the public list of member funds; the network administrator's
page of funds (create, suspend, resume, name the intake fund) and of partner
organisations (create them, cut an account off or let it back); a fund
administrator's settings (what the fund covers, its four-eyes threshold and targets)."""

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import refused
from ..auth import services as accounts
from ..auth.guard import role_required
from ..auth.language import NAMES
from ..auth.models import Fund, PartnerOrganisation, Role, User
from ..cases.models import Urgency
from ..cases.targets import target_hours
from ..core import geo, limits
from ..core.extensions import db, reading
from ..core.forms import ConfirmForm
from ..core.work import perform
from . import bp, partners
from . import funds as services
from .forms import FundLimitsForm, FundProfileForm, NewFundForm, NewPartnerForm

ACCOUNT_REFUSALS = (
    services.FundError,
    accounts.UserExistsError,
    accounts.LoginPolicyError,
    accounts.AccountLinkError,
)


def _actor():
    return current_user._get_current_object()


def describe(fund, locale):
    """What the public list says of a fund: what it covers in words, and how fast it answers
    by the targets it uses."""
    urgent = target_hours(None, Urgency.URGENT, fund=fund)
    normal = target_hours(None, Urgency.NORMAL, fund=fund)
    names = dict(geo.countries(locale))
    return {
        "fund": fund,
        **services.covers(fund, names),
        "languages": [NAMES[c] for c in fund.languages if c in NAMES],
        "urgent_hours": urgent[0],
        "normal_days": max(1, round(normal[0] / 24)),
    }


@bp.get("/funds")
def directory():
    """The member funds that take applications, and what each covers (public)."""
    locale = str(get_locale() or "en")
    rows = [describe(f, locale) for f in services.open_funds()]
    return render_template("network/directory.html", rows=rows, intake=services.intake_fund())


def _funds_page(form=None):
    return render_template(
        "network/funds.html",
        funds=services.member_funds(),
        staff=services.staff_counts(),
        form=form or refused.restore(NewFundForm(formdata=None)),
        confirm=ConfirmForm(),
    )


@bp.get("/network/funds")
@role_required(Role.NETWORK_ADMIN)
def funds():
    """Every member fund: its state and how many accounts it has (no case, no name)."""
    return _funds_page()


@bp.post("/network/funds")
@role_required(Role.NETWORK_ADMIN)
def create_fund():
    """A new member fund and its first administrator."""
    form = NewFundForm()
    if form.validate_on_submit():
        with reading():
            pass  # the password is hashed with no transaction open
        password_hash = accounts.hash_password(form.admin_password.data)
        done = perform(
            services.create_fund,
            _actor(),
            form.name.data,
            form.admin_login.data,
            password_hash,
            refused=ACCOUNT_REFUSALS,
        )
        if done.ok:
            fund, _admin = done.value
            # Flashes travel in the session cookie: the message names no account.
            flash(
                _("Fund %(name)s created, with its first administrator.", name=fund.name),
                "info",
            )
            return redirect(url_for("network.funds", _anchor=f"fund-{fund.uid}"))
        if isinstance(done.refusal, accounts.UserExistsError):
            form.admin_login.errors.append(_("That login is taken."))
        elif isinstance(done.refusal, accounts.LoginPolicyError):
            form.admin_login.errors.append(done.words)
        else:
            form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("network.funds", _anchor="new-fund"))


def _fund_or_404(uid):
    fund = db.session.execute(sa.select(Fund).where(Fund.uid == uid)).scalar_one_or_none()
    if fund is None or fund.elsewhere:
        abort(404)
    return fund


def _fund_step(uid, service, words):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    done = perform(service, _actor(), _fund_or_404(uid), refused=services.FundError)
    if done.ok:
        flash(words % {"name": done.value.name}, "info")
    else:
        flash(done.words, "error")
    return redirect(url_for("network.funds", _anchor=f"fund-{uid}"))


@bp.post("/network/funds/<uid>/suspend")
@role_required(Role.NETWORK_ADMIN)
def suspend_fund(uid):
    """No one of the fund signs in, no application reaches it; its records stay."""
    return _fund_step(uid, services.suspend_fund, _("%(name)s is suspended."))


@bp.post("/network/funds/<uid>/resume")
@role_required(Role.NETWORK_ADMIN)
def resume_fund(uid):
    return _fund_step(uid, services.resume_fund, _("%(name)s works again."))


@bp.post("/network/funds/<uid>/intake")
@role_required(Role.NETWORK_ADMIN)
def name_intake(uid):
    """Applications whose applicant does not know which fund to choose go to this one."""
    return _fund_step(
        uid,
        services.name_intake,
        _("%(name)s receives the applications of those who do not know where to apply."),
    )


def _partners_page():
    rows = partners.organisations()
    return render_template(
        "network/partner_organisations.html",
        organisations=rows,
        form=refused.restore(NewPartnerForm(formdata=None)),
        confirm=ConfirmForm(),
    )


@bp.get("/network/partners")
@role_required(Role.NETWORK_ADMIN)
def partner_organisations():
    """Every partner organisation with its accounts: no case."""
    return _partners_page()


@bp.post("/network/partners")
@role_required(Role.NETWORK_ADMIN)
def create_partner():
    """A new partner organisation."""
    form = NewPartnerForm()
    if form.validate_on_submit():
        done = perform(
            partners.create_organisation,
            _actor(),
            form.name.data,
            form.country.data,
            refused=partners.PartnerError,
        )
        if done.ok:
            # Flashes travel in the session cookie: the message names nothing.
            flash(_("The organisation is added."), "info")
            return redirect(
                url_for("network.partner_organisations", _anchor=f"org-{done.value.uid}")
            )
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("network.partner_organisations", _anchor="new-partner"))


def _partner_account_step(uid, service, words):
    if not ConfirmForm().validate_on_submit():
        abort(400)
    user = db.session.execute(
        sa.select(User).where(User.uid == uid, User.role == Role.PARTNER)
    ).scalar_one_or_none()
    if user is None:
        abort(404)
    done = perform(service, _actor(), user, refused=partners.REFUSALS)
    flash(words if done.ok else done.words, "info" if done.ok else "error")
    organisation = db.session.get(PartnerOrganisation, user.partner_organisation_id)
    return redirect(url_for("network.partner_organisations", _anchor=f"org-{organisation.uid}"))


@bp.post("/network/partners/accounts/<uid>/deactivate")
@role_required(Role.NETWORK_ADMIN)
def deactivate_partner_account(uid):
    """The account can no longer sign in, and each of its sessions ends at once."""
    words = _("That account is deactivated: it can no longer sign in; its sessions have ended.")
    return _partner_account_step(uid, partners.deactivate_account, words)


@bp.post("/network/partners/accounts/<uid>/reactivate")
@role_required(Role.NETWORK_ADMIN)
def reactivate_partner_account(uid):
    """The account may sign in again."""
    return _partner_account_step(
        uid, partners.reactivate_account, _("That account may sign in again.")
    )


def _own_fund():
    return db.session.get(Fund, current_user.fund_id)


@bp.get("/fund/settings")
@role_required(Role.ADMIN)
def settings():
    """The fund's own settings: what it covers, its four-eyes threshold and targets."""
    fund = _own_fund()
    profile = FundProfileForm(
        formdata=None,
        takes_applications=fund.takes_applications,
        categories=fund.categories,
        countries=fund.countries,
        languages=fund.languages,
    )
    stored = fund.four_eyes_threshold
    limits_form = FundLimitsForm(
        formdata=None,
        # One stored above the instance's (lowered since) counts as the instance's: the
        # form says what counts, so that saving the targets alone is not refused for it.
        four_eyes_threshold=None if stored is None else min(stored, limits.four_eyes_threshold()),
        time_zone=fund.time_zone,
        **{name: getattr(fund, name) for name in services.TARGETS},
    )
    return render_template(
        "network/settings.html",
        fund=fund,
        profile=refused.restore(profile),
        limits=refused.restore(limits_form),
        defaults={
            "threshold": limits.four_eyes_threshold(),
            "currency": limits.reporting_currency(),
            **{name: current_app.config[name.upper()] for name in services.TARGETS},
        },
    )


@bp.post("/fund/settings/profile")
@role_required(Role.ADMIN)
def save_profile():
    form = FundProfileForm()
    if form.validate_on_submit():
        done = perform(
            services.update_profile,
            _actor(),
            _own_fund(),
            form.takes_applications.data,
            form.categories.data,
            form.countries.data,
            form.languages.data,
            refused=services.FundError,
        )
        if done.ok:
            flash(_("What the fund covers is saved."), "info")
            return redirect(url_for("network.settings"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("network.settings", _anchor="profile"))


@bp.post("/fund/settings/limits")
@role_required(Role.ADMIN)
def save_limits():
    form = FundLimitsForm()
    if form.validate_on_submit():
        done = perform(
            services.update_limits,
            _actor(),
            _own_fund(),
            form.four_eyes_threshold.data,
            {name: getattr(form, name).data for name in services.TARGETS},
            form.time_zone.data or None,
            refused=services.FundError,
        )
        if done.ok:
            flash(_("The fund's threshold, targets and time zone are saved."), "info")
            return redirect(url_for("network.settings"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("network.settings", _anchor="limits"))
