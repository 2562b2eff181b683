"""Pages of the directory: the search every fund's staff use, an entry's page, and the
owner fund's changes (a manager's entry, verified or removed; finance's payment details;
the CSV export and import). An entry another fund keeps for itself is answered as one
that does not exist."""

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..core import geo
from ..core.extensions import reading
from ..core.forms import ConfirmForm
from ..core.work import perform
from . import bp, csv_file, services
from .forms import EntryForm, ImportForm, PaymentDetailsForm, language_names
from .models import SERVICE_LABELS, VISIBILITY_LABELS, Service

READERS = tuple(services.READERS)


def _actor():
    return current_user._get_current_object()


def _entry_or_404(uid):
    entry = services.entry_for(_actor(), uid)
    if entry is None:
        abort(404)
    return entry


def _own_entry_or_404(uid):
    """The entry, for its own fund's staff only: another fund gets what an unknown code
    gets, even for an entry the whole network reads."""
    entry = _entry_or_404(uid)
    if entry.fund_id != current_user.fund_id:
        abort(404)
    return entry


@bp.app_context_processor
def _directory_to_verify():
    """For the pages the fund's staff start from (the queue, the payments): how many of
    the entries their fund keeps wait to be verified (counted only where a page asks)."""

    def to_verify():
        if not current_user.is_authenticated:
            return 0
        return services.stale_count(current_user)

    return {"directory_to_verify": to_verify}


def _filters():
    """The search's filters from the address, each kept only when it is a value the
    directory knows (services, country and region codes, language codes: nothing
    personal)."""
    args = request.args
    countries = {code for code, _name in geo.countries("en")}
    languages = {code for code, _name in language_names("en")}
    wanted = {
        "service": args.get("service", ""),
        "country": args.get("country", ""),
        "region": args.get("region", ""),
        "language": args.get("language", ""),
    }
    known = {
        "service": set(Service),
        "country": countries,
        "region": set(geo.REGIONS),
        "language": languages,
    }
    return {name: value for name, value in wanted.items() if value in known[name]}


def _words():
    return {
        "services": SERVICE_LABELS,
        "visibility": VISIBILITY_LABELS,
        "languages": dict(language_names()),
    }


@bp.get("")
@role_required(*READERS)
def index():
    """The entries the user's fund may read, searched by service, country, region and
    language; the fund's own entries not verified for a year are named at the top."""
    actor = _actor()
    filters = _filters()
    searched = any(filters.values())
    rows = services.search(actor, **filters)
    manager = actor.role in services.KEEPERS
    form = refused.restore(ImportForm(formdata=None)) if manager else None
    return render_template(
        "directory/index.html",
        rows=rows,
        filters=filters,
        searched=searched,
        stale=services.stale_own_entries(actor),
        is_stale=services.is_stale,
        countries=geo.countries(str(get_locale() or "en")),
        regions=geo.REGIONS,
        words=_words(),
        manager=manager,
        form=form,
        columns=csv_file.COLUMNS,
    )


def _entry_form_page(form, entry=None):
    return render_template("directory/edit.html", form=form, entry=entry)


@bp.get("/new")
@role_required(Role.MANAGER)
def new():
    return _entry_form_page(refused.restore(EntryForm(formdata=None)))


def _fields(form):
    return {
        "name": form.name.data,
        "services": form.services.data,
        "countries": form.countries.data,
        "regions": form.regions.data,
        "languages": form.languages.data,
        "contact": form.contact.data,
        "referrers": form.referrers.data,
        "visibility": form.visibility.data,
        "verified_on": form.verified_on.data,
    }


@bp.post("/new")
@role_required(Role.MANAGER)
def create():
    form = EntryForm()
    if form.validate_on_submit():
        done = perform(
            services.create_entry, _actor(), **_fields(form), refused=services.DirectoryError
        )
        if done.ok:
            flash(_("The entry is in the directory."), "info")
            return redirect(url_for("directory.entry", uid=done.value.uid))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("directory.new"))


