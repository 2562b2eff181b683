"""What a donor report says about one pool in one fixed period, built once and rendered to
PDF and CSV alike. Money to the cent where it is the pool's own account, by the dates the
rows carry, at every download; everything about the people supported only once the period
has ended, as first issued (``issue``), so that no two downloads of a period differ in it.

A handful of grouped queries, then sums in Python over at most one row per payment of the
year, so a pool with tens of thousands of payments builds in seconds.
"""

import hashlib
from datetime import datetime, time
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..cases import consents
from ..cases.models import Application, Consent, ConsentKind, Story
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import quantize
from ..core.sql import before, signed_amount, summed
from ..grants.models import Grant
from ..ledger.balances import pool_figures
from ..ledger.models import Allocation, Contribution, Disbursement, Release
from . import anonymise, rollup
from .decision import DIMENSIONS
from .issue import issue_year
from .models import VarianceNote
from .periods import parse_period
from .recorded import half_years, listed_together, shared_with

__all__ = ["build_report", "digest", "plain", "shared_with", "summaries", "summary"]

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
    received, paid, commitments, releases = _movements(pool_ids, period)
    found = {}
    for pid in pool_ids:
        opening, closing = openings[pid], closings[pid]
        payments, reversals = (paid.get((pid, flag), [ZERO] * 3) for flag in (False, True))
        result = {
            "opening_balance": _held(opening),
            "contributions": quantize(received.get((pid, False), 0)),
            "contributions_reversed": quantize(received.get((pid, True), 0)),
            "disbursements": payments[0],
            "reversals": reversals[0],
            "fees": payments[1] - reversals[1],
            "exchange_differences": payments[2] - reversals[2],
            "closing_balance": _held(closing),
            "commitments": quantize(commitments.get(pid, 0)),
            "releases": quantize(releases.get(pid, 0)),
            "committed_unpaid": closing["outstanding"],
            "available": closing["available"],
        }
        found[pid] = (result, closing)
    return found


def _held(fig):
    """What a pool held, by its figures: received, less paid out, fees and exchange
    differences."""
    return fig["received"] - fig["disbursed"] - fig["fees"] - fig["exchange_differences"]


def _movements(pool_ids, period):
    """The rows of the period by pool, summed: contributions and payments by kind
    (reversal or not), commitments and releases."""
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

    return received, paid, commitments, releases


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
            # The grant of consent the story was written under: a story written before a
            # withdrawal does not come back by itself when consent is given again.
            Consent.application_id == Story.application_id,
            consents.in_force(ConsentKind.STORY),
            sa.or_(Consent.donor_id.is_(None), Consent.donor_id == pool.donor_id),
        )
        .order_by(Story.approved_at)
    ).scalars()
    return [story.text for story in rows if story.text]


def internal_grants(pool_ids, period, limit, visible):
    """For the fund's managers, never for donors: the grants paid from these pools in the
    period on the cases ``visible`` (an SQL condition) allows, with the pool, the net
    amount paid (pool currency) and the last day paid; the most recently paid first."""
    signed = signed_amount(Disbursement)
    last_paid = sa.func.max(Disbursement.paid_on)
    query = (
        sa.select(
            Application.uid,
            Application.code,
            Application.category,
            Disbursement.pool_id,
            summed(signed).label("paid"),
            sa.func.count(Disbursement.id).label("rows"),
            last_paid.label("last_paid"),
        )
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Disbursement.pool_id.in_(pool_ids), _between(Disbursement.paid_on, period), visible)
        .group_by(Application.uid, Application.code, Application.category, Disbursement.pool_id)
        .order_by(last_paid.desc(), Application.uid, Disbursement.pool_id)
    )
    return db.session.execute(query.limit(limit)).all()


def _cells(figures, amounts):
    """(measure, label) -> Cell of one issued grid's figures of a period."""
    return {
        (measure, anonymise.TOTAL if label == anonymise.TOTAL else tuple(label)): anonymise.Cell(
            Decimal(value) if measure in amounts else value, hidden
        )
        for measure, label, value, hidden in figures["cells"]
    }


def _table(figures, dim, measures, amounts):
    """The issued breakdown of a period by ``dim``: its listed rows and the total."""
    cells = _cells(figures, amounts)
    rows = []
    if figures["broken_down"]:
        rows = [
            anonymise.Row(str(v), {m: cells[(m, (dim, v))] for m in measures})
            for v in figures["listed"].get(dim, ())
        ]
    total = anonymise.Row(anonymise.TOTAL, {m: cells[(m, anonymise.TOTAL)] for m in measures})
    return anonymise.Table(dim, measures, rows, total, broken_down=figures["broken_down"])


PEOPLE_MEASURES = ("grants", "defenders", "dependants", "amount")


