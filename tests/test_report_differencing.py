"""Hidden figures stay hidden across every report a donor can download: an attacker who
takes a year's report, its four quarters' and its twelve months' (the PDF's tables and the
CSV), and subtracts every way the sums allow, recovers nothing that any of them hides."""

import csv
import io
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from hrdfund.cases.models import Gender
from hrdfund.core import geo
from hrdfund.core.extensions import db
from hrdfund.core.support import CATEGORY_LABELS, Category
from hrdfund.pools import services as pools
from hrdfund.reports import anonymise
from hrdfund.reports.csv_export import render_csv
from hrdfund.reports.data import build_report
from hrdfund.reports.grid import Grid
from hrdfund.reports.pdf import render_pdf
from hrdfund.reports.periods import parse_period
from hrdfund.reports.rollup import AREAS, CATEGORY_GROUPS
from tests.conftest import MoneyWorld, agree_to_listing, pay, signed_in

YEAR = 2026
#: The reports are downloaded once the year has ended: before, they say nothing about people.
AFTER = date(YEAR + 1, 1, 5)
DIMENSIONS = ("category", "region", "gender")
MEASURES = ("grants", "defenders", "dependants", "amount")
TOTAL = "total"

#: (month, category, country, how many grants, how many of them not listed in the CSV).
#: Built so that the old per-report rules leak: January's 2 legal grants are the first
#: quarter's 12 less February's and March's 5 each; April's 1 legal grant is the year's 13
#: less the first quarter's; July's 3 grants are the year less the other months, one of
#: which hid only as a complement in the year's table and shows in its own report; and
#: February's medical row counts 5, the CSV lists 4, so the one not listed shows.
GRANTS = [
    (1, Category.LEGAL, "KE", 2, 0),
    (1, Category.MEDICAL, "PE", 5, 0),
    (2, Category.LEGAL, "KE", 5, 0),
    (2, Category.MEDICAL, "UG", 5, 1),
    (3, Category.LEGAL, "CO", 5, 0),
    (4, Category.LEGAL, "KE", 1, 0),
    (4, Category.MEDICAL, "PE", 5, 0),
    (7, Category.RELOCATION, "UG", 3, 1),
]


#: The levels a table of who was paid may be read at, the coarser summing the finer.
LEVELS = ("category", "category_group", "region", "area", "gender")
COARSER = {"category_group": ("category", CATEGORY_GROUPS), "area": ("region", AREAS)}
HALVES = (f"{YEAR}-H1", f"{YEAR}-H2")


def _periods():
    codes = [str(YEAR)] + [f"{YEAR}-Q{q}" for q in range(1, 5)]
    return codes + [f"{YEAR}-{m:02d}" for m in range(1, 13)]


