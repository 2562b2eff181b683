"""What donor reports say about people, issued once per ended period and never changed.

A report of a period that has not ended carries the pool's account only. Once a period
has ended, the first report of it issues its figures about people (the breakdowns, budget
against actual, the counts behind timeliness and outcomes, the CSV's lines and its "not
listed" line), and :class:`~.models.IssuedFigures` keeps them: every later report of the
period serves the same figures, whatever is recorded, withdrawn or purged afterwards. So
no two downloads of a period differ in what they say about people, and a difference
between two downloads cannot single anyone out.

What a period counts is what was recorded by its end: a payment counts in the month it was
paid, or in the month it was recorded when that is later (a payment, a reversal recorded
late), so nothing can be added to a period that has ended, and the figures an issue holds
are the same whenever it is first made. Allocations count when recorded, answers to the
use-of-funds report when sent, a first payment when recorded.

What is hidden is decided for a calendar year's periods together (see ``anonymise``): as
each period ends its figures are decided beside those the year's earlier periods issued,
which stay as they were. Periods are decided in the order they end (January; February;
March with the first quarter; ...; December with the fourth quarter and the year), so an
issue made months late is the one that would have been made on time.
"""

import json
import math
from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..cases.models import Application, Consent, ConsentKind, UseOfFundsReport
from ..core.extensions import db, reading
from ..core.money import quantize
from ..core.sql import lock_row, signed_amount
from ..grants.models import Grant
from ..ledger.models import Allocation, Disbursement, Release
from ..pools.models import Pool
from . import anonymise
from .models import IssuedFigures
from .periods import parse_period

SMALL = anonymise.SMALL
ZERO = Decimal("0.00")

#: The breakdowns of who was paid, each a field of the case.
DIMENSIONS = ("category", "region", "gender")
#: The breakdowns whose values the CSV's lines show: a figure of them less the lines of
#: its value is what the grants not listed add up to.
LISTED_DIMENSIONS = ("category", "region")
PEOPLE = ("grants", "defenders", "dependants")


def year_periods(year):
    """The periods of calendar ``year`` a report can cover, by code (the year, its
    quarters, its months), and for each the codes of the periods it is the sum of."""
    whole = parse_period(str(year))
    quarters = [parse_period(f"{year}-Q{q}") for q in range(1, 5)]
    months = [parse_period(f"{year}-{m:02d}") for m in range(1, 13)]
    periods = {p.code: p for p in [whole, *quarters, *months]}
    children = {whole.code: tuple(q.code for q in quarters)}
    for quarter in quarters:
        children[quarter.code] = tuple(m.strftime("%Y-%m") for m in quarter.months())
    children.update((m.code, ()) for m in months)
    return periods, children


def _within(day):
    """The codes of the periods of its year that contain ``day``: month, quarter, year."""
    return (day.strftime("%Y-%m"), f"{day.year}-Q{(day.month - 1) // 3 + 1}", str(day.year))


def placed_on(paid_on, recorded_at):
    """The day a payment (or reversal) counts on in what reports say about people: the day
    it was paid, or the day it was recorded when that is later. A row recorded after its
    period ended counts in the period it was recorded in."""
    return max(paid_on, recorded_at.date())


def _midnight(day):
    return datetime.combine(day, time.min)


def ended_batches(year, today):
    """The periods of ``year`` that have ended by ``today``, in groups that end on the same
    day, in the order they end: [["2026-01"], ["2026-02"], ["2026-03", "2026-Q1"], ...]."""
    periods, _children = year_periods(year)
    by_end = defaultdict(list)
    for code, period in periods.items():
        if period.end <= today:
            by_end[period.end].append(code)
    return [sorted(by_end[end]) for end in sorted(by_end)]


def _cases(grant_ids):
    """Grant id -> the case's reportable attributes, one query per 500 grants."""
    found = {}
    ids = sorted(grant_ids)
    for start in range(0, len(ids), 500):
        query = (
            sa.select(
                Grant.id,
                Grant.uid,
                Application.id,
                Application.category,
                Application.country,
                Application.region,
                Application.gender,
                Application.defender_key,
                Application.dependants_count,
            )
            .join(Application, Application.id == Grant.application_id)
            .where(Grant.id.in_(ids[start : start + 500]))
        )
        for row in db.session.execute(query):
            found[row[0]] = {
                "grant_uid": row[1],
                "application_id": row[2],
                "category": row[3].value,
                "country": row[4],
                "region": row[5] or anonymise.NOT_SHOWN,
                "gender": row[6].value if row[6] else "undisclosed",
                "defender": row[7] or f"grant-{row[0]}",
                "dependants": row[8] or 0,
            }
    return found


