"""Rolling a donor table up a level when the small-count rule would hide most of it: a
category to its group, a region to its area, a month to its quarter, then its half-year,
then the year. The coarser figures are decided on the year's grid beside every other
(``grid.Grid``: shown only where they give nothing hidden away); this module names the
levels and picks, for each table of a report, the first level at which most rows show.
A donor sees one level of each table, never two.
"""

from flask_babel import lazy_gettext as _l

from ..core.support import Category
from .anonymise import mostly_hidden

#: Kinds of support by what they are for.
CATEGORY_GROUPS = {
    Category.RELOCATION.value: "safety",
    Category.PHYSICAL_SECURITY.value: "safety",
    Category.DIGITAL_SECURITY.value: "safety",
    Category.LEGAL.value: "justice",
    Category.PRISON_VISITS.value: "justice",
    Category.TRIAL_MONITORING.value: "justice",
    Category.MEDICAL.value: "living",
    Category.DEPENDANTS.value: "living",
    Category.HUMANITARIAN.value: "living",
    Category.LONGER_TERM.value: "living",
    Category.OTHER.value: "living",
}
GROUP_LABELS = {
    "safety": _l("Safety and relocation"),
    "justice": _l("Legal support and justice"),
    "living": _l("Health, family and living costs"),
}

#: Regions by the larger area they are part of.
AREAS = {
    "East Africa": "africa",
    "Central Africa": "africa",
    "West Africa": "africa",
    "Southern Africa": "africa",
    "Middle East and North Africa": "mena",
    "Andean region": "americas",
    "Central America and Mexico": "americas",
    "South America": "americas",
    "Caribbean": "americas",
    "South Asia": "asia",
    "South-East Asia": "asia",
    "Eastern Europe and Central Asia": "europe",
    "East Asia": "east_asia",
    "Europe": "western_europe",
    "North America": "north_america",
    "Pacific": "pacific",
}
AREA_LABELS = {
    "africa": _l("Sub-Saharan Africa"),
    "mena": _l("Middle East and North Africa"),
    "americas": _l("Latin America and the Caribbean"),
    "asia": _l("South and South-East Asia"),
    "europe": _l("Eastern Europe and Central Asia"),
    "east_asia": _l("East Asia"),
    "western_europe": _l("Europe"),
    "north_america": _l("North America"),
    "pacific": _l("Pacific"),
}

#: Each breakdown that rolls up, by the coarser breakdown it rolls up to.
ROLLUPS = {"category_group": "category", "area": "region"}


def parents(coarse):
    """The finer breakdown ``coarse`` sums, and each finer value's coarser value."""
    return ROLLUPS[coarse], (CATEGORY_GROUPS if coarse == "category_group" else AREAS)


def coarser(dim, value):
    """The value of the case at the coarser level ``dim`` from its value at the finer."""
    fine, mapping = parents(dim)
    return mapping.get(value, value)


def levels(dim):
    """The levels a breakdown is tried at, finest first."""
    return {"category": ("category", "category_group"), "region": ("region", "area")}.get(
        dim, (dim,)
    )


def pick(tables):
    """Of one breakdown's ``tables`` (a level name -> :class:`~.anonymise.Table`, finest
    first), the level a report shows: the first at which most rows show their count;
    when none does, the one showing the most rows (the finest of equals). A table with no
    rows (not broken down) stays as it is."""
    names = list(tables)
    for name in names:
        table = tables[name]
        if not table.rows or not mostly_hidden(r.cells["grants"] for r in table.rows):
            return name
    return max(
        names,
        key=lambda n: (
            sum(1 for r in tables[n].rows if r.cells["grants"].shown),
            -names.index(n),
        ),
    )