def _children():
    tree = {str(YEAR): [f"{YEAR}-Q{q}" for q in range(1, 5)]}
    tree[HALVES[0]] = [f"{YEAR}-Q1", f"{YEAR}-Q2"]
    tree[HALVES[1]] = [f"{YEAR}-Q3", f"{YEAR}-Q4"]
    for q in range(1, 5):
        tree[f"{YEAR}-Q{q}"] = [f"{YEAR}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]
    return tree


def _within(month):
    half = HALVES[0] if month <= 6 else HALVES[1]
    return [f"{YEAR}-{month:02d}", f"{YEAR}-Q{(month - 1) // 3 + 1}", half, str(YEAR)]


def _labels_of(category, region, gender):
    """Every row a grant counts in, at every level a table may be read at."""
    return [
        TOTAL,
        ("category", category),
        ("category_group", CATEGORY_GROUPS[category]),
        ("region", region),
        ("area", AREAS[region]),
        ("gender", gender),
    ]


@pytest.fixture
def year_world(fund, make_user, make_donor, clock):
    """31 grants paid from the EUR pool over 2026 as GRANTS says, each to its own
    defender, each approved and paid on its day; the truth of every figure, counted here
    from the list, beside it."""
    world = MoneyWorld(fund, make_user, make_donor)
    pools.record_contribution(world.eur, world.m1, Decimal("100000"), "EUR", date(YEAR, 1, 2))
    truth = defaultdict(int)
    n = 0
    for month, category, country, count, unlisted in GRANTS:
        for i in range(count):
            n += 1
            amount = Decimal(400 + 37 * n)
            clock.at(datetime(YEAR, month, 10 + i, 9))
            grant = world.grant(str(amount), category=category, name=f"Defender {n}")
            case = grant.application
            case.country, case.region = country, geo.region_of(country)
            case.gender = Gender.WOMAN if n % 2 else Gender.MAN
            case.dependants_count = n % 3
            if i >= unlisted:
                agree_to_listing(case)
            db.session.commit()
            pay(world, grant, str(amount), instalment=None, paid_on=date(YEAR, month, 10 + i))
            labels = _labels_of(category.value, case.region, case.gender.value)
            for period in _within(month):
                for label in labels:
                    truth[("grants", period, label)] += 1
                    truth[("defenders", period, label)] += 1
                    truth[("dependants", period, label)] += n % 3
                    truth[("amount", period, label)] += amount
                truth[("unlisted", period, TOTAL)] += i < unlisted
    clock.stop()
    world.truth = truth
    return world


class Attacker:
    """What a donor holds after downloading every report of the year, and every
    subtraction the sums allow, repeated until nothing new comes out."""

    def __init__(self):
        self.known = {}  # (measure, period, label) -> (value, error bound)
        self.hidden = set()  # figures some report showed as hidden
        self.relations = []
        self.lines = {}  # period -> CSV lines
        self.not_listed = {}  # period -> the CSV's count of grants not listed

    def learn(self, key, value, error=0):
        if key in self.known:
            old, bound = self.known[key]
            assert abs(old - Fraction(value)) <= bound + error, f"two reports disagree on {key}"
        else:
            self.known[key] = (Fraction(value), Fraction(error))

    def read(self, period, report, csv_text):
        """A report's tables, each at the level it is shown at (rolled up or not)."""
        self.values = getattr(self, "values", defaultdict(set))
        self._broken_down = getattr(self, "_broken_down", {})
        self._broken_down[period] = {}
        self.levels_read = getattr(self, "levels_read", defaultdict(set))
        for name in DIMENSIONS:
            table = report["breakdowns"][name]
            level = table.dimension
            self.levels_read[name].add(level)
            self._broken_down[period][level] = getattr(table, "broken_down", True)
            for row in table.rows:
                self.values[level].add(row.label)
            for row in [*table.rows, table.total]:
                label = TOTAL if row.label == TOTAL else (level, row.label)
                self._cells(period, label, row.cells)
        months = report["breakdowns"]["month"]
        self.levels_read["month"].add(months.dimension)
        for row in months.rows:
            self._cells(row.label, TOTAL, row.cells)
        listed = {row.label for row in months.rows}
        own = parse_period(period).kind
        if months.dimension in ("month", "quarter", "half") and months.dimension != own:
            parts = {
                "month": [m.strftime("%Y-%m") for m in parse_period(period).months()],
                "quarter": _children().get(period, []),
                "half": list(HALVES),
            }[months.dimension]
            for code in parts:
                if code not in listed:  # no row: nothing was paid then
                    for measure in MEASURES:
                        self.learn((measure, code, TOTAL), 0)
        # To the cent: the period's payments less its reversals, as the figures about
        # people count them (the account's, but for what was recorded late).
        self.learn(("amount", period, TOTAL), report["counted"]["counted"])
        rows = list(csv.DictReader(io.StringIO(csv_text)))
        closing = ("Not listed", "Total", "Defenders also supported by other funds")
        self.lines[period] = [r for r in rows if r["Grant code"] not in closing]
        count = next(r for r in rows if r["Grant code"] == "Not listed")["Grants"]
        self.not_listed[period] = int(count) if count.isdigit() else None

    def _cells(self, period, label, cells):
        for measure in MEASURES:
            cell = cells[measure]
            if cell.shown:
                self.learn(
                    (measure, period, label), cell.value, Fraction(1, 2) * (measure == "amount")
                )
            else:
                self.hidden.add((measure, period, label))

    def close(self):
        """Rows a report lists no row for are nothing, where it is broken down at all;
        then the sums: rows to totals in each breakdown, quarters to the year, months to
        the quarter and to the year."""
        for period in _periods():
            for name in LEVELS:
                if not self._broken_down.get(period, {}).get(name):
                    continue  # not broken down, or not read at that level
                for value in self.values[name]:
                    for measure in MEASURES:
                        key = (measure, period, (name, value))
                        if key not in self.known and key not in self.hidden:
                            self.learn(key, 0)
        # Every value a level can take, whether a report listed it or not: a coarser row
        # is the sum of its finer ones.
        for coarse, (fine, parents) in COARSER.items():
            self.values[fine] |= {v for v, p in parents.items() if p in self.values[coarse]}
            self.values[coarse] |= {parents[v] for v in self.values[fine] if v in parents}
        labels = [TOTAL] + [(n, v) for n in LEVELS for v in sorted(self.values[n])]
        periods = _periods() + list(HALVES)
        for measure in MEASURES:
            for period in periods:
                for name in LEVELS:
                    self.relations.append(
                        [((measure, period, TOTAL), -1)]
                        + [((measure, period, (name, v)), 1) for v in self.values[name]]
                    )
                for coarse, (fine, parents) in COARSER.items():
                    for value in self.values[coarse]:
                        self.relations.append(
                            [((measure, period, (coarse, value)), -1)]
                            + [
                                ((measure, period, (fine, v)), 1)
                                for v in self.values[fine]
                                if parents.get(v) == value
                            ]
                        )
            for parent, children in _children().items():
                for label in labels:
                    self.relations.append(
                        [((measure, parent, label), -1)]
                        + [((measure, c, label), 1) for c in children]
                    )
            for label in labels:
                self.relations.append(
                    [((measure, str(YEAR), label), -1)]
                    + [((measure, f"{YEAR}-{m:02d}", label), 1) for m in range(1, 13)]
                )
        # Where each defender had one grant, as here, a count of defenders is a count of
        # grants: a reader takes either for the other.
        for period in periods:
            for label in labels:
                self.relations.append(
                    [(("grants", period, label), 1), (("defenders", period, label), -1)]
                )

    def subtract(self):
        """Every sum with one figure unknown gives it; again, until nothing new."""
        derived = set()
        progress = True
        while progress:
            progress = False
            for relation in self.relations:
                unknown = [(k, c) for k, c in relation if k not in self.known]
                if len(unknown) != 1:
                    continue
                key, coefficient = unknown[0]
                rest = sum(c * self.known[k][0] for k, c in relation if k != key)
                error = sum(self.known[k][1] for k, _c in relation if k != key)
                self.known[key] = (-rest / coefficient, error)
                derived.add(key)
                progress = True
        return derived


def _download_everything(world):
    attacker, reports = Attacker(), {}
    for code in _periods():
        report = build_report(world.eur, parse_period(code), today=AFTER)
        reports[code] = report
        attacker.read(code, report, render_csv(report))
    attacker.close()
    return attacker, reports


def test_no_report_gives_away_what_another_hides(year_world):
    truth = year_world.truth
    attacker, reports = _download_everything(year_world)
    # The attacker works: a quarter's payments forgotten come back from its months'.
    forgotten = ("amount", f"{YEAR}-Q2", TOTAL)
    del attacker.known[forgotten]
    derived = attacker.subtract()
    assert forgotten in derived
    derived.discard(forgotten)
    for key in derived:
        value, error = attacker.known[key]
        assert abs(value - Fraction(truth.get(key, 0))) <= error, f"wrong about {key}"
    hidden = {key for key in attacker.hidden if truth.get(key, 0)}
    assert len(hidden) >= 10, "the reports hide figures"
    # What a group of fewer than 5 defenders has is not told beside it: their dependants
    # are hidden with them.
    for measure, period, label in attacker.hidden:
        if measure == "defenders":
            assert ("dependants", period, label) in attacker.hidden, (period, label)
    # Whatever the attacker works out, no report showed (or it would be known already):
    # a figure that is not nothing is a figure recovered, of the levels reports are
    # broken down by; of a coarser level (a group, an area, a half-year), one a report
    # showed as hidden. (Any other coarser figure is a sum of figures no report hides.)
    recovered = sorted((key for key in derived if _secret(key, truth, attacker)), key=str)
    assert not recovered, f"hidden figures recovered by subtraction: {recovered}"
    # The CSV's "not listed" count, where it is not shown, is not the total less the lines.
    for period in _periods():
        unlisted = truth.get(("unlisted", period, TOTAL), 0)
        if attacker.not_listed[period] is None and ("grants", period, TOTAL) in attacker.known:
            lines = sum(
                1 for line in attacker.lines[period] if Decimal(line["Paid in the period"]) > 0
            )
            guess = attacker.known[("grants", period, TOTAL)][0] - lines
            assert not unlisted or guess != unlisted, f"{period}: the total less the lines"
        if attacker.not_listed[period] is not None:
            assert attacker.not_listed[period] == 0 or attacker.not_listed[period] >= 5
    # Nor is the line of those not listed what 1 to 4 of them were paid: once a quarter
    # or one of its months has so few, none of them issued from then on lists a line (a
    # total less its lines, a quarter's lines less its other months', its number of
    # grants less their codes, would give each one's part there), nor does the year.
    tree = _children()
    for period in _periods():
        if not attacker.lines[period]:
            continue
        if period == str(YEAR):
            together = _periods()
        else:
            quarter = next(q for q in tree if "-Q" in q and period in [q, *tree[q]])
            together = [quarter, *tree[quarter]]
        for code in together:
            if parse_period(code).end > parse_period(period).end:
                continue  # issued after it: it had its lines by then
            few = truth.get(("unlisted", code, TOTAL), 0)
            assert few == 0 or few >= 5, f"{period} lists lines beside {few} in {code}"
    assert attacker.lines[f"{YEAR}-Q2"] and attacker.lines[f"{YEAR}-01"]
    assert not attacker.lines[f"{YEAR}-03"] and not attacker.lines[f"{YEAR}-Q1"]
    # A shown category or region less the CSV lines of that value is what the grants not
    # listed add up to there: never a group of 1 to 4.
    places = {geo.country_name(c): geo.region_of(c) for _m, _c, c, _n, _u in GRANTS}
    for period in _periods():
        for name, of_line in (
            ("category", lambda line: _category_of(line["Kind of support"])),
            ("region", lambda line: places.get(line["Place"], line["Place"])),
        ):
            if any(of_line(line) == anonymise.NOT_SHOWN for line in attacker.lines[period]):
                continue
            for value in attacker.values[name]:
                key = ("grants", period, (name, value))
                if key not in attacker.known:
                    continue
                lines = sum(1 for line in attacker.lines[period] if of_line(line) == value)
                others = attacker.known[key][0] - lines
                assert others == 0 or others >= 5, f"{key}: {others} grants not listed"


def _secret(key, truth, attacker):
    """Whether ``key``, worked out by the attacker, is a figure a report hides."""
    measure, period, label = key
    # Nothing is no secret, but for the dependants of defenders a report hides: "none".
    if not truth.get(key, 0) and not (
        measure == "dependants" and ("defenders", period, label) in attacker.hidden
    ):
        return False
    coarser = period in HALVES or (label != TOTAL and label[0] in COARSER)
    return not coarser or key in attacker.hidden


def _category_of(label):
    """The category a CSV line names in words (the breakdowns speak in codes)."""
    words = {str(CATEGORY_LABELS[c]): c.value for c in Category}
    return words.get(label, anonymise.NOT_SHOWN if label == "Not shown" else label)


def test_the_pdf_prints_what_the_tables_hide(year_world):
    """The PDF renders the tables the attacker read: a hidden figure reads "hidden" or
    "fewer than 5", and a month too small to break down says so."""
    report = build_report(year_world.eur, parse_period(f"{YEAR}-07"), today=AFTER)
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(render_pdf(report))).pages)
    text = " ".join(text.split())
    assert "no breakdown" in text and "fewer than 5" in text
    assert not report["breakdowns"]["category"].rows
    year = build_report(year_world.eur, parse_period(str(YEAR)), today=AFTER)
    text = " ".join(
        " ".join(
            page.extract_text() for page in PdfReader(io.BytesIO(render_pdf(year))).pages
        ).split()
    )
    assert "hidden" in text


