"""The directory's rules: which entries a fund sees, the search, the owner fund's
changes (each an audit entry in its chain), the reminder of entries not verified for a
year, the entries a case may need and the payee a payment may name.

An entry kept for its owner fund only is read by that fund's staff and nobody else: every
list, page, suggestion, payee choice and export here starts from :func:`visible_entries`.
"""

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth.models import Role
from ..core import geo
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.support import Category
from ..ledger.models import PayeeType
from . import csv_file
from .forms import LANGUAGES
from .models import DirectoryEntry, Service, Visibility

#: Staff who read the directory: those who work on cases and payments.
READERS = frozenset({Role.REVIEWER, Role.MANAGER, Role.FINANCE})
#: Staff who keep their fund's entries.
KEEPERS = frozenset({Role.MANAGER})
#: The services that may help with a case of each category, best first.
CATEGORY_SERVICES = {
    Category.MEDICAL: (Service.MEDICAL, Service.PSYCHOSOCIAL),
    Category.DEPENDANTS: (Service.SCHOOLING, Service.CHILDCARE),
    Category.LEGAL: (Service.LEGAL,),
    Category.PRISON_VISITS: (Service.LEGAL,),
    Category.TRIAL_MONITORING: (Service.LEGAL,),
    Category.RELOCATION: (Service.RELOCATION_HOST, Service.SHELTER),
    Category.LONGER_TERM: (Service.RELOCATION_HOST, Service.SHELTER),
    Category.PHYSICAL_SECURITY: (Service.SHELTER, Service.RELOCATION_HOST),
    Category.DIGITAL_SECURITY: (Service.DIGITAL_SECURITY,),
    Category.HUMANITARIAN: (Service.SHELTER,),
    Category.OTHER: (),
}
#: A case page suggests this many entries at most.
SUGGESTIONS_MAX = 5


class DirectoryError(ValueError):
    """A change to the directory the rules refuse, in words for the page."""


def year_before(today):
    """The same day a year earlier (28 February for a 29th)."""
    try:
        return today.replace(year=today.year - 1)
    except ValueError:
        return today.replace(year=today.year - 1, day=28)


def is_stale(entry, today=None):
    """Whether the entry was last verified 12 months ago or more."""
    return entry.verified_on <= year_before(today or utcnow().date())


def payee_type_of(entry):
    """The kind of payee a payment to the entry is: an intermediary, a host, a vendor."""
    if Service.PAYMENT_INTERMEDIARY in entry.services:
        return PayeeType.INTERMEDIARY
    if {Service.RELOCATION_HOST, Service.SHELTER} & set(entry.services):
        return PayeeType.HOST_ORGANISATION
    return PayeeType.VENDOR


def visible_to(fund_id):
    """SQL: the entries the staff of fund ``fund_id`` may read."""
    return sa.or_(
        DirectoryEntry.visibility == Visibility.NETWORK, DirectoryEntry.fund_id == fund_id
    )


def reads_directory(user):
    return user is not None and user.role in READERS and user.fund_id is not None


def visible_entries(user, *conditions):
    """Every entry ``user`` may read (none for anyone but a fund's staff), in name order."""
    if not reads_directory(user):
        return []
    entries = (
        db.session.execute(
            sa.select(DirectoryEntry)
            .where(visible_to(user.fund_id), *conditions)
            .options(sa.orm.joinedload(DirectoryEntry.fund))
        )
        .scalars()
        .all()
    )
    return sorted(entries, key=lambda e: (e.name.casefold(), e.id))


def entry_for(user, uid):
    """The entry ``uid`` if ``user`` may read it, else None."""
    if not reads_directory(user) or not isinstance(uid, str):
        return None
    return db.session.execute(
        sa.select(DirectoryEntry).where(DirectoryEntry.uid == uid, visible_to(user.fund_id))
    ).scalar_one_or_none()


def serves(entry, country=None, region=None):
    """Whether the entry serves ``country`` (itself or its whole region) and ``region``
    (the whole region or one of its countries), each left out: any."""
    if country and not (country in entry.countries or geo.region_of(country) in entry.regions):
        return False
    if region and not (
        region in entry.regions or any(geo.region_of(c) == region for c in entry.countries)
    ):
        return False
    return True


def search(user, service=None, country=None, region=None, language=None):
    """The entries ``user`` may read that give ``service`` in ``country`` or ``region``
    and speak ``language`` (each left out: any)."""
    return [
        entry
        for entry in visible_entries(user)
        if (not service or service in entry.services)
        and (not language or language in entry.languages)
        and serves(entry, country, region)
    ]


