"""The network report: what a fund's referrals to and from other funds came to over a
period its managers choose. Built from the referrals that involve the fund, grouped by the
other fund and by kind of support, so a fund on another server counts like a member fund.

A fund's managers read only referrals their own fund made or received: the other fund's
name, counts, months and hours, and the codes of their own fund's cases they may open;
never a name, a reason or anything else of a case. The network's administrator reads
counts over the whole network by fixed quarters, each as it stood at its end, small counts
hidden as in donor reports, with no fund and no case named.
"""

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace

import sqlalchemy as sa

from ..auth.models import Fund
from ..cases.models import Application
from ..core.extensions import db
from ..core.support import Category
from ..network.models import Referral, ReferralStatus
from ..network.support import money_by_month
from .anonymise import THRESHOLD, TOTAL, Cell
from .grid import Grid
from .periods import parse_period

#: The states a referral is counted in, in the order the report shows them.
STATES = (
    ReferralStatus.ACCEPTED,
    ReferralStatus.DECLINED,
    ReferralStatus.WITHDRAWN,
    ReferralStatus.PENDING,
)
#: The longest period the report covers at once, in days (ten years).
LONGEST = 3660


class RangeError(ValueError):
    """Dates the report cannot cover, in words for the page."""


@dataclass
class Counts:
    """One line of the report: how many referrals, by state; how long answers took; the
    months of support accepted, and the months the accepting fund's plan pays."""

    referrals: int = 0
    states: dict = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    hours: list = field(default_factory=list)
    months_accepted: int = 0
    months_planned: int = 0

    def add(self, row, planned):
        self.referrals += 1
        self.states[row.status] += 1
        if row.answered_at is not None and row.status in (
            ReferralStatus.ACCEPTED,
            ReferralStatus.DECLINED,
        ):
            answered = row.answer_made_at or row.answered_at
            self.hours.append((answered - row.created_at).total_seconds() / 3600)
        if row.status == ReferralStatus.ACCEPTED:
            if row.months_from is not None:
                self.months_accepted += row.months_to - row.months_from + 1
            self.months_planned += planned

    @property
    def median_hours(self):
        """Median hours from the referral to its answer (accepted or declined), or None."""
        return round(statistics.median(self.hours)) if self.hours else None

    @property
    def answered(self):
        return len(self.hours)


@dataclass
class Side:
    """The referrals the fund made, or those it received: in total, by the other fund
    (by name), and by kind of support."""

    total: Counts = field(default_factory=Counts)
    by_fund: dict = field(default_factory=lambda: defaultdict(Counts))
    by_category: dict = field(default_factory=lambda: defaultdict(Counts))

    def add(self, row, other, planned):
        for counts in (self.total, self.by_fund[other], self.by_category[row.category]):
            counts.add(row, planned)

    def funds(self):
        return sorted(self.by_fund.items())

    def categories(self):
        order = list(Category)
        return sorted(self.by_category.items(), key=lambda item: order.index(item[0]))


def check_range(start, end):
    """Refuse a period that ends before it starts, or is longer than the report covers."""
    if end < start:
        raise RangeError("order")
    if (end - start).days > LONGEST:
        raise RangeError("long")


def _bounds(start, end):
    """The first moment of ``start`` and the first moment after ``end`` (both days in);
    the last day a date can name ends at the last moment there is."""
    after = datetime.max if end == date.max else datetime.combine(end + timedelta(days=1), time.min)
    return datetime.combine(start, time.min), after


def _rows(condition, start, end):
    first, after = _bounds(start, end)
    return db.session.execute(
        sa.select(
            Referral.id,
            Referral.application_id,
            Referral.linked_application_id,
            Referral.from_fund_id,
            Referral.to_fund_id,
            Referral.category,
            Referral.status,
            Referral.months_from,
            Referral.months_to,
            Referral.covered_from,
            Referral.covered_to,
            Referral.created_at,
            Referral.answered_at,
            Referral.answer_made_at,
            Referral.withdrawn_at,
        )
        .where(condition, Referral.created_at >= first, Referral.created_at < after)
        .order_by(Referral.created_at, Referral.id)
    ).all()


def _planned_months(rows):
    """Referral id -> the months of support the accepting fund gives: those its plan pays
    on its own case, or, for a fund on another server, those its answer says it supports."""
    linked = {row.linked_application_id for row in rows if row.linked_application_id}
    paid = {case: len(figures["months"]) for case, figures in money_by_month(linked).items()}
    return {
        row.id: paid.get(row.linked_application_id, 0)
        if row.linked_application_id
        else (row.covered_to - row.covered_from + 1 if row.covered_from else 0)
        for row in rows
    }