# -- the grid alone, on random figures ------------------------------------------------

VALUES = ("a", "b", "c", "d")


@st.composite
def nested_figures(draw):
    """A year of 2 to 4 quarters of 2 to 3 months, and grants each paid in one month,
    with a value of each of two dimensions, an amount and whether the CSV lists it."""
    quarters = draw(st.integers(2, 4))
    months = draw(st.integers(2, 3))
    tree = {"Y": [f"Q{q}" for q in range(quarters)]}
    for q in range(quarters):
        tree[f"Q{q}"] = [f"Q{q}M{m}" for m in range(months)]
    leaves = [m for q in range(quarters) for m in tree[f"Q{q}"]]
    grants = draw(
        st.lists(
            st.tuples(
                st.sampled_from(leaves),
                st.sampled_from(VALUES[: draw(st.integers(2, 4))]),
                st.sampled_from(VALUES[:2]),
                st.integers(1, 1000),
                st.booleans(),
            ),
            max_size=60,
        )
    )
    return tree, grants


def _truth(figures):
    """The periods of the drawn tree, each period's parent, and the truth of every figure
    with how many of its grants the CSV does not list."""
    tree, grants = figures
    periods = {p: tuple(c) for p, c in tree.items()}
    parent = {c: p for p, children in tree.items() for c in children}
    for child in parent:
        periods.setdefault(child, ())
    truth = defaultdict(int)
    unlisted = defaultdict(int)
    for leaf, x, y, amount, listed in grants:
        period = leaf
        while period:
            for label in (TOTAL, ("x", x), ("y", y)):
                truth[("grants", period, label)] += 1
                truth[("amount", period, label)] += amount
                unlisted[(period, label)] += not listed
            period = parent.get(period)
    return periods, parent, truth, unlisted