def shared_with(donor_id, application_ids):
    """Of these cases, those whose defender's consent to show the case to donors (all of
    the fund's, or this one) stands."""
    ids = sorted(application_ids)
    found = set()
    for start in range(0, len(ids), 500):
        found.update(
            db.session.execute(
                sa.select(Consent.application_id).where(
                    Consent.application_id.in_(ids[start : start + 500]),
                    Consent.kind == ConsentKind.STORY,
                    sa.or_(Consent.donor_id.is_(None), Consent.donor_id == donor_id),
                    Consent.withdrawn_at.is_(None),
                )
            ).scalars()
        )
    return found


class Recorded:
    """What was recorded about one pool's grants in one calendar year before ``until``
    (the end of the last of its periods to issue): read once, in a handful of grouped
    queries, then every period is counted from it."""

    def __init__(self, pool, year, until):
        self.pool, self.year = pool, year
        self.periods, self.children = year_periods(year)
        start = date(year, 1, 1)
        until = min(until, date(year + 1, 1, 1))
        self.until = until
        signed = signed_amount(Disbursement)
        rows = db.session.execute(
            sa.select(
                Disbursement.grant_id, Disbursement.paid_on, Disbursement.created_at, signed
            ).where(
                Disbursement.pool_id == pool.id,
                Disbursement.paid_on < until,
                Disbursement.created_at < _midnight(until),
                sa.or_(Disbursement.paid_on >= start, Disbursement.created_at >= _midnight(start)),
            )
        )
        #: grant id -> first day of a month -> net paid from the pool, counted there.
        months = defaultdict(lambda: defaultdict(lambda: ZERO))
        for grant_id, paid_on, recorded_at, amount in rows:
            day = placed_on(paid_on, recorded_at)
            if start <= day < until:
                months[grant_id][day.replace(day=1)] += amount
        self.cases = _cases(months)
        self.listed = shared_with(
            pool.donor_id, {case["application_id"] for case in self.cases.values()}
        )
        #: period code -> grant id -> net paid from the pool in the period.
        self.nets = {code: {} for code in self.periods}
        for gid, by_month in months.items():
            for month, amount in by_month.items():
                for code in _within(month):
                    self.nets[code][gid] = self.nets[code].get(gid, ZERO) + amount
        self._commitments(start)
        self._timeliness(start)
        self._outcomes(start)

    def unlisted(self, gid):
        return self.cases[gid]["application_id"] not in self.listed

    def _commitments(self, start):
        """The pool's allocations recorded in the year, what was paid on each and when it
        counts; and, for the CSV, each paid grant's allocations and releases."""
        pool, until = self.pool, self.until
        self.allocations = db.session.execute(
            sa.select(
                Allocation.id,
                Allocation.grant_id,
                Allocation.amount,
                Allocation.created_at,
                Application.category,
            )
            .join(Grant, Grant.id == Allocation.grant_id)
            .join(Application, Application.id == Grant.application_id)
            .where(
                Allocation.pool_id == pool.id,
                Allocation.created_at >= _midnight(start),
                Allocation.created_at < _midnight(until),
            )
        ).all()
        #: allocation id -> [(the day it counts, net amount)] of the payments on it.
        self.paid_on_allocation = defaultdict(list)
        for aid, paid_on, recorded_at, amount in db.session.execute(
            sa.select(
                Disbursement.allocation_id,
                Disbursement.paid_on,
                Disbursement.created_at,
                signed_amount(Disbursement),
            )
            .join(Allocation, Allocation.id == Disbursement.allocation_id)
            .where(
                Allocation.pool_id == pool.id,
                Allocation.created_at >= _midnight(start),
                Allocation.created_at < _midnight(until),
                Disbursement.created_at < _midnight(until),
            )
        ):
            self.paid_on_allocation[aid].append((placed_on(paid_on, recorded_at), amount))
        paid = sorted(self.cases)
        #: grant id -> [(recorded at, amount)], allocations positive and releases negative.
        self.committed = defaultdict(list)
        for begin in range(0, len(paid), 500):
            chunk = paid[begin : begin + 500]
            for gid, at, amount in db.session.execute(
                sa.select(Allocation.grant_id, Allocation.created_at, Allocation.amount).where(
                    Allocation.pool_id == pool.id, Allocation.grant_id.in_(chunk)
                )
            ):
                self.committed[gid].append((at, amount))
            for gid, at, amount in db.session.execute(
                sa.select(Allocation.grant_id, Release.created_at, Release.amount)
                .join(Allocation, Allocation.id == Release.allocation_id)
                .where(Allocation.pool_id == pool.id, Allocation.grant_id.in_(chunk))
            ):
                self.committed[gid].append((at, -amount))

    def committed_by(self, gid, end):
        """What the pool committed to the grant, less releases, recorded before ``end``."""
        limit = _midnight(end)
        return quantize(sum((a for at, a in self.committed[gid] if at < limit), ZERO))

    def _timeliness(self, start):
        """Hours from submission to decision of the grants the pool committed to, and from
        decision to first payment of the pool's grants, by when each was recorded."""
        gids = {row[1] for row in self.allocations}
        decided = {}
        for gid, submitted, approved in db.session.execute(
            sa.select(Grant.id, Application.submitted_at, Grant.approved_at)
            .join(Application, Application.id == Grant.application_id)
            .where(Grant.id.in_(sorted(gids)))
        ):
            if submitted and approved:
                decided[gid] = (approved - submitted).total_seconds() / 3600
        #: period code -> grant ids committed to in it.
        self.decided = defaultdict(set)
        for _aid, gid, _amount, created_at, _category in self.allocations:
            for code in _within(created_at.date()):
                self.decided[code].add(gid)
        self.decision_hours = {
            code: sorted(decided[g] for g in self.decided[code] if g in decided)
            for code in self.periods
        }
        pools_grants = sa.select(Allocation.grant_id).where(Allocation.pool_id == self.pool.id)
        first = sa.func.min(Disbursement.created_at)
        self.payment_hours = defaultdict(list)
        for _gid, first_paid, approved in db.session.execute(
            sa.select(Disbursement.grant_id, first, Grant.approved_at)
            .join(Grant, Grant.id == Disbursement.grant_id)
            .where(Disbursement.grant_id.in_(pools_grants), Disbursement.reversal_of_id.is_(None))
            .group_by(Disbursement.grant_id, Grant.approved_at)
            .having(first >= _midnight(start), first < _midnight(self.until))
        ):
            if approved and first_paid >= approved:
                hours = (first_paid - approved).total_seconds() / 3600
                for code in _within(first_paid.date()):
                    self.payment_hours[code].append(hours)
        for hours in self.payment_hours.values():
            hours.sort()

    def _outcomes(self, start):
        """Answers to the use-of-funds report sent in each period by defenders the pool
        had paid by then."""
        first_paid = dict(
            db.session.execute(
                sa.select(Grant.application_id, sa.func.min(Disbursement.created_at))
                .join(Grant, Grant.id == Disbursement.grant_id)
                .where(Disbursement.pool_id == self.pool.id)
                .group_by(Grant.application_id)
            ).all()
        )
        self.answers = {code: {"felt_safer": [], "continued_work": []} for code in self.periods}
        for application_id, submitted, felt_safer, continued in db.session.execute(
            sa.select(
                UseOfFundsReport.application_id,
                UseOfFundsReport.submitted_at,
                UseOfFundsReport.felt_safer,
                UseOfFundsReport.continued_work,
            ).where(
                UseOfFundsReport.submitted_at >= _midnight(start),
                UseOfFundsReport.submitted_at < _midnight(self.until),
            )
        ):
            paid = first_paid.get(application_id)
            if paid is None or paid > submitted:
                continue
            for code in _within(submitted.date()):
                for measure, value in (("felt_safer", felt_safer), ("continued_work", continued)):
                    if value is not None:
                        self.answers[code][measure].append(value)


