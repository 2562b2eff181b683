"""Setting up donors and pools, recording money received, and the rate table."""

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..core import limits
from ..core.extensions import db
from ..core.forms import ConfirmForm
from ..core.money import CURRENCIES
from ..core.paging import one_page, page_arg
from ..core.work import perform
from ..ledger.models import Contribution
from . import bp, services
from .forms import ContributionForm, ContributionReversalForm, DonorForm, PoolForm, RateForm
from .models import Donor, ExchangeRate, Pool, RestrictionKind


def _actor():
    return current_user._get_current_object()


def fund_pool_or_404(uid):
    """A pool of the user's fund; 404 otherwise, whether it exists or not."""
    pool = db.session.execute(sa.select(Pool).where(Pool.uid == uid)).scalar_one_or_none()
    if pool is None or pool.fund_id != current_user.fund_id:
        abort(404)
    return pool


def _setup_page():
    donors = (
        db.session.execute(
            sa.select(Donor).where(Donor.fund_id == current_user.fund_id).order_by(Donor.name)
        )
        .scalars()
        .all()
    )
    pool_form = refused.restore(PoolForm(formdata=None))
    pool_form.donor.choices = [SelectChoice(d.id, d.name) for d in donors]
    return render_template(
        "pools/new.html",
        donor_form=refused.restore(DonorForm(formdata=None)),
        pool_form=pool_form,
        donors=donors,
    )


@bp.get("/new")
@role_required(Role.ADMIN, Role.MANAGER)
def new():
    """Forms for a new donor and a new pool."""
    return _setup_page()


@bp.post("/donors")
@role_required(Role.ADMIN, Role.MANAGER)
def create_donor():
    """Add a donor."""
    form = DonorForm()
    if form.validate_on_submit():
        perform(services.create_donor, current_user.fund_id, form.name.data, _actor())
        flash(_("Donor added."), "info")
        return redirect(url_for("pools.new"))
    return refused.refuse(form, to=url_for("pools.new", _anchor="donor"))


@bp.post("")
@role_required(Role.ADMIN, Role.MANAGER)
def create_pool():
    """Add a pool of a donor's money with its restrictions."""
    form = PoolForm()
    donors = {
        d.id: d
        for d in db.session.execute(
            sa.select(Donor).where(Donor.fund_id == current_user.fund_id)
        ).scalars()
    }
    form.donor.choices = [SelectChoice(i, d.name) for i, d in donors.items()]
    if form.validate_on_submit():
        restrictions = [(RestrictionKind.CATEGORY, c) for c in form.categories.data]
        restrictions += [(RestrictionKind.COUNTRY, c) for c in form.countries.data]
        done = perform(
            services.create_pool,
            donors[form.donor.data],
            _actor(),
            form.name.data,
            form.currency.data,
            cap_per_grant=form.cap_per_grant.data,
            starts_on=form.starts_on.data,
            ends_on=form.ends_on.data,
            restrictions=restrictions,
            refused=services.PoolError,
        )
        if done.ok:
            flash(_("Pool created."), "info")
            return redirect(url_for("pools.pool", uid=done.value.uid))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("pools.new", _anchor="pool"))


@bp.post("/<uid>/contributions")
@role_required(Role.ADMIN, Role.MANAGER)
def contribute(uid):
    """Record money received into the pool."""
    pool = fund_pool_or_404(uid)
    form = ContributionForm()
    if form.validate_on_submit():
        done = perform(
            services.record_contribution,
            pool,
            _actor(),
            form.amount.data,
            form.currency.data,
            form.received_on.data,
            reference=form.reference.data,
            refused=services.PoolError,
        )
        if done.ok:
            flash(_("Contribution recorded."), "info")
            return redirect(url_for("pools.pool", uid=pool.uid))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("pools.pool", uid=pool.uid, _anchor="contributions"))


@bp.post("/contributions/<uid>/reverse")
@role_required(Role.ADMIN, Role.MANAGER)
def reverse_contribution(uid):
    """Take back a contribution booked by mistake."""
    contribution = db.session.execute(
        sa.select(Contribution).where(Contribution.uid == uid)
    ).scalar_one_or_none()
    if contribution is None or contribution.pool.fund_id != current_user.fund_id:
        abort(404)
    form = ContributionReversalForm()
    page = url_for("pools.pool", uid=contribution.pool.uid, _anchor="contributions")
    # The row's own place on the page, read before the work: a refusal expires the rows.
    again = url_for(
        "pools.pool", uid=contribution.pool.uid, _anchor=f"contribution-{contribution.uid}"
    )
    about = contribution.uid
    if form.validate_on_submit():
        done = perform(
            services.reverse_contribution,
            contribution,
            _actor(),
            form.reason.data,
            refused=services.PoolError,
        )
        if done.ok:
            flash(_("Contribution reversed."), "info")
            return redirect(page)
        form.form_errors.append(done.words)
    return refused.refuse(form, to=again, about=about)