def _grid(tree, periods, new, truth, unlisted, issued=None):
    """A grid over ``periods``, the figures of ``new`` put in from the truth and those of
    ``issued`` (code -> what an earlier grid issued) fixed, protected."""
    issued = issued or {}
    dims = {
        name: sorted({k[2][1] for k in truth if k[2] != TOTAL and k[2][0] == name})
        for name in ("x", "y")
    }
    grid = Grid(
        {p: tuple(c for c in tree.get(p, ()) if p in periods) for p in periods},
        dims,
        ("grants",),
        ("amount",),
        known_totals=("amount",),
    )
    for (measure, period, label), value in truth.items():
        if measure == "grants" and period in new:
            grid.put(period, label, {"grants": value, "amount": truth[("amount", period, label)]})
    for period in new:
        grid.population[period] = truth[("grants", period, TOTAL)]
        for name, values in dims.items():
            grid.listed[(period, name)] = [
                v for v in values if truth[("grants", period, (name, v))]
            ]
    for key, n in unlisted.items():
        if key[0] in new and anonymise.is_small(n) and key[1] != TOTAL and key[1][0] == "x":
            grid.extra[key] = anonymise.UNLISTED
    for period, figures in issued.items():
        grid.fix(period, figures)
    return grid.protect()


@settings(max_examples=150, deadline=None)
@given(figures=nested_figures())
def test_the_grid_leaves_nothing_hidden_to_subtraction(figures):
    """Counts and amounts over nested periods, with the totals of the amounts published
    elsewhere to the cent, some cells hidden for their grants not listed: a reader who
    subtracts along every sum works out no hidden figure but nothing."""
    tree = figures[0]
    periods, parent, truth, unlisted = _truth(figures)
    grid = _grid(tree, periods, set(periods), truth, unlisted)
    _subtract_everything(grid, tree, periods, parent, truth)