@bp.get("/<uid>")
@role_required(*READERS)
def entry(uid):
    """An entry: what it offers where, how to reach it and who may refer to it; its
    payment details for finance."""
    found = _entry_or_404(uid)
    actor = _actor()
    own = found.fund_id == actor.fund_id
    payment_form = None
    if own and actor.role == Role.FINANCE:
        payment_form = refused.restore(
            PaymentDetailsForm(formdata=None, details=found.payment_details)
        )
    return render_template(
        "directory/entry.html",
        entry=found,
        own=own,
        manager=own and actor.role in services.KEEPERS,
        finance=actor.role == Role.FINANCE,
        payment_form=payment_form,
        stale=services.is_stale(found),
        payee_type=services.payee_type_of(found),
        confirm=ConfirmForm(),
        words=_words(),
    )


@bp.get("/<uid>/edit")
@role_required(Role.MANAGER)
def edit(uid):
    found = _own_entry_or_404(uid)
    form = EntryForm(formdata=None, obj=found)
    form.visibility.data = found.visibility.value
    return _entry_form_page(refused.restore(form), found)


@bp.post("/<uid>/edit")
@role_required(Role.MANAGER)
def update(uid):
    found = _own_entry_or_404(uid)
    form = EntryForm()
    if form.validate_on_submit():
        done = perform(
            services.update_entry,
            _actor(),
            found,
            **_fields(form),
            refused=services.DirectoryError,
        )
        if done.ok:
            flash(_("The entry is saved."), "info")
            return redirect(url_for("directory.entry", uid=uid))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("directory.edit", uid=uid))


def _step(uid, service, words, to_entry=True):
    found = _own_entry_or_404(uid)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    done = perform(service, _actor(), found, refused=services.DirectoryError)
    flash(words if done.ok else done.words, "info" if done.ok else "error")
    if to_entry or not done.ok:
        return redirect(url_for("directory.entry", uid=uid))
    return redirect(url_for("directory.index"))


@bp.post("/<uid>/verify")
@role_required(Role.MANAGER)
def verify(uid):
    """The entry was checked today and is right."""
    return _step(uid, services.verify_entry, _("The entry is marked as verified today."))


@bp.post("/<uid>/remove")
@role_required(Role.MANAGER)
def remove(uid):
    return _step(uid, services.remove_entry, _("The entry is removed from the directory."), False)


@bp.post("/<uid>/payment")
@role_required(Role.FINANCE)
def payment(uid):
    """How finance pays the entry, set by the finance staff of its own fund."""
    found = _own_entry_or_404(uid)
    form = PaymentDetailsForm()
    if form.validate_on_submit():
        done = perform(
            services.set_payment_details,
            _actor(),
            found,
            form.details.data,
            refused=services.DirectoryError,
        )
        if done.ok:
            flash(_("The payment details are saved."), "info")
            return redirect(url_for("directory.entry", uid=uid))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=url_for("directory.entry", uid=uid, _anchor="payment"))


@bp.get("/export.csv")
@role_required(Role.MANAGER)
def export():
    """The fund's own entries as CSV, without payment details."""
    done = perform(services.export_entries, _actor(), refused=services.DirectoryError)
    if not done.ok:
        abort(403)
    return Response(
        done.value.encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="directory.csv"'},
    )


@bp.post("/import")
@role_required(Role.MANAGER)
def import_entries():
    """Add and correct the fund's entries from a CSV, all of it or nothing."""
    again = url_for("directory.index", _anchor="import")
    with reading():
        form = ImportForm()
        valid = form.validate_on_submit()
        data = form.entries.data.read() if valid else b""
    if not valid:
        return refused.refuse(form, to=again)
    done = perform(
        services.import_entries,
        _actor(),
        data,
        refused=(csv_file.EntriesFileError, services.DirectoryError),
    )
    if isinstance(done.refusal, csv_file.EntriesFileError):
        return refused.refuse(form, to=again, problems=done.refusal.problems)
    if not done.ok:
        return refused.refuse(form, to=again, problems=[done.words])
    added, corrected = done.value
    flash(
        _(
            "Entries imported: %(added)d added, %(corrected)d corrected.",
            added=added,
            corrected=corrected,
        ),
        "info",
    )
    return redirect(url_for("directory.index"))
