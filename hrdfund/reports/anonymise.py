"""The rules every donor output follows, in one place: the PDF, the CSV and the portal are
rendered from the tables built here, so none can bypass them.

- No names, logins, contact data, exact places or dates, or free text from a case: the
  tables carry only categories, regions, genders, months and sums.
- Countries on the high-risk list (``HIGH_RISK_COUNTRIES``) appear only as their region.
- A count under 5 shows as "fewer than 5"; when that leaves one hidden cell in a table, the
  next smallest is hidden too, so no cell is the total less the others. An amount is hidden
  with its count, or when one grant makes more than half of it; amounts are rounded.
- Line items carry a code keyed per donor instead of a case id, and places and categories
  shared by fewer than 5 of them are generalised.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app

from .. import geo
from ..columns import cipher

#: The smallest count a donor output shows.
THRESHOLD = 5
#: Why a cell is not shown.
SMALL, SECONDARY, DOMINANT = "small", "secondary", "dominant"
NOT_SHOWN = "not shown"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


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
    with the same measures. Build it with :func:`breakdown`; it is suppressed already."""

    dimension: str
    measures: tuple
    rows: list
    total: Row

    def plain(self):
        return {
            "dimension": self.dimension,
            "rows": [
                {"label": r.label, **{m: r.cells[m].plain() for m in self.measures}}
                for r in self.rows + [self.total]
            ],
        }


def round_amount(amount):
    """Amounts in breakdowns, to the whole unit."""
    return Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)


def breakdown(dimension, groups, counts=("grants", "defenders", "dependants"), amounts=("amount",)):
    """A suppressed Table from ``groups``: label -> {measure: value, ..., "largest":
    {amount measure: the largest single grant's part of it}} (for the dominance rule).
    The total row sums the groups, except for measures given in ``groups["__total__"]``
    (defenders counted once across months, for instance)."""
    groups = dict(groups)
    given_total = groups.pop("__total__", {})
    measures = tuple(counts) + tuple(amounts)
    rows = [
        Row(str(label), {m: Cell(values.get(m, 0)) for m in measures})
        for label, values in groups.items()
    ]
    total = Row(
        "total",
        {
            m: Cell(given_total.get(m, sum((r.cells[m].value for r in rows), start=0)))
            for m in measures
        },
    )
    for measure in counts:
        _suppress_counts(rows, total, measure)
    for measure in amounts:
        largest = [values.get("largest", {}).get(measure, 0) for values in groups.values()]
        _suppress_amounts(rows, total, measure, counts[0], largest)
    return Table(dimension, measures, rows, total)


def count_cell(value):
    """A lone count, shown only from THRESHOLD."""
    return Cell(value, SMALL if _small(value) else None)


def _small(value):
    return 0 < value < THRESHOLD


def _suppress_counts(rows, total, measure):
    if _small(total.cells[measure].value):
        # Fewer than 5 in all: nothing of this measure is shown.
        total.cells[measure].hidden = SMALL
        for row in rows:
            row.cells[measure].hidden = SMALL if row.cells[measure].value else SECONDARY
        return
    for row in rows:
        if _small(row.cells[measure].value):
            row.cells[measure].hidden = SMALL
    _complement(rows, total, measure)


def _suppress_amounts(rows, total, measure, count, largest):
    for row, biggest in zip(rows, largest, strict=True):
        value = row.cells[measure].value
        if not row.cells[count].shown:
            row.cells[measure].hidden = row.cells[count].hidden
        elif value and abs(biggest) * 2 > abs(value):
            row.cells[measure].hidden = DOMINANT
    if not total.cells[count].shown:
        total.cells[measure].hidden = total.cells[count].hidden
    _complement(rows, total, measure)
    for cell in [r.cells[measure] for r in rows] + [total.cells[measure]]:
        cell.value = round_amount(cell.value)


def _complement(rows, total, measure):
    """One hidden cell would be the total less the others: hide the next smallest too."""
    hidden = [r for r in rows if not r.cells[measure].shown]
    if len(hidden) != 1 or not total.cells[measure].shown:
        return
    others = sorted(
        (r for r in rows if r.cells[measure].shown),
        key=lambda r: (r.cells[measure].value == 0, r.cells[measure].value),
    )
    if others:
        others[0].cells[measure].hidden = SECONDARY
    else:
        total.cells[measure].hidden = SECONDARY


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


def donor_code(donor_id, grant_uid):
    """A grant's code for one donor: the same grant has another code for another donor,
    and nothing about the case can be learned from it."""
    return "G-" + cipher().blind_index(f"donor-code|{donor_id}|{grant_uid}")[:10].upper()


def generalise(items, keys=("category", "place")):
    """Line items (dicts) changed in place so that every combination of ``keys`` is shared
    by at least THRESHOLD items: places fall back to their region, then to "not shown";
    then categories to "not shown"."""

    def combo(item):
        return tuple(item[k] for k in keys)

    for step in ("region", "place", "category"):
        counts = Counter(combo(item) for item in items)
        for item in [i for i in items if counts[combo(i)] < THRESHOLD]:
            if step == "region":
                item["place"] = item["region"] or NOT_SHOWN
            elif step == "place":
                item["place"] = NOT_SHOWN
            else:
                item["category"] = NOT_SHOWN
    return items


def csv_safe(value):
    """A CSV cell a spreadsheet will not run: text starting with =, +, -, @, a tab or a
    carriage return gets a leading apostrophe; numbers stay numbers."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not _NUMBER.match(text):
        return "'" + text
    return text