@settings(max_examples=150, deadline=None)
@given(figures=nested_figures())
def test_the_grid_issued_period_by_period_leaves_nothing_hidden_to_subtraction(figures):
    """The same figures issued as time goes: each month as it ends, a quarter with its
    last month, the year with its last quarter, each decided beside what the periods
    before it issued, which stays as it was. A reader who holds every issue and subtracts
    along every sum works out no hidden figure but nothing, and no issued figure changed."""
    tree = figures[0]
    periods, parent, truth, unlisted = _truth(figures)
    issued, batches = {}, []
    quarters = tree["Y"]
    for q, quarter in enumerate(quarters):
        for m, month in enumerate(tree[quarter]):
            last = m == len(tree[quarter]) - 1
            batches.append([month] + [quarter] * last + ["Y"] * (last and q == len(quarters) - 1))
    included = set()
    for batch in batches:
        included |= set(batch)
        grid = _grid(tree, included, set(batch), truth, unlisted, issued)
        for period, figures_issued in issued.items():
            assert grid.issued_figures(period) == figures_issued, f"{period} changed"
        for period in batch:
            issued[period] = grid.issued_figures(period)
    _subtract_everything(grid, tree, periods, parent, truth)


def _subtract_everything(grid, tree, periods, parent, truth):
    """Every subtraction the sums allow, over what ``grid`` shows: nothing hidden but a
    nothing (or a value a listed breakdown of one row says of all) comes out."""
    dims = grid.dims
    # A reader knows the values some listed row shows; of a breakdown with one value
    # only, every row is its period's total, which tells nothing about anyone.
    seen = {
        name: {
            v
            for (p, n), listed in grid.listed.items()
            if n == name and p not in grid.dropped
            for v in listed
        }
        for name in dims
    }
    dims = {name: sorted(values) for name, values in seen.items() if len(values) > 1}
    labels = [TOTAL] + [(n, v) for n, values in dims.items() for v in values]
    for measure in ("grants", "amount"):
        known = {}
        for period in periods:
            for label in labels:
                cell = grid.cell(measure, period, label)
                listed = label == TOTAL or label[1] in grid.listed.get((period, label[0]), ())
                if label != TOTAL and period in grid.dropped:
                    continue  # not broken down: no row is listed
                if not listed:
                    known[(period, label)] = 0
                elif cell.shown:
                    assert measure == "amount" or not anonymise.is_small(cell.value)
                    known[(period, label)] = truth[(measure, period, label)]
            if measure == "amount":  # the account
                known[(period, TOTAL)] = truth[(measure, period, TOTAL)]
        relations = []
        for period in periods:
            for name, values in dims.items():
                relations.append(
                    [((period, TOTAL), -1)] + [((period, (name, v)), 1) for v in values]
                )
        for up, children in tree.items():
            for label in labels:
                relations.append([((up, label), -1)] + [((c, label), 1) for c in children])
                if up == "Y":
                    months = [m for q in children for m in tree[q]]
                    relations.append([((up, label), -1)] + [((m, label), 1) for m in months])
        progress = True
        while progress:
            progress = False
            for relation in relations:
                unknown = [(k, c) for k, c in relation if k not in known]
                if len(unknown) == 1:
                    key, c = unknown[0]
                    known[key] = -sum(c2 * known[k] for k, c2 in relation if k != key) / c
                    progress = True
                    assert known[key] == truth[(measure, *key)]
                    assert known[key] == 0 or _said_of_all(grid, parent, *key), (
                        f"{measure} {key} recovered"
                    )


def _said_of_all(grid, parent, period, label):
    """Whether a period that holds ``period`` lists ``label`` as its only row: then all
    its grants have that value, and so do those of any part of it."""
    while period and label != TOTAL:
        if period not in grid.dropped and grid.listed[(period, label[0])] == [label[1]]:
            return True
        period = parent.get(period)
    return False


# -- defenders other funds supported too, across the year's periods ---------------------