class Decision:
    """The figures of the periods ``new`` (ended, none issued), decided beside those
    ``issued`` (code -> the figures an earlier report issued) of the same year."""

    def __init__(self, recorded, new, issued):
        self.recorded, self.new, self.issued = recorded, list(new), issued
        included = set(self.new) | set(issued)
        self.children = {code: recorded.children[code] for code in included}
        self.people = self._people()
        self.budget = self._budget()
        self.timeliness = self._totals(
            "timeliness",
            ("payment",),
            {code: {"payment": len(recorded.payment_hours[code])} for code in self.new},
        )
        self.outcomes = self._totals(
            "outcomes",
            ("felt_safer", "continued_work"),
            {code: {k: len(v) for k, v in recorded.answers[code].items()} for code in self.new},
        )
        self.lines = self._lines()

    def _grid(self, part, dims, counts, amounts=(), **options):
        """A grid over the new and issued periods, the issued ones fixed as issued, with
        every value of each breakdown any of them has."""
        for figures in self.issued.values():
            for _measure, label, _value, _hidden in figures[part]["cells"]:
                if label != anonymise.TOTAL and label[0] in dims:
                    dims[label[0]].add(label[1])
        return anonymise.Grid(
            self.children, {d: sorted(v) for d, v in dims.items()}, counts, amounts, **options
        )

    def _fix(self, grid, part):
        for code, figures in self.issued.items():
            grid.fix(code, figures[part])

    def _people(self):
        """Grants paid (net above zero), defenders and their dependants counted apart,
        and the amount, by category, region and gender, in every new period."""
        recorded = self.recorded
        groups = defaultdict(
            lambda: {"ids": set(), "defenders": {}, "amount": ZERO, "big": ZERO, "unlisted": 0}
        )
        values = {dim: set() for dim in DIMENSIONS}
        listed = defaultdict(set)
        for code in self.new:
            for gid, amount in recorded.nets[code].items():
                case = recorded.cases[gid]
                for dim in DIMENSIONS:
                    values[dim].add(case[dim])
                    listed[(code, dim)].add(case[dim])
                for label in [anonymise.TOTAL] + [(dim, case[dim]) for dim in DIMENSIONS]:
                    group = groups[(code, label)]
                    group["amount"] += amount
                    group["big"] = max(group["big"], abs(amount))
                    if amount > 0:
                        group["ids"].add(gid)
                        group["defenders"][case["defender"]] = case["dependants"]
                        group["unlisted"] += recorded.unlisted(gid)
        grid = self._grid(
            "people",
            values,
            PEOPLE,
            ("amount",),
            known_totals=("amount",),  # each period's payments: the account gives them
            twins=("defenders",),
        )
        for (code, label), group in groups.items():
            grid.put(
                code,
                label,
                {
                    "grants": len(group["ids"]),
                    "defenders": len(group["defenders"]),
                    "dependants": sum(group["defenders"].values()),
                    "amount": group["amount"],
                },
                {"amount": group["big"]},
            )
            if label != anonymise.TOTAL and label[0] in LISTED_DIMENSIONS:
                if anonymise.is_small(group["unlisted"]):
                    grid.extra[(code, label)] = anonymise.UNLISTED
        for code in self.new:
            paid = recorded.nets[code]
            grid.population[code] = len(paid)
            for dim in DIMENSIONS:
                grid.listed[(code, dim)] = sorted(listed[(code, dim)])
            # The CSV's "not listed" line is this total less the lines: hidden together.
            others = sum(1 for gid in paid if recorded.unlisted(gid))
            total = groups[(code, anonymise.TOTAL)]["unlisted"] if paid else 0
            if anonymise.is_small(others) or anonymise.is_small(total):
                grid.extra[(code, anonymise.TOTAL)] = anonymise.UNLISTED
        self._fix(grid, "people")
        return grid.protect()

    def _budget(self):
        """Budget against actual: for the grants the pool committed to in each new period,
        by category, the grants, what was committed and what was paid on it by the
        period's end."""
        recorded = self.recorded
        groups = defaultdict(
            lambda: {"ids": set(), "budget": ZERO, "actual": ZERO, "big": ZERO, "big_actual": ZERO}
        )
        categories = set()
        listed = defaultdict(set)
        new = set(self.new)
        for aid, gid, amount, created_at, category in recorded.allocations:
            for code in set(_within(created_at.date())) & new:
                categories.add(category.value)
                end = recorded.periods[code].end
                actual = quantize(
                    sum((a for day, a in recorded.paid_on_allocation[aid] if day < end), ZERO)
                )
                listed[(code, "category")].add(category.value)
                for label in (anonymise.TOTAL, ("category", category.value)):
                    group = groups[(code, label)]
                    group["ids"].add(gid)
                    group["budget"] += amount
                    group["actual"] += actual
                    group["big"] = max(group["big"], amount)
                    group["big_actual"] = max(group["big_actual"], abs(actual))
        grid = self._grid(
            "budget",
            {"category": categories},
            ("grants",),
            ("budget", "actual"),
            known_totals=("budget",),  # the period's commitments, in its account
        )
        for (code, label), group in groups.items():
            grid.put(
                code,
                label,
                {"grants": len(group["ids"]), "budget": group["budget"], "actual": group["actual"]},
                {"budget": group["big"], "actual": group["big_actual"]},
            )
        for code in self.new:
            grid.population[code] = len(recorded.decided[code])
            grid.listed[(code, "category")] = sorted(listed[(code, "category")])
        self._fix(grid, "budget")
        return grid.protect()

    def _totals(self, part, measures, counts):
        """A grid of counts without breakdowns, shown only from 5 (none is zero-or-more by
        itself): the grants first paid, or the answers to each outcome question."""
        grid = anonymise.Grid(self.children, {}, measures)
        for code, values in counts.items():
            grid.put(code, anonymise.TOTAL, values)
        for code, figures in self.issued.items():
            grid.fix(code, figures[part]["grid"])
        for measure in grid.counts:
            for _key, cell in grid.cells_of(measure, new=True):
                if cell.value < anonymise.THRESHOLD:
                    cell.hidden = SMALL
        return grid.protect()

    def _lines(self):
        """Each listed grant's category and place as its CSV lines show them, the same in
        every period of the year: as an earlier period issued it, or generalised until
        every pair is shared by 5 or more lines in each new period."""
        recorded = self.recorded
        issued = {}
        for figures in self.issued.values():
            for gid, category, place, _committed, _paid in figures["lines"]:
                issued[gid] = {"category": category, "place": place}
        attributes = {}
        for code in self.new:
            for gid in recorded.nets[code]:
                if gid in attributes or recorded.unlisted(gid):
                    continue
                case = recorded.cases[gid]
                attributes[gid] = issued.get(gid) or {
                    "category": case["category"],
                    "place": anonymise.place(case["country"]),
                }
                attributes[gid]["region"] = case["region"]
        anonymise.generalise(
            list(attributes.values()),
            periods=[
                [attributes[gid] for gid in recorded.nets[code] if gid in attributes]
                for code in self.new
            ],
            fixed=[attributes[gid] for gid in attributes if gid in issued],
        )
        return attributes

    def figures(self, code):
        """What the reports of the new period ``code`` issue, as plain JSON-ready values."""
        recorded, config = self.recorded, current_app.config
        period = recorded.periods[code]
        paid = recorded.nets[code]
        lines, others = [], {"count": 0, "committed": ZERO, "paid": ZERO}
        for gid in sorted(paid):
            committed = recorded.committed_by(gid, period.end)
            if gid in self.lines:
                shown = self.lines[gid]
                lines.append(
                    [
                        gid,
                        shown["category"],
                        shown["place"],
                        str(committed),
                        str(quantize(paid[gid])),
                    ]
                )
            else:
                others["count"] += 1
                others["committed"] += committed
                others["paid"] += quantize(paid[gid])
        total = self.people.cell("grants", code)
        count = others["count"]
        hidden = (
            None if total.shown else (SMALL if anonymise.is_small(count) else anonymise.SECONDARY)
        )
        return {
            "people": self.people.issued_figures(code),
            "months": [
                m.strftime("%Y-%m") for m in period.months() if recorded.nets[m.strftime("%Y-%m")]
            ],
            "paid": str(quantize(sum(paid.values(), ZERO))),
            "budget": self.budget.issued_figures(code),
            "timeliness": {
                "grid": self.timeliness.issued_figures(code),
                "decision": _measure(
                    self.budget.cell("grants", code),
                    recorded.decision_hours[code],
                    config["TARGET_DECISION_HOURS_NORMAL"],
                ),
                "payment": _measure(
                    self.timeliness.cell("payment", code),
                    recorded.payment_hours[code],
                    config["TARGET_PAYMENT_HOURS"],
                ),
            },
            "outcomes": {
                "grid": self.outcomes.issued_figures(code),
                **{
                    measure: _share(self.outcomes.cell(measure, code), answers)
                    for measure, answers in recorded.answers[code].items()
                },
            },
            "lines": lines,
            "unlisted": {
                "count": [count, hidden],
                "committed": str(others["committed"]),
                "paid": str(others["paid"]),
            },
        }