def suggestions(user, application):
    """Entries that may help with ``application``: a service its category needs, in its
    country; the verified ones first."""
    services = CATEGORY_SERVICES.get(Category(application.category), ())
    if not services or not application.country:
        return []
    found = [
        entry
        for entry in visible_entries(user)
        if set(services) & set(entry.services) and serves(entry, application.country)
    ]
    today = utcnow().date()
    found.sort(key=lambda e: (is_stale(e, today), services.index(_first(e, services))))
    return found[:SUGGESTIONS_MAX]


def _first(entry, services):
    return next(s for s in services if s in entry.services)


def entry_by_uid(uid):
    """The entry of code ``uid`` whoever keeps it, for a service that checks who may use
    it (:func:`payee_from`); None for an empty or unknown code."""
    if not uid or not isinstance(uid, str):
        return None
    return db.session.execute(
        sa.select(DirectoryEntry).where(DirectoryEntry.uid == uid)
    ).scalar_one_or_none()


def payable_entries(user):
    """The entries ``user`` may read that finance can pay."""
    return visible_entries(user, DirectoryEntry._payment_details.is_not(None))


def payee_from(entry, user):
    """(payee type, payee details) of a payment to ``entry``, which ``user``'s fund must
    see and finance must be able to pay; :class:`DirectoryError` otherwise."""
    if (
        entry is None
        or not reads_directory(user)
        or (entry.visibility != Visibility.NETWORK and entry.fund_id != user.fund_id)
    ):
        raise DirectoryError(_l("This directory entry does not exist."))
    if not entry.offers_payment:
        raise DirectoryError(_l("This directory entry has no payment details."))
    return payee_type_of(entry), f"{entry.name}\n{entry.payment_details}"


def stale_own_entries(user, today=None):
    """The entries of ``user``'s fund not verified for 12 months: what its staff are
    reminded of."""
    if not reads_directory(user):
        return []
    cutoff = year_before(today or utcnow().date())
    return visible_entries(
        user, DirectoryEntry.fund_id == user.fund_id, DirectoryEntry.verified_on <= cutoff
    )


def stale_count(user, today=None):
    """How many entries of ``user``'s fund were not verified for 12 months (0 for anyone
    who does not read the directory), counted without reading them."""
    if not reads_directory(user):
        return 0
    cutoff = year_before(today or utcnow().date())
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(DirectoryEntry)
        .where(DirectoryEntry.fund_id == user.fund_id, DirectoryEntry.verified_on <= cutoff)
    )


# -- Changes by the owner fund ----------------------------------------------------------------


def _check_keeper(actor, entry=None):
    if actor.role not in KEEPERS or actor.fund_id is None:
        raise DirectoryError(_l("Only a manager keeps the fund's directory entries."))
    if entry is not None and entry.fund_id != actor.fund_id:
        raise DirectoryError(_l("Only the fund that keeps this entry may change it."))