def test_defenders_supported_elsewhere_cannot_be_worked_out_from_the_other_periods(
    year_world, make_fund
):
    """All seven of January's defenders and one of February's are linked to another fund
    by a referral accepted in their month. February's one hides as "fewer than 5" and the
    first quarter's eight hide with its number of defenders; but the year's eight less the
    other quarters' nothing would be the first quarter's, and that less January's seven and
    March's nothing February's one. Every period's line is decided with the sums that tie
    the periods, as the tables are, so no hidden count comes back by subtraction."""
    from hrdfund.grants.models import Grant
    from hrdfund.network.models import Referral, ReferralStatus

    other = make_fund("Sanctuary Fund Of Elsewhere")
    grants = db.session.scalars(
        sa.select(Grant).where(Grant.fund_id == year_world.fund.id).order_by(Grant.id)
    ).all()
    for n in (12, 28):  # the two defenders not listed agree: every total shows
        agree_to_listing(grants[n].application)
    linked = {n: datetime(YEAR, 1, 20, 9) for n in range(7)} | {7: datetime(YEAR, 2, 20, 9)}
    for n, when in linked.items():
        case = grants[n].application
        db.session.add(
            Referral(
                application_id=case.id,
                from_fund_id=case.fund_id,
                to_fund_id=other.id,
                category=Category.MEDICAL,
                amount=Decimal("100.00"),
                currency="EUR",
                answer_by=date(YEAR, 3, 1),
                status=ReferralStatus.ACCEPTED,
                created_by_id=year_world.m1.id,
                created_at=when,
                answered_at=when,
            )
        )
    db.session.commit()
    shown, truth = {}, {}
    for code in _periods():
        cell = build_report(year_world.eur, parse_period(code), today=AFTER)["other_funds"]
        truth[code] = cell.value
        if cell.shown:
            shown[code] = cell.value
    assert truth[f"{YEAR}-02"] == 1 and f"{YEAR}-02" not in shown
    # The donor subtracts every way the sums allow, until nothing new comes out.
    known, progress = dict(shown), True
    while progress:
        progress = False
        for parent, children in _children().items():
            unknown = [p for p in (parent, *children) if p not in known]
            if len(unknown) != 1:
                continue
            rest = sum(known[c] for c in children if c in known)
            known[unknown[0]] = rest if unknown[0] == parent else known.get(parent, 0) - rest
            progress = True
    recovered = {p: v for p, v in known.items() if p not in shown and v and v == truth[p]}
    assert not recovered, f"hidden counts recovered by subtraction: {recovered}"


# -- a small pool: tables rolled up a level ----------------------------------------------

#: 16 grants over a year, one or two a month (every quarter 4), 4 of each gender (one
#: not said): by category, region, gender, month and quarter every count is under 5, but
#: by group of categories (6, 5, 5), by area (6, 5, 5) and by half-year (8, 8) none is.
SMALL_POOL = [
    (1, Category.RELOCATION, "KE", Gender.WOMAN),
    (1, Category.LEGAL, "PE", Gender.MAN),
    (2, Category.MEDICAL, "IN", Gender.NON_BINARY),
    (3, Category.PHYSICAL_SECURITY, "NG", None),
    (4, Category.PRISON_VISITS, "MX", Gender.WOMAN),
    (4, Category.DEPENDANTS, "PH", Gender.MAN),
    (5, Category.RELOCATION, "KE", Gender.NON_BINARY),
    (6, Category.LEGAL, "PE", None),
    (7, Category.MEDICAL, "IN", Gender.WOMAN),
    (7, Category.PHYSICAL_SECURITY, "KE", Gender.MAN),
    (8, Category.PRISON_VISITS, "MX", Gender.NON_BINARY),
    (9, Category.DEPENDANTS, "IN", None),
    (10, Category.RELOCATION, "KE", Gender.WOMAN),
    (10, Category.LEGAL, "PE", Gender.MAN),
    (11, Category.MEDICAL, "PH", Gender.NON_BINARY),
    (12, Category.PHYSICAL_SECURITY, "NG", None),
]


@pytest.fixture
def small_world(fund, make_user, make_donor, clock):
    """The EUR pool paying SMALL_POOL's 16 grants in 2026, each to its own defender, none
    of them listed in the CSV; the truth of every figure beside it."""
    world = MoneyWorld(fund, make_user, make_donor)
    truth = defaultdict(int)
    for n, (month, category, country, gender) in enumerate(SMALL_POOL, start=1):
        amount = Decimal(500 + 23 * n)
        day = 5 + 10 * (n % 2)
        clock.at(datetime(YEAR, month, day, 9))
        grant = year_world_grant(world, amount, category, f"Small Pool Defender {n}")
        case = grant.application
        case.country, case.region = country, geo.region_of(country)
        case.gender, case.dependants_count = gender, 0
        db.session.commit()
        pay(world, grant, str(amount), instalment=None, paid_on=date(YEAR, month, day))
        said = gender.value if gender else "undisclosed"
        for period in _within(month):
            for label in _labels_of(category.value, case.region, said):
                truth[("grants", period, label)] += 1
                truth[("defenders", period, label)] += 1
                truth[("amount", period, label)] += amount
    clock.stop()
    world.truth = truth
    return world


def year_world_grant(world, amount, category, name):
    """An approved grant of ``amount`` from the EUR pool."""
    return world.grant(str(amount), category=category, name=name)


def _shows_a_count(table):
    return any(row.cells["grants"].shown for row in table.rows)