@bp.get("/rates")
@role_required(Role.FINANCE, Role.MANAGER)
def rates():
    """The fund's exchange-rate table, newest first, a page at a time and, when asked, of
    one currency only (``currency``), below the entries waiting for a second person."""
    currency = request.args.get("currency", "")
    currency = currency if currency in CURRENCIES else ""
    page = page_arg()

    def entries(*where, page=1):
        if currency:
            where = (*where, sa.or_(ExchangeRate.base == currency, ExchangeRate.quote == currency))
        found, more = one_page(
            sa.select(ExchangeRate)
            .where(ExchangeRate.fund_id == current_user.fund_id, *where)
            .options(
                sa.orm.joinedload(ExchangeRate.set_by),
                sa.orm.joinedload(ExchangeRate.confirmed_by),
            )
            .order_by(ExchangeRate.on_date.desc(), ExchangeRate.id.desc()),
            page,
            RATES_PAGE,
        )
        return [entry for (entry,) in found], more

    can_edit = current_user.role in services.RATE_KEEPERS
    held, more_held = entries(sa.not_(ExchangeRate.counts()))
    rows, has_next = entries(ExchangeRate.counts(), page=page)
    return render_template(
        "pools/rates.html",
        held=held,
        more_held=more_held,
        rows=rows,
        page=page,
        has_next=has_next,
        currency=currency,
        currencies=CURRENCIES,
        form=refused.restore(RateForm(formdata=None)) if can_edit else None,
        confirm_form=ConfirmForm() if can_edit else None,
        tolerance=format(limits.rate_tolerance_percent().normalize(), "f"),
    )


#: Rates on a page of the table.
RATES_PAGE = 100


@bp.post("/rates")
@role_required(Role.FINANCE, Role.MANAGER)
def add_rate():
    """Add a rate to the table."""
    form = RateForm()
    if form.validate_on_submit():
        done = perform(
            services.record_rate,
            current_user.fund_id,
            _actor(),
            form.on_date.data,
            form.base.data,
            form.quote.data,
            form.rate.data,
            form.source.data,
            refused=services.PoolError,
        )
        if done.ok:
            if done.value.needs_second:
                flash(
                    _(
                        "Rate recorded, not yet counted: it is the first of its pair, or "
                        "more than %(pct)s%% away from the last rate someone else stands "
                        "behind, so a second person (another finance officer or a manager) "
                        "confirms it on this page first.",
                        pct=format(limits.rate_tolerance_percent().normalize(), "f"),
                    ),
                    "info",
                )
            else:
                flash(_("Rate recorded."), "info")
            return redirect(url_for("pools.rates"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("pools.rates", _anchor="record-rate"))


def _entry_or_404(uid):
    entry = db.session.execute(
        sa.select(ExchangeRate).where(ExchangeRate.uid == uid)
    ).scalar_one_or_none()
    if entry is None or entry.fund_id != current_user.fund_id:
        abort(404)
    return entry


@bp.post("/rates/<uid>/confirm")
@role_required(Role.FINANCE, Role.MANAGER)
def confirm_rate(uid):
    """A second rate keeper stands behind a rate: a held one counts from now on."""
    entry = _entry_or_404(uid)
    if ConfirmForm().validate_on_submit():
        done = perform(services.confirm_rate, entry, _actor(), refused=services.PoolError)
        if done.ok:
            flash(_("Rate confirmed."), "info")
        else:
            flash(done.words, "error")
    return redirect(url_for("pools.rates"))


@bp.post("/rates/<uid>/refuse")
@role_required(Role.FINANCE, Role.MANAGER)
def refuse_rate(uid):
    """A rate waiting for a second person leaves the table; it never counted."""
    entry = _entry_or_404(uid)
    if ConfirmForm().validate_on_submit():
        done = perform(services.refuse_rate, entry, _actor(), refused=services.PoolError)
        if done.ok:
            flash(_("Rate refused: it is no longer in the table."), "info")
        else:
            flash(done.words, "error")
    return redirect(url_for("pools.rates"))