def breakdowns(code, issued):
    """The four breakdowns of the period: by category, region, gender, and by period of
    payment (each month's row is that month's total, as its own report shows it), each at
    the level a donor reads it: rolled up (a category to its group, a region to its area,
    months to quarters, half-years or the year alone) where most of its rows would be
    hidden (``rollup``)."""
    people = issued[code]["people"]
    found = {}
    for dim in DIMENSIONS:
        tables = {
            level: _table(people, level, PEOPLE_MEASURES, ("amount",))
            for level in rollup.levels(dim)
            if level == dim or level in people["listed"]
        }
        found[dim] = _rolled(tables)
    found["month"] = _rolled(_by_period(code, issued, found["category"].total))
    return found


def _rolled(tables):
    """The table of the level :func:`rollup.pick` picks, saying which it stands for."""
    level = rollup.pick(tables)
    table = tables[level]
    finest = next(iter(tables))
    if level != finest:
        table.rolled_from = finest
    return table


def _by_period(code, issued, total):
    """The table by period of payment at each level it may be read at: months, then for a
    year its quarters and half-years, then the period alone (its total)."""

    def totals(codes, level):
        rows = []
        for part in codes:
            if part in issued and any(m in issued[code]["months"] for m in _months_of(part)):
                cells = _cells(issued[part]["people"], ("amount",))
                rows.append(
                    anonymise.Row(part, {m: cells[(m, anonymise.TOTAL)] for m in PEOPLE_MEASURES})
                )
        return anonymise.Table(level, PEOPLE_MEASURES, rows, total)

    tables = {"month": totals(issued[code]["months"], "month")}
    period = parse_period(code)
    if period.kind == "month":
        return tables
    if period.kind == "year":
        year = period.start.year
        tables["quarter"] = totals([f"{year}-Q{q}" for q in range(1, 5)], "quarter")
        tables["half"] = totals(half_years(year), "half")
    tables[period.kind] = anonymise.Table(period.kind, PEOPLE_MEASURES, [], total)
    return tables


def _months_of(code):
    """The codes of the months of a month, quarter or half-year."""
    if "-H" in code:
        year, half = code.split("-H")
        first = 1 if half == "1" else 7
        return [f"{year}-{m:02d}" for m in range(first, first + 6)]
    return [m.strftime("%Y-%m") for m in parse_period(code).months()]


def budget_lines(figures):
    """Budget against actual of the period: a line per category and the total, with
    the variance in amount and percent where both figures are shown."""
    table = _table(figures, "category", ("grants", "budget", "actual"), ("budget", "actual"))
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


def variance_notes(pool_id, period=None):
    """(period, line) -> the newest explanation a manager wrote of each variance of the
    pool's budget against actual (of ``period`` only, if given)."""
    query = sa.select(VarianceNote).where(VarianceNote.pool_id == pool_id)
    if period is not None:
        query = query.where(VarianceNote.period == period)
    found = {}
    for note in db.session.execute(query.order_by(VarianceNote.id)).scalars():
        found[(note.period, note.line)] = note.text
    return found


def explained(lines, notes, period):
    """``lines`` of budget against actual, each flagged one with its explanation (None
    where none is written yet)."""
    for line in lines:
        line["explanation"] = notes.get((period, line["label"])) if line["flagged"] else None
    return lines


def line_items(pool, period, issued):
    """The CSV's lines as issued (``issued``: code -> the figures of the year's periods):
    one per grant paid in the period whose defender agreed that donors may see the case,
    anonymised (the donor's code for it in this year, category and place as issued,
    committed from the pool as at the end of the period, paid in the period); and the
    grants without that consent added up in one line, their number shown only where the
    period's number of grants is. A line whose defender has withdrawn that consent since
    is no longer listed: it joins the others' line.

    The period's payments are in its account to the cent, so its total less its lines is
    what the grants not listed add up to; a quarter's lines less two of its months' give
    each listed grant's part in the third, and the quarter's number of grants less the
    codes listed in its months how many the third paid. So a quarter and its months list
    lines together or not at all, and so does the year with every period of it: once 1
    to 4 grants of one of them are not listed (or 1 to 4 of them had money paid or taken
    back in it), none issued from then on lists a line, every grant in the one line, and
    what a few defenders who did not agree were paid is never a figure a donor can work
    out. That is decided as the period's figures are issued, beside the periods issued by
    then (a month issued with its lines keeps them: the donor has them already); a
    withdrawal since that leaves 1 to 4 not listed in the period lists none of its lines
    either."""
    figures = issued[period.code]
    folded = figures["unlisted"].get("folded")
    # A period issued before that was decided: as it would be decided now.
    together = [period.code]
    if folded is None:
        together = [c for c in listed_together(period.code, period.start.year) if c in issued]
    gids = {line[0] for code in together for line in issued[code]["lines"]}
    grants = {}
    ordered = sorted(gids)
    for begin in range(0, len(ordered), 500):
        grants.update(
            (gid, (uid, application_id))
            for gid, uid, application_id in db.session.execute(
                sa.select(Grant.id, Grant.uid, Grant.application_id).where(
                    Grant.id.in_(ordered[begin : begin + 500])
                )
            )
        )
    standing = shared_with(pool.donor_id, {a for _uid, a in grants.values()})
    listing = {gid for gid, (_uid, a) in grants.items() if a in standing}
    few = folded or any(_few_apart(issued[code], listing) for code in together)
    unlisted = figures["unlisted"]
    count, hidden = unlisted["count"]
    others = {"committed": Decimal(unlisted["committed"]), "paid": Decimal(unlisted["paid"])}
    items = []
    for gid, category, place, committed, paid in figures["lines"]:
        if few or gid not in listing:
            count += 1
            others["committed"] += Decimal(committed)
            others["paid"] += Decimal(paid)
            continue
        items.append(
            {
                "code": anonymise.donor_code(pool.donor_id, grants[gid][0], period.start.year),
                "category": category,
                "place": place,
                "committed": Decimal(committed),
                "paid": Decimal(paid),
            }
        )
    if anonymise.is_small(count):
        hidden = SMALL
    elif hidden is not None:  # the period's number of grants is not shown
        hidden = anonymise.SECONDARY
    others["count"] = anonymise.Cell(count, hidden)
    if few:
        # What a grant had committed by a period's end stays the same from one period to
        # the next: a listed line's, less the sum of a period that lists none, would give
        # those of the grants never listed. Hidden there (the payments are the account's).
        others["committed"] = None
    return sorted(items, key=lambda item: item["code"]), others


