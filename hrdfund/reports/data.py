"""What a donor report says about one pool in one fixed period, built once and rendered to
PDF and CSV alike. Money to the cent where it is the pool's own account; everything about
the people supported goes through the anonymisation rules, decided for the period's whole
calendar year at once (:class:`Year`), so that no set of reports gives away what one hides.

Reports only read. A handful of grouped queries, then sums in Python over at most one row
per payment of the year, so a pool with tens of thousands of payments builds in seconds.
"""

import hashlib
import math
from collections import defaultdict
from datetime import datetime, time
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..applications.models import (
    Application,
    Consent,
    ConsentKind,
    Story,
    UseOfFundsReport,
)
from ..columns import utcnow
from ..disbursements.ledger import pool_figures
from ..disbursements.models import Disbursement
from ..extensions import db
from ..grants.models import Allocation, Grant, Release
from ..grants.services import before, signed_amount, summed
from ..money import quantize
from ..pools.models import Contribution
from . import anonymise
from .periods import parse_period

SMALL = anonymise.SMALL

ZERO = Decimal("0.00")
#: Budget against actual: a variance of this share (10%) or more is flagged.
VARIANCE_FLAG = Decimal("0.10")


def _between(column, period):
    """SQL: the row's date (or time) ``column`` falls within ``period``."""
    return sa.and_(sa.not_(before(column, period.start)), before(column, period.end))


def summary(pool, period):
    """The pool's account over the period, to the cent: what it held at the start, what
    came in and went out, and what it held at the end; commitments beside it."""
    return summaries([pool.id], period)[pool.id]


def summaries(pool_ids, period):
    """:func:`summary` of each pool of ``pool_ids``, as a map from pool id: the same
    grouped queries for one pool as for a hundred."""
    if not pool_ids:
        return {}
    openings = pool_figures(pool_ids, until=period.start)
    closings = pool_figures(pool_ids, until=period.end)
    # Rows of the period by pool and kind (reversal or not): one grouped query per table.
    reversal = Contribution.reversal_of_id.is_not(None)
    received = {
        (pid, flag): total
        for pid, flag, total in db.session.execute(
            sa.select(Contribution.pool_id, reversal, summed(Contribution.amount))
            .where(Contribution.pool_id.in_(pool_ids), _between(Contribution.received_on, period))
            .group_by(Contribution.pool_id, reversal)
        )
    }
    reversal = Disbursement.reversal_of_id.is_not(None)
    paid = {
        (row[0], row[1]): [quantize(v) for v in row[2:]]
        for row in db.session.execute(
            sa.select(
                Disbursement.pool_id,
                reversal,
                summed(Disbursement.amount),
                summed(Disbursement.fee_amount),
                summed(Disbursement.exchange_difference),
            )
            .where(Disbursement.pool_id.in_(pool_ids), _between(Disbursement.paid_on, period))
            .group_by(Disbursement.pool_id, reversal)
        )
    }
    commitments = dict(
        db.session.execute(
            sa.select(Allocation.pool_id, summed(Allocation.amount))
            .where(Allocation.pool_id.in_(pool_ids), _between(Allocation.created_at, period))
            .group_by(Allocation.pool_id)
        ).all()
    )
    releases = dict(
        db.session.execute(
            sa.select(Allocation.pool_id, summed(Release.amount))
            .join(Allocation, Allocation.id == Release.allocation_id)
            .where(Allocation.pool_id.in_(pool_ids), _between(Release.created_at, period))
            .group_by(Allocation.pool_id)
        ).all()
    )

    def held(fig):
        return fig["received"] - fig["disbursed"] - fig["fees"] - fig["exchange_differences"]

    found = {}
    for pid in pool_ids:
        opening, closing = openings[pid], closings[pid]
        payments, reversals = (paid.get((pid, flag), [ZERO] * 3) for flag in (False, True))
        result = {
            "opening_balance": held(opening),
            "contributions": quantize(received.get((pid, False), 0)),
            "contributions_reversed": quantize(received.get((pid, True), 0)),
            "disbursements": payments[0],
            "reversals": reversals[0],
            "fees": payments[1] - reversals[1],
            "exchange_differences": payments[2] - reversals[2],
            "closing_balance": held(closing),
            "commitments": quantize(commitments.get(pid, 0)),
            "releases": quantize(releases.get(pid, 0)),
            "committed_unpaid": closing["outstanding"],
            "available": closing["available"],
        }
        found[pid] = (result, closing)
    return found


