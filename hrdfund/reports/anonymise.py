"""The rules every donor output follows, in one place: the PDF, the CSV and the portal are
rendered from the tables built here, so none can bypass them.

- No names, logins, contact data, exact places or dates, or free text from a case: the
  tables carry only categories, regions, genders, months and sums.
- Countries on the high-risk list (``HIGH_RISK_COUNTRIES``) appear only as their region.
- A donor downloads every year, quarter and month, and the figures of those reports are
  tied by sums: a year is its quarters added up, a quarter its months, and each period's
  rows add up to its total in every breakdown. So what is hidden is decided across a
  calendar year, on a :class:`Grid` that holds every figure of its periods; as each period
  ends its figures are decided beside those issued before, which the grid keeps fixed
  (:meth:`Grid.fix`), so that nothing decided later gives away what was hidden earlier:
  a count under 5 is hidden ("fewer than 5"); an amount with its count, or when one grant
  makes more than half of it; the defenders' dependants with their count, zero included;
  a period with payments to fewer than 5 grants is not broken down at all. Then an exact
  check finds each hidden figure that the shown ones determine through those sums, in any
  combination (the year less the quarters shown, a total less the rows shown, across
  breakdowns and periods), and hides one more figure beside it, until no hidden figure
  can be worked out. What the pool's account publishes to the cent (each period's
  payments) is never hidden. Amounts are rounded.
- Line items carry a code keyed per donor and year instead of a case id, and places and
  categories shared by fewer than 5 of them in any period of the year are generalised in
  every period of it; a line issued already keeps how it read. Once 1 to 4 grants of a
  quarter or one of its months are not listed, none of them issued from then on lists a
  line, nor does the year (``data.line_items``).
"""

from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app

from ..core import geo
from ..core.cells import csv_safe  # noqa: F401  (the reports' CSVs use it from here)
from ..core.columns import cipher

#: The smallest count a donor output shows.
THRESHOLD = 5
#: Why a cell is not shown: a count under 5; a figure hidden so that another cannot be
#: worked out; an amount mostly one grant's; a figure with fewer than 5 grants that the
#: CSV does not list, which the CSV's listed lines could be subtracted from.
SMALL, SECONDARY, DOMINANT, UNLISTED = "small", "secondary", "dominant", "unlisted"
#: Why a figure about the people of a row is not shown: the row's count of them is not
#: (their dependants, beside fewer than 5 defenders).
GROUP = "group"
#: Why a figure of a coarser level (a category group, a half-year) is not shown: not
#: shown unless it is safe beside every other figure (see ``grid.Grid``).
ROLLUP = "rollup"
NOT_SHOWN = "not shown"
#: The label of a table's total row, shared by every breakdown of a period.
TOTAL = "total"


@dataclass
class Cell:
    """One figure of a donor table; ``hidden`` says why it is not shown, if it is not."""

    value: object
    hidden: str | None = None

    @property
    def shown(self):
        return self.hidden is None

    def plain(self):
        """The figure for data outputs and the digest: the value, or why it is hidden."""
        return str(self.value) if self.shown else self.hidden


@dataclass
class Row:
    label: str
    cells: dict = field(default_factory=dict)


@dataclass
class Table:
    """A one-dimensional breakdown: a row per value of ``dimension`` and a total row, each
    with the same measures, suppressed already. ``broken_down`` is false for a period
    with too few grants to list any row."""

    dimension: str
    measures: tuple
    rows: list
    total: Row
    broken_down: bool = True
    #: Rolled up: the finer breakdown that would mostly be hidden (``dimension`` is the
    #: level shown instead).
    rolled_from: str | None = None

    def plain(self):
        return {
            "dimension": self.dimension,
            **({"rolled_from": self.rolled_from} if self.rolled_from else {}),
            "broken_down": self.broken_down,
            "rows": [
                {"label": r.label, **{m: r.cells[m].plain() for m in self.measures}}
                for r in self.rows + [self.total]
            ],
        }


def mostly_hidden(cells):
    """Whether a table whose rows' counts are ``cells`` shows too little to be read: it
    has rows, and no more than half of them show their count. A donor table in that state
    is rolled up a level (see ``data.breakdowns``)."""
    cells = list(cells)
    return bool(cells) and 2 * sum(1 for c in cells if c.shown) <= len(cells)


def round_amount(amount):
    """Amounts in breakdowns, to the whole unit."""
    return Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)


def is_small(value):
    """A count a donor output does not show: 1 to 4."""
    return 0 < value < THRESHOLD


def few_apart(count, moved):
    """Whether a CSV's grants not listed are too few to stand apart from the lines: 1 to
    4 of them (``count``), or 1 to 4 of them with money paid or taken back (``moved``)."""
    return is_small(count) or is_small(moved)


def count_cell(value):
    """A lone count, shown only from THRESHOLD."""
    return Cell(value, SMALL if is_small(value) else None)


def place(country):
    """Where a case is, as a donor may see it: the country's name, or only its region for
    a country on the high-risk list."""
    if not country:
        return NOT_SHOWN
    if country in high_risk_countries():
        return geo.region_of(country) or NOT_SHOWN
    return geo.country_name(country)


def high_risk_countries():
    listed = current_app.config.get("HIGH_RISK_COUNTRIES", "")
    return {c.strip().upper() for c in listed.split(",") if c.strip()}


def donor_code(donor_id, grant_uid, year):
    """A grant's code for one donor in one year's reports: the same grant has another code
    for another donor, and another in another year, so lines of different years do not
    link; nothing about the case can be learned from it."""
    return "G-" + cipher().blind_index(f"donor-code|{donor_id}|{grant_uid}|{year}")[:10].upper()


def generalise(items, keys=("category", "place"), periods=None, fixed=()):
    """Line items (dicts) changed in place so that every combination of ``keys`` is shared
    by at least THRESHOLD items: places fall back to their region, then to "not shown";
    then categories to "not shown". ``periods``: lists of these same items, one per period
    of a year; then every combination is shared by THRESHOLD items in each period, and an
    item generalised for one period is generalised in all, so its line reads the same in
    every report of the year and no report gives away what another hid. Items in ``fixed``
    (by id) were issued already and keep how they read."""
    groups = [items] if periods is None else periods
    levels = {}
    fixed = {id(item) for item in fixed}

    def combo(item):
        return tuple(item[k] for k in keys)

    changed = True
    while changed:
        changed = False
        for step in ("region", "place", "category"):
            for group in groups:
                counts = Counter(combo(item) for item in group)
                for item in [
                    i for i in group if counts[combo(i)] < THRESHOLD and id(i) not in fixed
                ]:
                    changed = _coarsen(item, step, levels) or changed
    return items


def _coarsen(item, step, levels):
    """One step more general, if the item is not that general already."""
    place, category = levels.get(id(item), (0, 0))
    if step == "region" and place < 1:
        item["place"], place = item["region"] or NOT_SHOWN, 1
    elif step == "place" and place < 2:
        item["place"], place = NOT_SHOWN, 2
    elif step == "category" and category < 1:
        item["category"], category = NOT_SHOWN, 1
    else:
        return False
    levels[id(item)] = (place, category)
    return True