def test_a_pool_of_16_grants_in_a_year_shows_its_tables_rolled_up(small_world):
    """Every table of the year by category, region, gender and month would say "fewer
    than 5" or "hidden" on every row; rolled up, the groups of categories, the areas and
    the half-years show their counts, and the report says under each table what it stands
    for."""
    report = build_report(small_world.eur, parse_period(str(YEAR)), today=AFTER)
    tables = report["breakdowns"]
    assert tables["category"].dimension == "category_group"
    assert tables["category"].rolled_from == "category"
    assert tables["region"].dimension == "area"
    assert tables["month"].dimension == "half"
    truth = small_world.truth
    for name in ("category", "region", "month"):
        table = tables[name]
        assert _shows_a_count(table), name
        for row in table.rows:
            cell = row.cells["grants"]
            period = row.label if name == "month" else str(YEAR)
            label = TOTAL if name == "month" else (table.dimension, row.label)
            assert not cell.shown or cell.value == truth[("grants", period, label)]
    assert [r.cells["grants"].value for r in tables["month"].rows] == [8, 8]
    # Gender has no coarser level: it stays as it is, every count under 5.
    assert tables["gender"].dimension == "gender" and not _shows_a_count(tables["gender"])
    text = " ".join(
        " ".join(
            page.extract_text() for page in PdfReader(io.BytesIO(render_pdf(report))).pages
        ).split()
    )
    assert "Shown by half-year: by month, most counts would be fewer than 5 or hidden." in text
    assert "Shown by group of categories: by category" in text
    assert "Shown by area: by region" in text
    assert "First half of 2026" in text and "Legal support and justice" in text


def test_differencing_the_rolled_reports_recovers_no_hidden_count(small_world):
    """The year's tables rolled up, each quarter's and month's as they are: an attacker
    who holds every report of the year and subtracts along every sum (a group less its
    categories, an area less its regions, a half-year less its quarters, the year less a
    half-year) works out no figure any report hides."""
    truth = small_world.truth
    attacker, reports = _download_everything(small_world)
    assert reports[str(YEAR)]["breakdowns"]["month"].dimension == "half"
    derived = attacker.subtract()
    for key in derived:
        value, error = attacker.known[key]
        assert abs(value - Fraction(truth.get(key, 0))) <= error, f"wrong about {key}"
    recovered = sorted((key for key in derived if _secret(key, truth, attacker)), key=str)
    assert not recovered, f"hidden figures recovered by subtraction: {recovered}"
    # The coarser figures shown are safe beside the finer ones hidden in the same and the
    # other reports: each quarter hides its count, the half-years show theirs.
    for q in range(1, 5):
        assert ("grants", f"{YEAR}-Q{q}", TOTAL) not in attacker.known


# -- the grid's coarser figures, on random figures --------------------------------------

GROUP = {"a": "g", "b": "g", "c": "h", "d": "h"}


def _rolled_truth(figures):
    """:func:`_truth` with a half-year ("H", the first two quarters) and the groups of
    ``x`` as a coarser breakdown ``xg``."""
    tree, grants = figures
    periods, parent, truth, unlisted = _truth((tree, grants))
    tree = dict(tree)
    tree["H"] = tree["Y"][:2]
    for (measure, period, label), value in list(truth.items()):
        if label != TOTAL and label[0] == "x":
            truth[(measure, period, ("xg", GROUP[label[1]]))] += value
    for key, n in list(unlisted.items()):
        if key[1] != TOTAL and key[1][0] == "x":
            unlisted[(key[0], ("xg", GROUP[key[1][1]]))] += n
    for (measure, period, label), value in list(truth.items()):
        if period in tree["H"]:
            truth[(measure, "H", label)] += value
    for (period, label), n in list(unlisted.items()):
        if period in tree["H"]:
            unlisted[("H", label)] += n
    return tree, periods, truth, unlisted


def _determined(relations, unknown):
    """Of ``unknown``, the figures the relations (over every figure, known or not) give
    exactly: those whose unit vector lies in the span of the relations restricted to the
    unknown figures."""
    index = {k: i for i, k in enumerate(sorted(unknown, key=str))}
    pivots = {}
    for relation in relations:
        row = {index[k]: Fraction(c) for k, c in relation if k in index}
        for col in sorted(c for c in list(row) if c in pivots):
            if row.get(col):
                factor = row[col]
                for c, v in pivots[col].items():
                    row[c] = row.get(c, 0) - factor * v
        row = {c: v for c, v in row.items() if v}
        if row:
            col = min(row)
            pivots[col] = {c: v / row[col] for c, v in row.items()}
    found = set()
    for key, col in index.items():
        vector = {col: Fraction(1)}
        for pcol in sorted(pivots):
            if vector.get(pcol):
                factor = vector[pcol]
                for c, v in pivots[pcol].items():
                    vector[c] = vector.get(c, 0) - factor * v
                vector = {c: v for c, v in vector.items() if v}
        if not vector:
            found.add(key)
    return found


