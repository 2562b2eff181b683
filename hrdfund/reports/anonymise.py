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
  makes more than half of it; a period with payments to fewer than 5 grants is not broken
  down at all. Then an exact check finds each hidden figure that the shown ones determine
  through those sums, in any combination (the year less the quarters shown, a total less
  the rows shown, across breakdowns and periods), and hides one more figure beside it,
  until no hidden figure can be worked out. What the pool's account publishes to the cent
  (each period's payments) is never hidden. Amounts are rounded.
- Line items carry a code keyed per donor and year instead of a case id, and places and
  categories shared by fewer than 5 of them in any period of the year are generalised in
  every period of it; a line issued already keeps how it read.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from flask import current_app

from ..core import geo
from ..core.columns import cipher

#: The smallest count a donor output shows.
THRESHOLD = 5
#: Why a cell is not shown: a count under 5; a figure hidden so that another cannot be
#: worked out; an amount mostly one grant's; a figure with fewer than 5 grants that the
#: CSV does not list, which the CSV's listed lines could be subtracted from.
SMALL, SECONDARY, DOMINANT, UNLISTED = "small", "secondary", "dominant", "unlisted"
NOT_SHOWN = "not shown"
#: The label of a table's total row, shared by every breakdown of a period.
TOTAL = "total"
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
    with the same measures, suppressed already. ``broken_down`` is false for a period
    with too few grants to list any row."""

    dimension: str
    measures: tuple
    rows: list
    total: Row
    broken_down: bool = True

    def plain(self):
        return {
            "dimension": self.dimension,
            "broken_down": self.broken_down,
            "rows": [
                {"label": r.label, **{m: r.cells[m].plain() for m in self.measures}}
                for r in self.rows + [self.total]
            ],
        }


def round_amount(amount):
    """Amounts in breakdowns, to the whole unit."""
    return Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_UP)


def is_small(value):
    """A count a donor output does not show: 1 to 4."""
    return 0 < value < THRESHOLD


class Grid:
    """Every figure of one kind of donor table over a set of nested periods, and the sums
    that tie them, so that what is hidden is decided for all the periods together.

    ``periods`` maps each period's code to the codes of the periods it is the sum of (a
    year its quarters, a quarter its months, a month none); ``dims`` maps each breakdown
    to every value it takes in any of the periods. A figure is a :class:`Cell` at (measure,
    period, label), the label being :data:`TOTAL` or (dimension, value): the total is the
    same for every breakdown of a period. ``counts`` are counts of people or grants, the
    first of them the one amounts go with; ``amounts`` are sums of money; amounts in
    ``known_totals`` are published to the cent elsewhere, so their totals are never
    hidden. ``twins`` are counts that mostly equal the first (defenders, who mostly have
    one grant each): hidden wherever it is, and it wherever they are small, since one
    shown would stand in for the other. Fill it with :meth:`put`, say which rows each
    period lists (:attr:`listed`) and how many grants it concerns (:attr:`population`),
    then :meth:`protect`.
    """

    def __init__(self, periods, dims, counts, amounts=(), known_totals=(), twins=()):
        self.periods = {code: tuple(children) for code, children in periods.items()}
        self.dims = {dim: tuple(values) for dim, values in dims.items()}
        self.counts, self.amounts = tuple(counts), tuple(amounts)
        self.twins = tuple(twins)
        self.measures = self.counts + self.amounts
        self.labels = [TOTAL] + [(d, v) for d, values in self.dims.items() for v in values]
        self.cells = {
            (m, p, label): Cell(0)
            for m in self.measures
            for p in self.periods
            for label in self.labels
        }
        self.largest = {}
        #: (period, dimension) -> the values with a row in that period's table.
        self.listed = {}
        #: period -> the grants it concerns (a period of fewer than 5 is not broken down).
        self.population = {}
        #: (period, label) -> why the first count is hidden besides being small.
        self.extra = {}
        self.known = {(m, p, TOTAL) for m in known_totals for p in self.periods}
        self.dropped = set()
        #: period -> whether it was broken down, for the periods an earlier report issued.
        self.issued = {}
        #: (measure, period, label) of every figure an earlier report issued: kept as it was.
        self.fixed = set()
        self.relations = self._relations()
        #: (period, label) -> the indexes of the sums it is in.
        self.sums_of = {}
        for index, relation in enumerate(self.relations):
            for key, _c in relation:
                self.sums_of.setdefault(key, []).append(index)

    def put(self, period, label, values, largest=None):
        """The true figures of one row (or the total) of one period."""
        for measure in self.measures:
            self.cells[(measure, period, label)].value = values.get(measure, 0)
        for measure, value in (largest or {}).items():
            self.largest[(measure, period, label)] = value

    def fix(self, period, issued):
        """The figures of ``period`` as an earlier report issued them (what
        :meth:`issued_figures` gave then): each keeps its value and whether it is shown,
        nothing is decided for them again, and the figures decided now are hidden so that,
        beside them, none of theirs can be worked out."""
        for measure, label, value, hidden in issued["cells"]:
            key = (measure, period, TOTAL if label == TOTAL else tuple(label))
            if key in self.cells:
                self.cells[key] = Cell(Decimal(value) if measure in self.amounts else value, hidden)
        for dim, values in issued["listed"].items():
            self.listed[(period, dim)] = list(values)
        self.issued[period] = issued["broken_down"]
        self.population.pop(period, None)
        for measure in self.measures:
            for label in self.labels:
                self.fixed.add((measure, period, label))
                if label != TOTAL and not issued["broken_down"]:
                    cell = self.cells[(measure, period, label)]
                    cell.hidden = cell.hidden or SMALL  # no row was listed: nothing shown

    def issued_figures(self, period):
        """What the reports of ``period`` issue, for :meth:`fix` to take up later: every
        figure with its value and why it is hidden, the rows listed, whether broken down."""
        return {
            "cells": [
                [
                    measure,
                    label if label == TOTAL else list(label),
                    str(cell.value) if measure in self.amounts else cell.value,
                    cell.hidden,
                ]
                for measure in self.measures
                for label in self.labels
                for cell in [self.cells[(measure, period, label)]]
            ],
            "listed": {dim: list(self.listed.get((period, dim), ())) for dim in self.dims},
            "broken_down": period not in self.dropped,
        }

    def cell(self, measure, period, label=TOTAL):
        return self.cells[(measure, period, label)]

    def table(self, period, dim, measures=None):
        """The breakdown of ``period`` by ``dim``: its listed rows and the total."""
        measures = tuple(measures or self.measures)
        rows = []
        if period not in self.dropped:
            rows = [
                Row(str(v), {m: self.cells[(m, period, (dim, v))] for m in measures})
                for v in self.listed.get((period, dim), ())
            ]
        total = Row(TOTAL, {m: self.cells[(m, period, TOTAL)] for m in measures})
        return Table(dim, measures, rows, total, broken_down=period not in self.dropped)

    # -- deciding what is hidden -------------------------------------------------------

    def _relations(self):
        """Each sum an attacker knows, as [((period, label), coefficient), ...] adding up
        to zero: the rows of each period and breakdown less their total; each period less
        the periods it is made of."""
        found = []
        for p in self.periods:
            for dim, values in self.dims.items():
                found.append([((p, (dim, v)), 1) for v in values] + [((p, TOTAL), -1)])
        for p, children in self.periods.items():
            if children:
                for label in self.labels:
                    found.append([((p, label), 1)] + [((c, label), -1) for c in children])
        return found

    def protect(self):
        """Hide what the rules hide, then what would give a hidden figure away."""
        first = self.counts[0]
        self.dropped = {p for p, n in self.population.items() if is_small(n)}
        self.dropped |= {p for p, broken_down in self.issued.items() if not broken_down}
        # What was issued stays as issued: a shown figure is known, a hidden one hidden.
        self.known |= {key for key in self.fixed if self.cells[key].shown}
        for p in self.periods:
            if p in self.dropped:
                continue
            for dim, values in self.dims.items():
                listed = set(self.listed.get((p, dim), ()))
                for v in values:
                    if v not in listed:
                        # No row: the reader knows the figure is nothing.
                        self.known.update((m, p, (dim, v)) for m in self.measures)
        for measure in self.counts:
            for _key, cell in self.cells_of(measure, new=True):
                if is_small(cell.value):
                    cell.hidden = SMALL
        for (p, label), reason in self.extra.items():
            if (first, p, label) not in self.fixed:
                cell = self.cells[(first, p, label)]
                cell.hidden = cell.hidden or reason
        for p in self.dropped - set(self.issued):
            for label in self.labels[1:]:
                for measure in self.measures:
                    cell = self.cells[(measure, p, label)]
                    cell.hidden = cell.hidden or SMALL
        for (p, label), cell in self.cells_of(first, new=True):
            for twin in self.twins:
                cell.hidden = cell.hidden or self.cells[(twin, p, label)].hidden
        for measure in self.counts:
            if measure in self.twins:
                for (p, label), cell in self.cells_of(measure, new=True):
                    cell.hidden = cell.hidden or self.cells[(first, p, label)].hidden
            else:
                self._complete(measure)
        for measure in self.amounts:
            for (p, label), cell in self.cells_of(measure, new=True):
                if (measure, p, label) in self.known:
                    cell.hidden = None
                    continue
                count = self.cells[(first, p, label)]
                largest = self.largest.get((measure, p, label), 0)
                if not count.shown:
                    cell.hidden = cell.hidden or count.hidden
                elif cell.value and abs(largest) * 2 > abs(cell.value):
                    cell.hidden = cell.hidden or DOMINANT
            self._complete(measure)
            for _key, cell in self.cells_of(measure, new=True):
                cell.value = round_amount(cell.value)
        return self

    def cells_of(self, measure, new=False):
        """((period, label), cell) of every figure of ``measure``; with ``new``, only of
        those not issued before."""
        for p in self.periods:
            for label in self.labels:
                if not (new and (measure, p, label) in self.fixed):
                    yield (p, label), self.cells[(measure, p, label)]

    def _complete(self, measure):
        """Hide further figures of ``measure`` until no hidden one other than nothing can
        be worked out from the shown ones."""
        exposed = set()
        while True:
            bare = [
                key
                for key in self._determined(measure)
                if self.cells[(measure, *key)].value and key not in exposed
            ]
            if not bare:
                return
            touched = set()
            for key in bare:
                if touched & self._neighbours(key):
                    continue  # a figure hidden beside it this round may do; check again
                other = self._complement(measure, key)
                if other is not None:
                    self.cells[(measure, *other)].hidden = SECONDARY
                    touched.add(other)
                elif touched:
                    continue  # what was hidden this round may have covered it: check again
                elif key[0] in self.dropped or (measure, *key) in self.fixed:
                    # Not listed anyway; or issued hidden, and nothing decided now beside
                    # it can be hidden: what gives it away was issued already.
                    exposed.add(key)
                else:
                    # Every figure around it is hidden or published to the cent: the
                    # account gives it away, so hiding it would only pretend.
                    self.cells[(measure, *key)].hidden = None
                    self.known.add((measure, *key))
                    touched.add(key)

    def _neighbours(self, key):
        return {k for r in self.sums_of.get(key, ()) for k, _c in self.relations[r]}

    def _determined(self, measure):
        """The hidden (period, label)s of ``measure`` whose value the shown figures and the
        sums determine: exact elimination over the hidden figures, in reduced row echelon
        form; a hidden figure is determined when some row holds it alone."""
        hidden = [key for key, cell in self.cells_of(measure) if not cell.shown]
        index = {key: i for i, key in enumerate(hidden)}
        pivots = {}
        for relation in self.relations:
            row = {index[k]: Fraction(c) for k, c in relation if k in index}
            for col in [c for c in row if c in pivots]:
                factor = row.get(col)
                if factor:
                    for c, v in pivots[col].items():
                        row[c] = row.get(c, 0) - factor * v
            row = {c: v for c, v in row.items() if v}
            if not row:
                continue
            col = min(row)
            lead = row[col]
            row = {c: v / lead for c, v in row.items()}
            for prow in pivots.values():
                factor = prow.get(col)
                if factor:
                    for c, v in row.items():
                        prow[c] = prow.get(c, 0) - factor * v
                    for c in [c for c, v in prow.items() if not v]:
                        del prow[c]
            pivots[col] = row
        return [hidden[col] for col, row in sorted(pivots.items()) if len(row) == 1]

    def _complement(self, measure, key):
        """The shown figure to hide beside ``key``: from the sums that hold it, or failing
        that from the sums of the hidden figures around it. A figure that is not nothing
        first (hiding a nothing protects little), then one that would not be alone in its
        other sums, a row before a total, the smallest; None when there is none."""
        seen_relations, seen = set(), {key}
        frontier = [key]
        order = {p: i for i, p in enumerate(self.periods)}
        while frontier:
            relations = {r for k in frontier for r in self.sums_of.get(k, ())} - seen_relations
            seen_relations |= relations
            candidates, frontier = [], []
            for r in sorted(relations):
                for k, _c in self.relations[r]:
                    if k in seen:
                        continue
                    seen.add(k)
                    cell = self.cells[(measure, *k)]
                    if not cell.shown:
                        frontier.append(k)
                    elif (measure, *k) not in self.known:
                        candidates.append(k)
            # Nothing hidden beside what is alone in a sum would stay nothing hidden.
            candidates = [
                k
                for k in candidates
                if self.cells[(measure, *k)].value or not self._alone(measure, k)
            ]
            if candidates:
                return min(
                    candidates,
                    key=lambda k: (
                        self.cells[(measure, *k)].value == 0,
                        self._alone(measure, k),
                        k[1] == TOTAL,
                        abs(self.cells[(measure, *k)].value),
                        order[k[0]],
                        self.labels.index(k[1]),
                    ),
                )
        return None

    def _alone(self, measure, key):
        """In how many of its sums ``key`` would be the only hidden figure: each would
        need one more (a figure beside hidden ones closes a rectangle instead)."""
        return sum(
            1
            for r in self.sums_of.get(key, ())
            if all(k == key or self.cells[(measure, *k)].shown for k, _c in self.relations[r])
        )


def breakdown(dimension, groups, counts=("grants", "defenders", "dependants"), amounts=("amount",)):
    """One suppressed Table standing alone, from ``groups``: label -> {measure: value, ...,
    "largest": {amount measure: the largest single grant's part of it}} (for the dominance
    rule). The total row sums the groups, except for measures given in
    ``groups["__total__"]``. When the first count's total is under 5, every row is hidden.
    Donor reports do not use it: they take their tables from a :class:`Grid` of the year."""
    groups = dict(groups)
    given_total = groups.pop("__total__", {})
    measures = tuple(counts) + tuple(amounts)
    labels = [str(label) for label in groups]
    twins = [m for m in counts[1:] if m == "defenders"]
    grid = Grid({"p": ()}, {dimension: labels}, counts, amounts, twins=twins)
    for label, values in groups.items():
        grid.put("p", (dimension, str(label)), values, values.get("largest"))
    grid.put(
        "p",
        TOTAL,
        {
            m: given_total.get(m, sum((v.get(m, 0) for v in groups.values()), start=0))
            for m in measures
        },
    )
    grid.listed[("p", dimension)] = labels
    grid.population["p"] = grid.cell(counts[0], "p").value
    grid.protect()
    table = grid.table("p", dimension)
    if not table.broken_down:
        # Alone, the rows stay listed, and nothing of a table of fewer than 5 is shown.
        table.rows = [
            Row(label, {m: grid.cells[(m, "p", (dimension, label))] for m in measures})
            for label in labels
        ]
        for cell in table.total.cells.values():
            cell.hidden = cell.hidden or SECONDARY
    return table


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


def csv_safe(value):
    """A CSV cell a spreadsheet will not run: text starting with =, +, -, @, a tab or a
    carriage return gets a leading apostrophe; numbers stay numbers."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not _NUMBER.match(text):
        return "'" + text
    return text
