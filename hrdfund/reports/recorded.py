"""What was recorded about a pool's grants in a calendar year, read once for the figures
reports issue about people: the year's periods and when each ends, the day a payment
counts on, the cases paid and whose consent to be listed stands, the pool's commitments,
the hours to decision and to payment, and the answers to the use-of-funds report.

A payment counts in the month it was paid, or in the month it was recorded when that is
later, so nothing can be added to a period that has ended.
"""

from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal

import sqlalchemy as sa

from ..cases import consents
from ..cases.models import Application, Consent, ConsentKind, UseOfFundsReport
from ..core.extensions import db
from ..core.money import quantize
from ..core.sql import signed_amount
from ..grants.models import Grant
from ..ledger.models import Allocation, Disbursement, Release
from ..network.models import Referral, ReferralStatus
from . import anonymise
from .periods import Period, parse_period

ZERO = Decimal("0.00")


def half_years(year):
    """The codes of the two half-years of ``year``. No report covers a half-year: its
    total is a row of the year's table by period, where the quarters' would mostly be
    hidden."""
    return (f"{year}-H1", f"{year}-H2")


def year_periods(year):
    """The periods of calendar ``year`` a report can cover, by code (the year, its
    quarters, its months), and the half-years its table by period may be rolled up to;
    and for each the codes of the periods it is the sum of."""
    whole = parse_period(str(year))
    quarters = [parse_period(f"{year}-Q{q}") for q in range(1, 5)]
    months = [parse_period(f"{year}-{m:02d}") for m in range(1, 13)]
    first, second = half_years(year)
    halves = [
        Period(first, "half", whole.start, quarters[2].start),
        Period(second, "half", quarters[2].start, whole.end),
    ]
    periods = {p.code: p for p in [whole, *quarters, *halves, *months]}
    children = {whole.code: tuple(q.code for q in quarters)}
    children[first] = (quarters[0].code, quarters[1].code)
    children[second] = (quarters[2].code, quarters[3].code)
    for quarter in quarters:
        children[quarter.code] = tuple(m.strftime("%Y-%m") for m in quarter.months())
    children.update((m.code, ()) for m in months)
    return periods, children


def listed_together(code, year):
    """The periods of ``year`` whose CSVs list lines together with ``code``'s or not at
    all (see ``data.line_items``): a quarter, or a month, with the quarter and its months;
    the year (or a half-year) with every period of it."""
    periods, children = year_periods(year)
    period = periods[code]
    if period.kind not in ("month", "quarter"):
        return list(periods)
    quarter = next(
        c
        for c, p in periods.items()
        if p.kind == "quarter" and p.start <= period.start and period.end <= p.end
    )
    return [quarter, *children[quarter]]


def within(day):
    """The codes of the periods of its year that contain ``day``: month, quarter,
    half-year, year."""
    return (
        day.strftime("%Y-%m"),
        f"{day.year}-Q{(day.month - 1) // 3 + 1}",
        f"{day.year}-H{1 if day.month <= 6 else 2}",
        str(day.year),
    )


def placed_on(paid_on, recorded_at):
    """The day a payment (or reversal) counts on in what reports say about people: the day
    it was paid, or the day it was recorded when that is later. A row recorded after its
    period ended counts in the period it was recorded in."""
    return max(paid_on, recorded_at.date())


def midnight(day):
    """The first moment of ``day``."""
    return datetime.combine(day, time.min)


def ended_batches(year, today):
    """The periods of ``year`` that have ended by ``today``, in groups that end on the same
    day, in the order they end: [["2026-01"], ["2026-02"], ["2026-03", "2026-Q1"], ...]."""
    periods, _children = year_periods(year)
    by_end = defaultdict(list)
    halves = half_years(year)
    for code, period in periods.items():
        # A half-year is decided with the year, after it: what the first half-year
        # shows would otherwise bind what the rest of the year may show.
        end = periods[str(year)].end if code in halves else period.end
        if end <= today:
            by_end[end].append(code)
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
                    consents.in_force(ConsentKind.STORY),
                    sa.or_(Consent.donor_id.is_(None), Consent.donor_id == donor_id),
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
                Disbursement.created_at < midnight(until),
                sa.or_(Disbursement.paid_on >= start, Disbursement.created_at >= midnight(start)),
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
                for code in within(month):
                    self.nets[code][gid] = self.nets[code].get(gid, ZERO) + amount
        self._commitments(start)
        self._timeliness(start)
        self._outcomes(start)
        self._other_funds()

    def _other_funds(self):
        """Case id -> when another fund first took on a part of the case, or the case was
        this fund's part of another fund's case: the earliest accepted referral, in either
        direction, that links the case to another fund, by when it was accepted."""
        ids = sorted({case["application_id"] for case in self.cases.values()})
        accepted = Referral.status == ReferralStatus.ACCEPTED
        before = Referral.answered_at < midnight(self.until)
        #: case id -> when it was first linked to another fund.
        self.linked_since = {}
        for begin in range(0, len(ids), 500):
            chunk = ids[begin : begin + 500]
            for column in (Referral.application_id, Referral.linked_application_id):
                for case_id, at in db.session.execute(
                    sa.select(column, sa.func.min(Referral.answered_at))
                    .where(accepted, before, column.in_(chunk))
                    .group_by(column)
                ):
                    if case_id not in self.linked_since or at < self.linked_since[case_id]:
                        self.linked_since[case_id] = at

    def also_elsewhere(self, gid, end):
        """True when the grant's case was linked to another fund by an accepted referral
        recorded before ``end`` (a day)."""
        at = self.linked_since.get(self.cases[gid]["application_id"])
        return at is not None and at < midnight(end)

    def unlisted(self, gid):
        """True when the grant's defender has not consented to be listed."""
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
                Allocation.created_at >= midnight(start),
                Allocation.created_at < midnight(until),
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
                Allocation.created_at >= midnight(start),
                Allocation.created_at < midnight(until),
                Disbursement.created_at < midnight(until),
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
        limit = midnight(end)
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
            for code in within(created_at.date()):
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
            .having(first >= midnight(start), first < midnight(self.until))
        ):
            if approved and first_paid >= approved:
                hours = (first_paid - approved).total_seconds() / 3600
                for code in within(first_paid.date()):
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
                UseOfFundsReport.submitted_at >= midnight(start),
                UseOfFundsReport.submitted_at < midnight(self.until),
            )
        ):
            paid = first_paid.get(application_id)
            if paid is None or paid > submitted:
                continue
            for code in within(submitted.date()):
                for measure, value in (("felt_safer", felt_safer), ("continued_work", continued)):
                    if value is not None:
                        self.answers[code][measure].append(value)