def _measure(cell, hours, target):
    """Median and 90th percentile hours against the fund's target, when the number of
    grants they cover is shown (5 or more, and not hidden beside another)."""
    if not cell.shown or cell.value < anonymise.THRESHOLD or not hours:
        return {"cases": cell.value, "shown": False, "hidden": cell.hidden or SMALL}
    return {
        "cases": cell.value,
        "shown": True,
        "median": round(_percentile(hours, 0.5)),
        "p90": round(_percentile(hours, 0.9)),
        "target": target,
        "within": round(100 * sum(1 for h in hours if h <= target) / len(hours)),
    }


def _share(cell, given):
    """The share of yes among the answers, when the number of answers is shown."""
    if not cell.shown or cell.value < anonymise.THRESHOLD:
        return {"answers": cell.value, "shown": False, "hidden": cell.hidden or SMALL}
    return {"answers": cell.value, "shown": True, "percent": round(100 * sum(given) / len(given))}


def _percentile(values, share):
    """Nearest-rank percentile of sorted ``values``."""
    rank = max(math.ceil(share * len(values)), 1)
    return values[rank - 1]


# -- the record ---------------------------------------------------------------------------


def issued_figures(pool_id, year):
    """Code -> the figures issued for each period of ``year`` of the pool so far."""
    return {
        code: json.loads(text)
        for code, text in db.session.execute(
            sa.select(IssuedFigures.period, IssuedFigures.figures).where(
                IssuedFigures.pool_id == pool_id, IssuedFigures.year == year
            )
        )
    }