def _few_apart(figures, listing):
    """Whether 1 to 4 of the period's grants were not listed when it was issued, or are
    not now (``listing``: the grants whose defender's consent stands), or 1 to 4 of those
    with money moved in it. A period issued with no line stays so, whatever is withdrawn
    since: what its PDF shows was decided for none."""
    unlisted = figures["unlisted"]
    count = unlisted["count"][0]
    # A period issued before the count of those with money moved was kept: all of them.
    moved = unlisted.get("moved", count)
    few = anonymise.few_apart(count, moved)
    for gid, _category, _place, _committed, paid in figures["lines"]:
        if gid not in listing:
            count += 1
            moved += Decimal(paid) != 0
    return few or anonymise.few_apart(count, moved)


def other_funds(figures):
    """How many of the period's defenders other funds supported too, as issued (a
    :class:`~.anonymise.Cell`), or None for a period issued before reports said it."""
    if "other_funds" not in figures:
        return None
    count, hidden = figures["other_funds"]
    return anonymise.Cell(count, hidden)


def recorded_late(pool, period):
    """What the account of the period and its figures about people count apart, to the
    cent: payments less reversals dated in the period but recorded after it ended (in the
    account; counted with people in the month recorded), and those recorded in the period
    but dated before it (counted with people here; in an earlier period's account)."""
    signed = signed_amount(Disbursement)
    end = datetime.combine(period.end, time.min)
    start = datetime.combine(period.start, time.min)

    def total(*conditions):
        return quantize(
            db.session.execute(
                sa.select(summed(signed)).where(Disbursement.pool_id == pool.id, *conditions)
            ).scalar()
        )

    return {
        "after": total(_between(Disbursement.paid_on, period), Disbursement.created_at >= end),
        "before": total(
            Disbursement.paid_on < period.start,
            Disbursement.created_at >= start,
            Disbursement.created_at < end,
        ),
    }


def build_report(pool, period, generated_at=None, today=None):
    """Everything the donor report of ``pool`` over ``period`` shows, with its digest: the
    account as the rows stand now; once the period has ended (by ``today``, UTC), what it
    says about people as first issued (issued now, flushed, if this is the first report of
    it); before that, nothing about people."""
    today = today or utcnow().date()
    money, position = summary(pool, period)
    code = period.code
    ended = period.end <= today
    report = {
        "fund": current_app.config["FUND_NAME"],
        "donor": pool.donor.name,
        "pool": pool.name,
        "currency": pool.currency,
        "period": code,
        "period_start": period.start,
        "period_end": period.end,
        "generated_at": generated_at or utcnow().replace(microsecond=0),
        "ended": ended,
        "summary": money,
        "position": position,
        "stories": stories(pool, period),
        "budget": [],
        "breakdowns": {},
        "timeliness": None,
        "outcomes": None,
        "items": [],
        "unlisted": None,
        "counted": None,
        "other_funds": None,
    }
    if ended:
        issued = issue_year(pool, period.start.year, today)
        figures = issued[code]
        late = recorded_late(pool, period)
        report.update(
            budget=explained(budget_lines(figures["budget"]), variance_notes(pool.id, code), code),
            breakdowns=breakdowns(code, issued),
            timeliness={k: figures["timeliness"][k] for k in ("decision", "payment")},
            outcomes={k: figures["outcomes"][k] for k in ("felt_safer", "continued_work")},
            counted={
                "account": money["disbursements"] - money["reversals"],
                "recorded_after": late["after"],
                "recorded_before": late["before"],
                "counted": Decimal(figures["paid"]),
            },
        )
        report["items"], report["unlisted"] = line_items(pool, period, issued)
        report["other_funds"] = other_funds(figures)
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
