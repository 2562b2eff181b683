"""The grid on which what donor reports hide is decided (see ``anonymise`` for the rules):
every figure of one kind of table over a calendar year's periods, the sums that tie them,
and the exact check that no hidden figure can be worked out from those shown.
"""

from decimal import Decimal
from fractions import Fraction

from .anonymise import (
    DOMINANT,
    GROUP,
    ROLLUP,
    SECONDARY,
    SMALL,
    TOTAL,
    Cell,
    Row,
    Table,
    is_small,
    mostly_hidden,
    round_amount,
)


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
    shown would stand in for the other. ``attributes`` are counts that describe the people
    of the first count (their dependants): hidden wherever it is, a zero included, since
    shown beside a group too small to show they would tell something of its few people
    ("none of them has dependants", "they have 5 between them"). Fill it with :meth:`put`,
    say which rows each period lists (:attr:`listed`) and how many grants it concerns
    (:attr:`population`), then :meth:`protect`.

    Figures of a coarser level, for tables rolled up when most of their rows would be
    hidden: ``rollups`` maps a coarser breakdown to the finer one it sums and each finer
    value's coarser value (a category to its group, a region to its area), and
    ``summaries`` names periods shown only by their total as a row of their parent's table
    (half-years). Such a figure is hidden unless shown by :meth:`_reveal`, after
    everything else is decided: shown only where it is 5 or more and, beside every figure
    shown, it gives no hidden one away. So a rolled-up figure never hides another, and
    never tells what another hides.
    """

    def __init__(
        self,
        periods,
        dims,
        counts,
        amounts=(),
        known_totals=(),
        twins=(),
        attributes=(),
        rollups=None,
        summaries=(),
    ):
        self.periods = {code: tuple(children) for code, children in periods.items()}
        self.dims = {dim: tuple(values) for dim, values in dims.items()}
        self.rollups = {
            coarse: (fine, dict(parents)) for coarse, (fine, parents) in (rollups or {}).items()
        }
        self.summaries = {p for p in summaries if p in self.periods}
        self.counts, self.amounts = tuple(counts), tuple(amounts)
        self.twins = tuple(twins)
        self.attributes = tuple(attributes)
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
        #: (period, label) of every figure of a coarser level: hidden unless revealed.
        self.rolled = {
            (p, label)
            for p in self.periods
            for label in self.labels
            if p in self.summaries or (label != TOTAL and label[0] in self.rollups)
        }
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
        given = set()
        for measure, label, value, hidden in issued["cells"]:
            key = (measure, period, TOTAL if label == TOTAL else tuple(label))
            if key in self.cells:
                self.cells[key] = Cell(Decimal(value) if measure in self.amounts else value, hidden)
                given.add(key)
        for p, label in self.rolled:
            # A coarser figure an earlier report did not decide was never shown.
            for measure in self.measures:
                if p == period and (measure, p, label) not in given:
                    self.cells[(measure, p, label)].hidden = ROLLUP
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
        for p in self.periods:
            for coarse, (fine, parents) in self.rollups.items():
                for value in self.dims[coarse]:
                    parts = [v for v in self.dims[fine] if parents.get(v) == value]
                    found.append(
                        [((p, (coarse, value)), 1)] + [((p, (fine, v)), -1) for v in parts]
                    )
        return found

    def protect(self):
        """Hide what the rules hide, then what would give a hidden figure away."""
        first = self.counts[0]
        self.dropped = {p for p, n in self.population.items() if is_small(n)}
        self.dropped |= {p for p, broken_down in self.issued.items() if not broken_down}
        # What was issued stays as issued: a shown figure is known, a hidden one hidden.
        self.known |= {key for key in self.fixed if self.cells[key].shown}
        for p in self.periods:
            for coarse, (fine, parents) in self.rollups.items():
                if (p, fine) in self.listed and (p, coarse) not in self.listed:
                    self.listed[(p, coarse)] = sorted(
                        {parents[v] for v in self.listed[(p, fine)] if v in parents}
                    )
        for p, label in self.rolled:
            for measure in self.measures:
                if (measure, p, label) not in self.fixed:
                    self.cells[(measure, p, label)].hidden = ROLLUP
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
                continue
            if measure in self.attributes:
                for (p, label), cell in self.cells_of(measure, new=True):
                    if not self.cells[(first, p, label)].shown:
                        # Said the same whatever it is: "fewer than 5" for 1 to 4 beside
                        # "hidden" for none would tell which small groups have dependants.
                        cell.hidden = GROUP
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
        self._reveal()
        for measure in self.amounts:
            for _key, cell in self.cells_of(measure, new=True):
                cell.value = round_amount(cell.value)
        return self

    def _reveal(self):
        """Show the coarser figures decided now that can be shown: of a period broken
        down (a half-year's total whatever), each count where it is 5 or more and, shown
        beside every figure shown already, no hidden figure but nothing can be worked out;
        its amount where its count shows, no grant makes more than half of it, and it gives
        nothing away either. One at a time, in order, so the outcome is always the same."""
        first = self.counts[0]
        order = {p: i for i, p in enumerate(self.periods)}
        keys = sorted(
            (
                key
                for key in self.rolled
                if (first, *key) not in self.fixed
                and (key[1] == TOTAL or key[0] not in self.summaries)
                and (key[1] == TOTAL or key[0] not in self.dropped)
                and (key[1] == TOTAL or key[1][1] in self.listed.get((key[0], key[1][0]), ()))
                and (key[1] == TOTAL or self.mostly_hidden(key[0], self.rollups[key[1][0]][0]))
            ),
            key=lambda k: (order[k[0]], self.labels.index(k[1])),
        )
        if not keys:
            return
        spans = {m: _Span(self, m) for m in self.measures}
        for p, label in keys:
            counts = [first, *self.twins]
            if self.extra.get((p, label)) or any(
                is_small(self.cells[(m, p, label)].value) for m in counts
            ):
                continue
            if not self._try_showing(counts, p, label, spans):
                continue
            for measure in self.counts:
                if measure not in counts and not is_small(self.cells[(measure, p, label)].value):
                    self._try_showing([measure], p, label, spans)
            for measure in self.amounts:
                cell = self.cells[(measure, p, label)]
                largest = self.largest.get((measure, p, label), 0)
                if not (cell.value and abs(largest) * 2 > abs(cell.value)):
                    self._try_showing([measure], p, label, spans)

    def mostly_hidden(self, period, dim):
        """Whether most rows of the breakdown of ``period`` by ``dim`` hide their count:
        then its coarser level is worth showing (and only then: what is shown constrains
        what later periods may show)."""
        first = self.counts[0]
        rows = self.listed.get((period, dim), ())
        return mostly_hidden([self.cells[(first, period, (dim, v))] for v in rows])

    def _try_showing(self, measures, p, label, spans):
        """Show the figures of ``measures`` at (p, label) unless that lets a hidden figure
        be worked out that the rules hide (see :meth:`_secret`); True when shown."""
        key = (p, label)
        undo = []
        for measure in measures:
            if self.cells[(measure, *key)].shown:
                continue
            found, back = spans[measure].reveal(key)
            undo.append((measure, back))
            if any(self._secret(measure, k) for k in found if k != key):
                for m, b in reversed(undo):
                    spans[m].restore(b)
                return False
        for measure in measures:
            self.cells[(measure, *key)].hidden = None
        return True

    def _secret(self, measure, key):
        """Whether the hidden figure ``key`` of ``measure`` must not be worked out: every
        figure of the finer levels but nothing (of the people's attributes, nothing too), and
        a coarser one the rules would hide for itself."""
        if not self.cells[(measure, *key)].value and measure not in self.attributes:
            return False
        return key not in self.rolled or self._rolled_secret(measure, key)

    def _rolled_secret(self, measure, key):
        """Whether a coarser figure is one the rules hide for itself, whatever sums give:
        a count under 5 (or one whose twin or first count is), a count with 1 to 4 of its
        grants not listed in the CSV, an amount or an attribute of the people whose count is
        such, or an amount mostly one grant's. A coarser figure of 5 or more, by contrast,
        is only a sum."""
        first = self.counts[0]
        counts = (first, *self.twins)
        if measure in self.counts and is_small(self.cells[(measure, *key)].value):
            return True
        if measure in counts or measure in self.amounts or measure in self.attributes:
            if self.extra.get(key) or any(is_small(self.cells[(m, *key)].value) for m in counts):
                return True
        if measure in self.amounts:
            value = self.cells[(measure, *key)].value
            largest = self.largest.get((measure, *key), 0)
            return bool(value) and abs(largest) * 2 > abs(value)
        return False

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
                if (self.cells[(measure, *key)].value or measure in self.attributes)
                and key not in exposed
                and key not in self.rolled
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
        span = _Span(self, measure)
        return [span.keys[col] for col, row in sorted(span.pivots.items()) if len(row) == 1]

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
                    if k in seen or k in self.rolled:
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


def _divided(value, lead):
    """``value / lead``, exactly: a whole number while the division leaves one (as it
    mostly does, the sums' coefficients being 1 and -1), a fraction otherwise. Whole
    numbers add and multiply many times faster than fractions."""
    if lead == 1:
        return value
    if lead == -1:
        return -value
    quotient = Fraction(value) / lead
    return quotient.numerator if quotient.denominator == 1 else quotient


class _Span:
    """The sums over the hidden figures of one measure in reduced row echelon form, kept
    as figures are shown one by one: showing one adds a row, and the figures that the
    shown ones then determine are those whose rows are left with them alone. Much cheaper
    than working everything out again for each figure tried."""

    def __init__(self, grid, measure):
        hidden = [key for key, cell in grid.cells_of(measure) if not cell.shown]
        self.keys = hidden
        self.index = {key: i for i, key in enumerate(hidden)}
        self.pivots = {}
        for relation in grid.relations:
            row = {self.index[k]: c for k, c in relation if k in self.index}
            self._add(row)

    def _reduce(self, row):
        for col in [c for c in row if c in self.pivots]:
            factor = row.get(col)
            if factor:
                for c, v in self.pivots[col].items():
                    row[c] = row.get(c, 0) - factor * v
        return {c: v for c, v in row.items() if v}

    def _add(self, row, changed=None):
        """Add ``row`` (reduced first); returns the pivot it takes, or None. ``changed``
        collects each pivot row as it was before it changed."""
        row = self._reduce(row)
        if not row:
            return None
        col = min(row)
        lead = row[col]
        row = {c: _divided(v, lead) for c, v in row.items()}
        for pcol, prow in self.pivots.items():
            factor = prow.get(col)
            if factor:
                if changed is not None and pcol not in changed:
                    changed[pcol] = dict(prow)
                for c, v in row.items():
                    prow[c] = prow.get(c, 0) - factor * v
                for c in [c for c, v in prow.items() if not v]:
                    del prow[c]
        self.pivots[col] = row
        return col

    def reveal(self, key):
        """Show ``key``: the hidden figures it lets be worked out that could not be
        before, and what :meth:`restore` needs to take it back."""
        changed = {}
        col = self._add({self.index[key]: 1}, changed)
        if col is None:
            return [], (None, changed)
        found = [self.keys[c] for c in [col, *changed] if len(self.pivots[c]) == 1]
        return found, (col, changed)

    def restore(self, back):
        col, changed = back
        if col is not None:
            del self.pivots[col]
        self.pivots.update(changed)


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
    attributes = [m for m in counts[1:] if m == "dependants"]
    grid = Grid({"p": ()}, {dimension: labels}, counts, amounts, twins=twins, attributes=attributes)
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