class Pending:
    """Figures to issue for the ended periods of a year not issued yet, decided beside
    those issued already (``basis``, their codes)."""

    def __init__(self, pool, year, today, issued=None):
        self.pool_id, self.year = pool.id, year
        issued = issued_figures(pool.id, year) if issued is None else dict(issued)
        self.basis = set(issued)
        batches = [[c for c in batch if c not in issued] for batch in ended_batches(year, today)]
        batches = [batch for batch in batches if batch]
        self.figures = {}
        if not batches:
            return
        periods, _children = year_periods(year)
        recorded = Recorded(pool, year, max(periods[c].end for c in batches[-1]))
        for batch in batches:
            decision = Decision(recorded, batch, issued)
            for code in batch:
                issued[code] = self.figures[code] = json.loads(
                    audit.canonical(decision.figures(code))
                )


def record_issue(pool, pending, today):
    """Keep ``pending``'s figures as issued, unless another report issued the year's
    periods meanwhile: then decide again beside what it issued. Flushes."""
    lock_row(Pool, pool.id)
    if set(issued_figures(pool.id, pending.year)) != pending.basis:
        pending = Pending(pool, pending.year, today)
    for code, figures in pending.figures.items():
        db.session.add(
            IssuedFigures(
                pool_id=pool.id, year=pending.year, period=code, figures=audit.canonical(figures)
            )
        )
    db.session.flush()


def issue_year(pool, year, today):
    """Issue the figures of every period of ``year`` that has ended by ``today`` and has
    none yet (flushed); the figures issued for the year's periods, by code."""
    pending = Pending(pool, year, today)
    if pending.figures:
        record_issue(pool, pending, today)
    return issued_figures(pool.id, year)


def issue_ended(pool, period, today):
    """Before a report of ``period`` is built: if it has ended and its figures about
    people are not issued yet, decide them in a read of their own that holds no write
    lock, then keep them (flushed; the caller commits). True when there was anything to
    keep."""
    if period.end > today:
        return False
    with reading():
        pending = Pending(pool, period.start.year, today)
    if not pending.figures:
        return False
    record_issue(pool, pending, today)
    return True