def fund_report(fund_id, start, end, visible):
    """The network report of fund ``fund_id`` over the days ``start`` to ``end`` (both
    in), by when each referral was made: what it made and received, by other fund and by
    kind of support; and its own cases another fund took a part of. ``visible``, an SQL
    condition on Application, is what the reader may open: a referral of a case they may
    not (a conflict they declared), or that made a case of the fund they may not, is left
    out, as their lists of referrals leave it out; any day can be asked, so counting it
    would tell them its day, fund and answer."""
    check_range(start, end)
    opened = sa.select(Application.id).where(visible)
    rows = _rows(
        sa.or_(
            sa.and_(Referral.from_fund_id == fund_id, Referral.application_id.in_(opened)),
            sa.and_(
                Referral.to_fund_id == fund_id,
                sa.or_(
                    Referral.linked_application_id.is_(None),
                    Referral.linked_application_id.in_(opened),
                ),
            ),
        ),
        start,
        end,
    )
    others = {r.to_fund_id if r.from_fund_id == fund_id else r.from_fund_id for r in rows}
    names = dict(db.session.execute(sa.select(Fund.id, Fund.name).where(Fund.id.in_(others))).all())
    planned = _planned_months(rows)
    made, received = Side(), Side()
    helped = defaultdict(list)
    for row in rows:
        months = planned[row.id]
        if row.from_fund_id == fund_id:
            made.add(row, names[row.to_fund_id], months)
            if row.status == ReferralStatus.ACCEPTED:
                helped[row.application_id].append((row, names[row.to_fund_id], months))
        else:
            received.add(row, names[row.from_fund_id], months)
    codes = {
        case_id: (uid, code)
        for case_id, uid, code in db.session.execute(
            sa.select(Application.id, Application.uid, Application.code).where(
                Application.id.in_(helped), visible
            )
        )
    }
    gaps = [
        {
            "case": codes[case_id][0],
            "code": codes[case_id][1],
            "fund": name,
            "category": row.category,
            "months_from": row.months_from,
            "months_to": row.months_to,
            "months_planned": months,
        }
        for case_id, parts in helped.items()
        if case_id in codes
        for row, name, months in parts
    ]
    gaps.sort(key=lambda gap: (gap["case"], gap["fund"]))
    return {
        "start": start,
        "end": end,
        "made": made,
        "received": received,
        "gap_cases": len(helped),
        "gaps": gaps,
    }


def ended_quarters(year, today):
    """The quarters of ``year`` that have ended by ``today``, in order."""
    quarters = (parse_period(f"{year}-Q{q}") for q in range(1, 5))
    return [quarter for quarter in quarters if quarter.end <= today]


def last_reported_year(today):
    """The year of the latest quarter that has ended by ``today``."""
    return today.year if ended_quarters(today.year, today) else today.year - 1


def report_years(today):
    """The years the network's totals can be read for, newest first: from the year of the
    first referral (or the latest) to the year of the latest quarter that has ended."""
    latest = last_reported_year(today)
    first = db.session.scalar(sa.select(sa.func.min(Referral.created_at)))
    earliest = min(first.year, latest) if first else latest
    return list(range(latest, earliest - 1, -1))


def _as_at(row, moment):
    """``row`` as the referral stood just before ``moment``: an answer or a withdrawal
    recorded since is not counted yet (it was still waiting)."""
    status = row.status
    if status == ReferralStatus.WITHDRAWN:
        done = row.withdrawn_at or row.created_at
    elif status in (ReferralStatus.ACCEPTED, ReferralStatus.DECLINED):
        done = row.answered_at
    else:
        done = None
    if done is None or done >= moment:
        status = ReferralStatus.PENDING
    return SimpleNamespace(**{**row._asdict(), "status": status})


def _quarter(rows, quarter):
    """The figures of one ended quarter, decided on their own and as they stood at its end,
    so that they read the same whenever they are read: counts by kind of support and by
    state, small ones hidden with whatever would give them away; the median hours to an
    answer from 5 answers; the funds involved."""
    end = datetime.combine(quarter.end, time.min)
    side, funds = Side(), set()
    for row in rows:
        row = _as_at(row, end)
        side.total.add(row, 0)
        side.by_category[row.category].add(row, 0)
        funds |= {row.from_fund_id, row.to_fund_id}
    code, total = quarter.code, side.total
    grid = Grid(
        {code: ()},
        {"category": [c.value for c in Category], "state": [s.value for s in STATES]},
        ("referrals",),
    )
    grid.put(code, TOTAL, {"referrals": total.referrals})
    grid.population[code] = total.referrals
    for category, counts in side.by_category.items():
        grid.put(code, ("category", category.value), {"referrals": counts.referrals})
    grid.listed[(code, "category")] = [c.value for c, _n in side.categories()]
    for state in STATES:
        grid.put(code, ("state", state.value), {"referrals": total.states[state]})
    grid.listed[(code, "state")] = [s.value for s in STATES if total.states[s]]
    grid.protect()
    broken_down = code not in grid.dropped
    return {
        "quarter": quarter,
        "broken_down": broken_down,
        "total": grid.cell("referrals", code),
        "cells": {
            dim: {v: grid.cell("referrals", code, (dim, v)) for v in grid.listed[(code, dim)]}
            for dim in ("category", "state")
        }
        if broken_down
        else {"category": {}, "state": {}},
        "median": total.median_hours if total.answered >= THRESHOLD else None,
        "funds": len(funds) if broken_down else None,
    }


def network_totals(year, today):
    """Over the whole network, for its administrator: the referrals made between funds in
    each quarter of ``year`` that has ended by ``today``, by kind of support and by state,
    as donors read their figures. Fixed periods only, each quarter decided on its own and
    as it stood at its end, so that no two readings differ (a figure shown or hidden then
    is shown or hidden whenever the quarter is read, and none is the difference of
    others); each breakdown apart; counts under 5 shown as "fewer than 5", with whatever
    would give them away (a total less its other rows) hidden too; a quarter of fewer than
    5 referrals not broken down at all (its kinds, states and funds not even named); the
    median hours to an answer from 5 answers. No fund and no case is named."""
    quarters = [
        _quarter(
            _rows(sa.true(), quarter.start, quarter.end - timedelta(days=1)),
            quarter,
        )
        for quarter in ended_quarters(year, today)
    ]

    def lines(dim, values):
        shown = [v for v in values if any(v.value in q["cells"][dim] for q in quarters)]
        return [
            (
                value,
                [
                    q["cells"][dim].get(value.value, Cell(0)) if q["broken_down"] else None
                    for q in quarters
                ],
            )
            for value in shown
        ]

    return {
        "year": year,
        "quarters": quarters,
        "categories": lines("category", list(Category)),
        "states": lines("state", STATES),
    }


def default_range(today):
    """The period the report opens on: the twelve months up to today."""
    return today - timedelta(days=364), today