@settings(max_examples=60, deadline=None)
@given(figures=nested_figures())
def test_coarser_figures_shown_give_no_hidden_figure_away(figures):
    """A grid with a half-year and a coarser breakdown (two values of x to a group): what
    it shows at every level, beside the sums that tie them (a group is its values, a
    half-year its quarters, the year its quarters), determines no hidden figure but a
    nothing, and no coarser figure the rules hide (under 5, or 1 to 4 not listed) that
    the finer tables alone did not give already."""
    tree, periods, truth, unlisted = _rolled_truth(figures)
    periods = dict(periods)
    periods["H"] = tuple(tree["H"])
    dims = {
        name: sorted({k[2][1] for k in truth if k[2] != TOTAL and k[2][0] == name})
        for name in ("x", "y", "xg")
    }
    grid = Grid(
        periods,
        dims,
        ("grants",),
        ("amount",),
        known_totals=("amount",),
        rollups={"xg": ("x", GROUP)},
        summaries=("H",),
    )
    for (measure, period, label), value in truth.items():
        if measure == "grants":
            grid.put(period, label, {"grants": value, "amount": truth[("amount", period, label)]})
    for period in periods:
        grid.population[period] = truth[("grants", period, TOTAL)]
        for name, values in dims.items():
            grid.listed[(period, name)] = [
                v for v in values if truth[("grants", period, (name, v))]
            ]
    for key, n in unlisted.items():
        if anonymise.is_small(n) and key[1] != TOTAL and key[1][0] in ("x", "xg"):
            grid.extra[key] = anonymise.UNLISTED
    grid.protect()
    parent = {c: p for p, children in tree.items() if p != "H" for c in children}
    # As a reader sees it: the values some listed row shows; a breakdown of one value
    # only says of every row its period's total, which tells nothing about anyone.
    seen = {
        name: sorted({v for p in periods if p not in grid.dropped for v in grid.listed[(p, name)]})
        for name in dims
    }
    dims = {name: values for name, values in seen.items() if len(values) > 1}
    labels = [TOTAL] + [(n, v) for n, values in dims.items() for v in values]
    for measure in ("grants", "amount"):
        relations, known, everything = [], set(), set()
        for period in periods:
            for name, values in dims.items():
                relations.append(
                    [((period, TOTAL), -1)] + [((period, (name, v)), 1) for v in values]
                )
            for group in dims.get("xg", ()) if "x" in dims else ():
                relations.append(
                    [((period, ("xg", group)), -1)]
                    + [((period, ("x", v)), 1) for v in dims["x"] if GROUP[v] == group]
                )
            for label in labels:
                key = (period, label)
                everything.add(key)
                cell = grid.cell(measure, period, label)
                # A period not broken down, or a summary shown only by its total (the
                # half-year), shows no rows: the reader cannot tell which are nothing.
                if label != TOTAL and (period in grid.dropped or period in grid.summaries):
                    continue
                if label != TOTAL and label[1] not in grid.listed[(period, label[0])]:
                    known.add(key)  # no row: nothing
                elif cell.shown:
                    known.add(key)
            if measure == "amount":
                known.add((period, TOTAL))
        for up, children in periods.items():
            for label in labels:
                if children:
                    relations.append([((up, label), -1)] + [((c, label), 1) for c in children])
        # What the tables give without their coarser figures: a sum of hidden finer
        # figures (a group less its shown values) is no more than the finer tables tell.
        rolled_shown = {key for key in known if key in grid.rolled}
        before = _determined(relations, everything - (known - rolled_shown))
        for key in _determined(relations, everything - known):
            period, label = key
            value = truth[(measure, period, label)]
            coarser = key in grid.rolled
            # A value all grants of a period share is said of every part of it (the only
            # row of a table is its total): that tells nothing about anyone.
            if not value or _said_of_all(grid, {**parent, "H": "Y"}, period, label):
                continue
            assert coarser, f"{measure} {key} recovered"
            if key in before:
                continue
            count = truth[("grants", period, label)]
            assert not anonymise.is_small(count), f"{measure} {key}: a small count"
            assert not grid.extra.get(key), f"{measure} {key}: 1 to 4 not listed"


def test_the_portal_shows_the_tables_rolled_up_as_the_report_does(app, small_world, make_user):
    """Once the year's report is issued, the donor's portal shows the year's tables of
    who was supported at the levels the PDF shows them, with the same words under them,
    and nothing of the finer levels it rolled up."""
    build_report(small_world.eur, parse_period(str(YEAR)), today=AFTER)
    db.session.commit()
    donor = signed_in(app, make_user("donor", donor_id=small_world.donor.id))
    html = " ".join(donor.get("/donor").get_data(as_text=True).split())
    assert f"Who the pool supported in {YEAR}" in html
    for words in (
        "By group of categories",
        "Shown by group of categories: by category, most counts would be fewer than 5",
        "By area",
        "By half-year of payment",
        "Shown by half-year: by month, most counts would be fewer than 5 or hidden.",
        f"First half of {YEAR}",
    ):
        assert words in html, words
    assert "By category<" not in html and "By region<" not in html
    assert "By month of payment" not in html