def _locked(entry):
    """The entry read afresh and, on PostgreSQL, locked until the change is committed, so
    two changes to it take turns; refused when another request removed it meanwhile.
    (SQLite transactions already begin with the write lock.)"""
    query = sa.select(DirectoryEntry).where(DirectoryEntry.id == entry.id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    found = db.session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()
    if found is None:
        raise DirectoryError(_l("This entry was removed from the directory meanwhile."))
    return found


def clean_fields(fields):
    """The entry's fields as stored: words trimmed, lists without repeats, in order."""
    out = dict(fields)
    for name in ("name", "contact", "referrers"):
        if name in out:
            text = " ".join((out[name] or "").split()) if name == "name" else out[name]
            out[name] = (text or "").strip() or None
    for name in ("services", "countries", "regions", "languages"):
        if name in out:
            out[name] = sorted({str(v) for v in out[name] or []})
    if "visibility" in out:
        try:
            out["visibility"] = Visibility(out["visibility"])
        except ValueError:
            raise DirectoryError(_l("Choose who finds the entry.")) from None
    return out


def check_fields(fields, today=None):
    """Refuse an entry without a name, a contact, a service or a place, or verified in
    the future."""
    if not fields.get("name"):
        raise DirectoryError(_l("Enter the provider's name."))
    if not fields.get("contact"):
        raise DirectoryError(_l("Say how to contact it safely."))
    if not fields.get("services"):
        raise DirectoryError(_l("Choose at least one service."))
    if not fields.get("countries") and not fields.get("regions"):
        raise DirectoryError(_l("Choose at least one country or region it serves."))
    if fields["verified_on"] > (today or utcnow().date()):
        raise DirectoryError(_l("The date it was verified cannot be in the future."))
    unknown = (
        set(fields["services"]) - set(Service)
        or set(fields["countries"]) - {c for c, _n in geo.countries("en")}
        or set(fields["regions"]) - set(geo.REGIONS)
        or set(fields["languages"]) - set(LANGUAGES)
    )
    if unknown:
        raise DirectoryError(
            _l("A service, country, region or language is not one the directory knows.")
        )


FIELDS = ("name", "services", "countries", "regions", "languages", "contact", "referrers")


def create_entry(actor, **fields):
    """A new entry of the actor's fund."""
    _check_keeper(actor)
    fields = clean_fields(fields)
    check_fields(fields)
    entry = DirectoryEntry(fund_id=actor.fund_id, created_by_id=actor.id)
    for name in (*FIELDS, "visibility", "verified_on"):
        setattr(entry, name, fields[name])
    db.session.add(entry)
    db.session.flush()
    audit.record(
        "directory.created",
        entry,
        actor=actor,
        fund=entry.fund_id,
        visibility=str(entry.visibility),
    )
    return entry


def update_entry(actor, entry, **fields):
    """The entry's details as the owner fund's manager corrects them."""
    _check_keeper(actor, entry)
    entry = _locked(entry)
    fields = clean_fields(fields)
    check_fields(fields)
    for name in (*FIELDS, "visibility", "verified_on"):
        setattr(entry, name, fields[name])
    entry.updated_at = utcnow()
    db.session.flush()
    audit.record(
        "directory.updated",
        entry,
        actor=actor,
        fund=entry.fund_id,
        visibility=str(entry.visibility),
    )
    return entry


def verify_entry(actor, entry, today=None):
    """The owner fund checked the entry: it is right as of today."""
    _check_keeper(actor, entry)
    entry = _locked(entry)
    entry.verified_on = today or utcnow().date()
    entry.updated_at = utcnow()
    db.session.flush()
    audit.record("directory.verified", entry, actor=actor, fund=entry.fund_id)
    return entry


def remove_entry(actor, entry):
    """The entry leaves the directory; the audit entry keeps its code."""
    _check_keeper(actor, entry)
    entry = _locked(entry)
    audit.record("directory.removed", entry, actor=actor, fund=entry.fund_id)
    db.session.delete(entry)
    db.session.flush()


def set_payment_details(actor, entry, details):
    """How to pay the entry, as the owner fund's finance records it (empty: it is not paid
    through the directory)."""
    if actor.role != Role.FINANCE or actor.fund_id != entry.fund_id:
        raise DirectoryError(_l("Only the finance staff of the fund that keeps it set this."))
    entry = _locked(entry)
    details = (details or "").strip() or None
    if details is not None and len(details) > DirectoryEntry.PAYMENT_MAX:
        raise DirectoryError(_l("The payment details are too long."))
    entry.payment_details = details
    entry.updated_at = utcnow()
    db.session.flush()
    audit.record(
        "directory.payment_details",
        entry,
        actor=actor,
        fund=entry.fund_id,
        details_set=details is not None,
    )
    return entry


# -- CSV --------------------------------------------------------------------------------------


def own_entries(actor):
    """The entries the actor's fund keeps, in name order."""
    return visible_entries(actor, DirectoryEntry.fund_id == actor.fund_id)


def export_entries(actor):
    """The CSV of the entries the manager's fund keeps; an audit entry says it left."""
    _check_keeper(actor)
    entries = own_entries(actor)
    audit.record(
        "directory.exported",
        actor=actor,
        fund=actor.fund_id,
        object_type="directory_entries",
        entries=len(entries),
    )
    return csv_file.export_rows(entries)


def import_entries(actor, data):
    """Add the file's new entries and correct those it names by code, all or none: a file
    with any wrong line raises :class:`csv_file.EntriesFileError` and stores nothing.
    Returns (added, corrected)."""
    _check_keeper(actor)
    own = {entry.uid: entry for entry in own_entries(actor)}
    rows = csv_file.read_entries(data, set(own))
    added = corrected = 0
    for _line, code, fields in rows:
        if code is None:
            create_entry(actor, **fields)
            added += 1
        else:
            update_entry(actor, own[code], **fields)
            corrected += 1
    audit.record(
        "directory.imported",
        actor=actor,
        fund=actor.fund_id,
        object_type="directory_entries",
        added=added,
        corrected=corrected,
    )
    return added, corrected