def _payments_of_period(pool, period):
    """Per grant: its attributes and the net amount paid from the pool in each month of
    the period (reversal rows negative)."""
    signed = signed_amount(Disbursement)
    rows = db.session.execute(
        sa.select(Disbursement.grant_id, Disbursement.paid_on, signed).where(
            Disbursement.pool_id == pool.id, _between(Disbursement.paid_on, period)
        )
    )
    months = defaultdict(lambda: defaultdict(lambda: ZERO))
    for grant_id, paid_on, amount in rows:
        months[grant_id][paid_on.replace(day=1)] += amount
    return months


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


class Year:
    """What one pool's reports say about people over one calendar year: every period of
    it (the year, its quarters, its months) built and protected together, so that no
    report and no set of them gives away what another hides (see ``anonymise``)."""

    def __init__(self, pool, year):
        self.pool, self.year = pool, year
        self.periods, children = year_periods(year)
        whole = self.periods[str(year)]
        months = _payments_of_period(pool, whole)
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
        self.people = self._people(children)
        self.budget, self.decided = self._commitments(children)
        self.timeliness = self._timeliness(children)
        self.outcomes = self._outcomes(children)
        self.lines = self._lines()

    def unlisted(self, gid):
        return self.cases[gid]["application_id"] not in self.listed

    def _people(self, children):
        """Grants paid (net above zero), defenders and their dependants counted apart,
        and the amount, by category, region and gender, in every period."""
        groups = defaultdict(
            lambda: {"ids": set(), "defenders": {}, "amount": ZERO, "big": ZERO, "unlisted": 0}
        )
        values = {dim: set() for dim in DIMENSIONS}
        listed = defaultdict(set)
        for code, paid in self.nets.items():
            for gid, amount in paid.items():
                case = self.cases[gid]
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
                        group["unlisted"] += self.unlisted(gid)
        grid = anonymise.Grid(
            children,
            {dim: sorted(values[dim]) for dim in DIMENSIONS},
            PEOPLE,
            ("amount",),
            known_totals=("amount",),  # each period's payments, in its account
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
        for code, paid in self.nets.items():
            grid.population[code] = len(paid)
            for dim in DIMENSIONS:
                grid.listed[(code, dim)] = sorted(listed[(code, dim)])
            # The CSV's "not listed" line is this total less the lines: hidden together.
            others = sum(1 for gid in paid if self.unlisted(gid))
            total = groups[(code, anonymise.TOTAL)]["unlisted"] if paid else 0
            if anonymise.is_small(others) or anonymise.is_small(total):
                grid.extra[(code, anonymise.TOTAL)] = anonymise.UNLISTED
        return grid.protect()

    def _commitments(self, children):
        """Budget against actual: for the grants the pool committed to in each period, by
        category, the grants, what was committed and what was paid on it by the period's
        end. Also, for timeliness, each such grant's periods."""
        whole = self.periods[str(self.year)]
        pool = self.pool
        allocations = db.session.execute(
            sa.select(
                Allocation.id,
                Allocation.grant_id,
                Allocation.amount,
                Allocation.created_at,
                Application.category,
            )
            .join(Grant, Grant.id == Allocation.grant_id)
            .join(Application, Application.id == Grant.application_id)
            .where(Allocation.pool_id == pool.id, _between(Allocation.created_at, whole))
        ).all()
        paid = defaultdict(lambda: defaultdict(lambda: ZERO))
        for aid, paid_on, amount in db.session.execute(
            sa.select(Disbursement.allocation_id, Disbursement.paid_on, signed_amount(Disbursement))
            .join(Allocation, Allocation.id == Disbursement.allocation_id)
            .where(
                Allocation.pool_id == pool.id,
                _between(Allocation.created_at, whole),
                Disbursement.paid_on < whole.end,
            )
        ):
            paid[aid][paid_on] += amount
        groups = defaultdict(
            lambda: {"ids": set(), "budget": ZERO, "actual": ZERO, "big": ZERO, "big_actual": ZERO}
        )
        decided = defaultdict(set)
        categories = set()
        listed = defaultdict(set)
        for aid, gid, amount, created_at, category in allocations:
            categories.add(category.value)
            for code in _within(created_at.date()):
                end = self.periods[code].end
                actual = quantize(sum((a for day, a in paid[aid].items() if day < end), ZERO))
                decided[code].add(gid)
                listed[(code, "category")].add(category.value)
                for label in (anonymise.TOTAL, ("category", category.value)):
                    group = groups[(code, label)]
                    group["ids"].add(gid)
                    group["budget"] += amount
                    group["actual"] += actual
                    group["big"] = max(group["big"], amount)
                    group["big_actual"] = max(group["big_actual"], abs(actual))
        grid = anonymise.Grid(
            children,
            {"category": sorted(categories)},
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
        for code in self.periods:
            grid.population[code] = len(decided[code])
            grid.listed[(code, "category")] = sorted(listed[(code, "category")])
        return grid.protect(), decided

    def _timeliness(self, children):
        """Hours from submission to decision and from decision to first payment of the
        grants committed to in each period; the number with a first payment protected
        like any count (the number decided is the budget's grants)."""
        gids = sa.select(Allocation.grant_id).where(
            Allocation.pool_id == self.pool.id,
            _between(Allocation.created_at, self.periods[str(self.year)]),
        )
        rows = db.session.execute(
            sa.select(Grant.id, Application.submitted_at, Grant.approved_at)
            .join(Application, Application.id == Grant.application_id)
            .where(Grant.id.in_(gids))
        ).all()
        first_paid = dict(
            db.session.execute(
                sa.select(Disbursement.grant_id, sa.func.min(Disbursement.created_at))
                .where(Disbursement.grant_id.in_(gids), Disbursement.reversal_of_id.is_(None))
                .group_by(Disbursement.grant_id)
            ).all()
        )
        to_decision, to_payment = {}, {}
        for gid, submitted, approved in rows:
            if submitted and approved:
                to_decision[gid] = (approved - submitted).total_seconds() / 3600
            if approved and gid in first_paid and first_paid[gid] >= approved:
                to_payment[gid] = (first_paid[gid] - approved).total_seconds() / 3600
        self.decision_hours = {
            code: sorted(to_decision[g] for g in self.decided[code] if g in to_decision)
            for code in self.periods
        }
        self.payment_hours = {
            code: sorted(to_payment[g] for g in self.decided[code] if g in to_payment)
            for code in self.periods
        }
        grid = anonymise.Grid(children, {}, ("payment",))
        for code, hours in self.payment_hours.items():
            grid.put(code, anonymise.TOTAL, {"payment": len(hours)})
        return _hide_under_threshold(grid).protect()

    def _outcomes(self, children):
        """Answers from the use-of-funds reports on the grants paid in each period."""
        answers = defaultdict(list)
        for application_id, felt_safer, continued in db.session.execute(
            sa.select(
                UseOfFundsReport.application_id,
                UseOfFundsReport.felt_safer,
                UseOfFundsReport.continued_work,
            ).where(
                UseOfFundsReport.application_id.in_(
                    {case["application_id"] for case in self.cases.values()}
                )
            )
        ):
            answers[application_id].append((felt_safer, continued))
        self.answers = {}
        grid = anonymise.Grid(children, {}, ("felt_safer", "continued_work"))
        for code, paid in self.nets.items():
            given = [a for gid in paid for a in answers[self.cases[gid]["application_id"]]]
            self.answers[code] = {
                "felt_safer": [a[0] for a in given if a[0] is not None],
                "continued_work": [a[1] for a in given if a[1] is not None],
            }
            grid.put(code, anonymise.TOTAL, {k: len(v) for k, v in self.answers[code].items()})
        return _hide_under_threshold(grid).protect()

    def _lines(self):
        """Each listed grant's category and place as its CSV line shows them, the same in
        every period of the year: generalised until every pair is shared by 5 or more
        lines in each period."""
        attributes = {
            gid: {
                "category": case["category"],
                "place": anonymise.place(case["country"]),
                "region": case["region"],
            }
            for gid, case in self.cases.items()
            if not self.unlisted(gid)
        }
        anonymise.generalise(
            list(attributes.values()),
            periods=[
                [attributes[gid] for gid in paid if gid in attributes]
                for paid in self.nets.values()
            ],
        )
        return attributes

    # -- one period's tables ------------------------------------------------------------

    def breakdowns(self, code):
        """The four breakdowns of the period: by category, region, gender, and month of
        payment (each month's row is that month's total, as its own report shows it)."""
        found = {dim: self.people.table(code, dim) for dim in DIMENSIONS}
        months = [
            m.strftime("%Y-%m")
            for m in self.periods[code].months()
            if self.nets.get(m.strftime("%Y-%m"))
        ]
        measures = self.people.measures
        found["month"] = anonymise.Table(
            "month",
            measures,
            [anonymise.Row(m, {k: self.people.cell(k, m) for k in measures}) for m in months],
            anonymise.Row(anonymise.TOTAL, {k: self.people.cell(k, code) for k in measures}),
        )
        return found

    def budget_lines(self, code):
        """Budget against actual of the period: a line per category and the total, with
        the variance in amount and percent where both figures are shown."""
        table = self.budget.table(code, "category")
        lines = []
        for row in table.rows + [table.total]:
            budget, actual = row.cells["budget"], row.cells["actual"]
            variance = percent = None
            if budget.shown and actual.shown:
                variance = actual.value - budget.value
                percent = (
                    (Decimal(variance) / budget.value * 100).quantize(Decimal("0.1"))
                    if budget.value
                    else None
                )
            flagged = percent is not None and abs(percent) >= VARIANCE_FLAG * 100
            lines.append(
                {
                    "label": row.label,
                    "grants": row.cells["grants"],
                    "budget": budget,
                    "actual": actual,
                    "variance": variance,
                    "percent": percent,
                    "flagged": flagged,
                }
            )
        return lines

    def timeliness_of(self, code):
        """Median and 90th percentile hours, against the fund's targets, when the number of
        grants they cover is shown (5 or more, and not hidden beside another)."""
        config = current_app.config

        def measure(cell, hours, target):
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

        return {
            "decision": measure(
                self.budget.cell("grants", code),
                self.decision_hours[code],
                config["TARGET_DECISION_HOURS_NORMAL"],
            ),
            "payment": measure(
                self.timeliness.cell("payment", code),
                self.payment_hours[code],
                config["TARGET_PAYMENT_HOURS"],
            ),
        }

    def outcomes_of(self, code):
        """The share who felt safer and who could continue their work, when the number of
        answers is shown."""

        def share(measure):
            cell, given = self.outcomes.cell(measure, code), self.answers[code][measure]
            if not cell.shown or cell.value < anonymise.THRESHOLD:
                return {"answers": cell.value, "shown": False, "hidden": cell.hidden or SMALL}
            return {
                "answers": cell.value,
                "shown": True,
                "percent": round(100 * sum(given) / len(given)),
            }

        return {"felt_safer": share("felt_safer"), "continued_work": share("continued_work")}


def _hide_under_threshold(grid):
    """A grid of counts that are shown only from 5: none is zero-or-more by itself."""
    for measure in grid.counts:
        for _key, cell in grid.cells_of(measure):
            if cell.value < anonymise.THRESHOLD:
                cell.hidden = SMALL
    return grid


def _percentile(values, share):
    """Nearest-rank percentile of sorted ``values``."""
    rank = max(math.ceil(share * len(values)), 1)
    return values[rank - 1]


def stories(pool, period):
    """Case stories a manager wrote and approved for this pool's donor, on cases this pool
    funded, whose defender's consent to share them with this donor stands."""
    funded = (
        sa.select(Grant.application_id)
        .join(Allocation, Allocation.grant_id == Grant.id)
        .where(Allocation.pool_id == pool.id)
    )
    rows = db.session.execute(
        sa.select(Story)
        .join(Consent, Consent.id == Story.consent_id)
        .where(
            Story.donor_id == pool.donor_id,
            Story.approved_at.is_not(None),
            Story.approved_at < datetime.combine(period.end, time.min),
            Story.application_id.in_(funded),
            Consent.kind == ConsentKind.STORY,
            sa.or_(Consent.donor_id.is_(None), Consent.donor_id == pool.donor_id),
            Consent.application_id == Story.application_id,
            Consent.withdrawn_at.is_(None),
        )
        .order_by(Story.approved_at)
    ).scalars()
    return [story.text for story in rows if story.text]


def line_items(year, period):
    """The CSV's lines: one per grant paid in the period whose defender agreed that donors
    may see the case, anonymised (the donor's code for it in this year, category and place
    as :meth:`Year._lines` generalised them, committed from the pool as at the end of the
    period, paid in the period); and the grants without that consent added up in one line,
    their number shown only where the period's number of grants is (it is that number
    less the lines)."""
    pool, paid = year.pool, year.nets[period.code]
    paid_in_period = sa.select(Disbursement.grant_id).where(
        Disbursement.pool_id == pool.id, _between(Disbursement.paid_on, period)
    )

    def per_grant(dated, query):
        return dict(
            db.session.execute(
                query.where(
                    Allocation.pool_id == pool.id,
                    Allocation.grant_id.in_(paid_in_period),
                    before(dated, period.end),
                ).group_by(Allocation.grant_id)
            ).all()
        )

    committed = per_grant(
        Allocation.created_at,
        sa.select(Allocation.grant_id, summed(Allocation.amount)),
    )
    released = per_grant(
        Release.created_at,
        sa.select(Allocation.grant_id, summed(Release.amount)).join(
            Release, Release.allocation_id == Allocation.id
        ),
    )
    items, others = [], {"grants": 0, "committed": ZERO, "paid": ZERO}
    for gid, amount in paid.items():
        committed_here = quantize(committed.get(gid, 0)) - quantize(released.get(gid, 0))
        paid_here = quantize(amount)
        if year.unlisted(gid):
            # No consent to show this case to donors: counted in one line with the others.
            others["grants"] += 1
            others["committed"] += committed_here
            others["paid"] += paid_here
            continue
        shown = year.lines[gid]
        items.append(
            {
                "code": anonymise.donor_code(
                    pool.donor_id, year.cases[gid]["grant_uid"], year.year
                ),
                "category": shown["category"],
                "place": shown["place"],
                "committed": committed_here,
                "paid": paid_here,
            }
        )
    count = others.pop("grants")
    total = year.people.cell("grants", period.code)
    hidden = None if total.shown else (SMALL if anonymise.is_small(count) else anonymise.SECONDARY)
    others["count"] = anonymise.Cell(count, hidden)
    return sorted(items, key=lambda item: item["code"]), others


def shared_with(donor_id, application_ids):
    """Of these cases, those whose defender's consent to show the case to donors (all of
    the fund's, or this one) stands."""
    return set(
        db.session.execute(
            sa.select(Consent.application_id).where(
                Consent.application_id.in_(application_ids),
                Consent.kind == ConsentKind.STORY,
                sa.or_(Consent.donor_id.is_(None), Consent.donor_id == donor_id),
                Consent.withdrawn_at.is_(None),
            )
        ).scalars()
    )


def internal_grants(pool_ids, period, limit, visible):
    """For the fund's managers, never for donors: the grants paid from these pools in the
    period on the cases ``visible`` (an SQL condition) allows, with the pool, the net
    amount paid (pool currency) and the last day paid; the most recently paid first."""
    signed = signed_amount(Disbursement)
    last_paid = sa.func.max(Disbursement.paid_on)
    query = (
        sa.select(
            Application.uid,
            Application.category,
            Disbursement.pool_id,
            summed(signed).label("paid"),
            sa.func.count(Disbursement.id).label("rows"),
            last_paid.label("last_paid"),
        )
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Disbursement.pool_id.in_(pool_ids), _between(Disbursement.paid_on, period), visible)
        .group_by(Application.uid, Application.category, Disbursement.pool_id)
        .order_by(last_paid.desc(), Application.uid, Disbursement.pool_id)
    )
    return db.session.execute(query.limit(limit)).all()


def build_report(pool, period, generated_at=None):
    """Everything the donor report of ``pool`` over ``period`` shows, with its digest."""
    money, position = summary(pool, period)
    year = Year(pool, period.start.year)
    code = period.code
    report = {
        "fund": current_app.config["FUND_NAME"],
        "donor": pool.donor.name,
        "pool": pool.name,
        "currency": pool.currency,
        "period": code,
        "period_start": period.start,
        "period_end": period.end,
        "generated_at": generated_at or utcnow().replace(microsecond=0),
        "summary": money,
        "position": position,
        "budget": year.budget_lines(code),
        "breakdowns": year.breakdowns(code),
        "timeliness": year.timeliness_of(code),
        "outcomes": year.outcomes_of(code),
        "stories": stories(pool, period),
    }
    report["items"], report["unlisted"] = line_items(year, period)
    report["digest"] = digest(report)
    return report


def plain(report):
    """The report's data as plain JSON-ready values: what the digest covers."""

    def convert(value):
        if isinstance(value, anonymise.Table):
            return value.plain()
        if isinstance(value, anonymise.Cell):
            return value.plain()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items() if k not in ("digest", "generated_at")}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return convert(report)


def digest(report):
    """SHA-256 of the report's data, so a copy can be checked against the fund's."""
    return hashlib.sha256(audit.canonical(plain(report)).encode()).hexdigest()
