"""What a donor report says about one pool in one fixed period, built once and rendered to
PDF and CSV alike. Money to the cent where it is the pool's own account; everything about
the people supported goes through the anonymisation rules.

Reports only read. A handful of grouped queries, then sums in Python over at most one row
per payment of the period, so a pool with tens of thousands of payments builds in seconds.
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


def _group(grants, key_of, amount_of):
    """Breakdown groups: per label, grants (paid net above zero), defenders and their
    dependants counted apart, the amount and its largest single grant."""
    groups = defaultdict(lambda: {"ids": set(), "defenders": {}, "amount": ZERO, "big": ZERO})
    for gid, case in grants.items():
        for label in key_of(gid, case):
            amount = amount_of(gid, label)
            group = groups[label]
            group["amount"] += amount
            group["big"] = max(group["big"], abs(amount))
            if amount > 0:
                group["ids"].add(gid)
                group["defenders"][case["defender"]] = case["dependants"]
    return {
        label: {
            "grants": len(g["ids"]),
            "defenders": len(g["defenders"]),
            "dependants": sum(g["defenders"].values()),
            "amount": g["amount"],
            "largest": {"amount": g["big"]},
        }
        for label, g in sorted(groups.items())
    }


def breakdowns(grants, months):
    """The four breakdowns of the people and money of the period, suppressed."""
    net = {gid: sum(by_month.values(), start=ZERO) for gid, by_month in months.items()}

    def by(field):
        return anonymise.breakdown(
            field, _group(grants, lambda gid, case: [case[field]], lambda gid, _l: net[gid])
        )

    month_groups = _group(
        grants,
        lambda gid, case: [m.strftime("%Y-%m") for m in months[gid]],
        lambda gid, label: months[gid][datetime.strptime(label, "%Y-%m").date()],
    )
    everyone = _group(grants, lambda gid, case: ["all"], lambda gid, _l: net[gid]).get("all", {})
    month_groups["__total__"] = {
        k: everyone.get(k, 0) for k in ("grants", "defenders", "dependants", "amount")
    }
    return {
        "category": by("category"),
        "region": by("region"),
        "gender": by("gender"),
        "month": anonymise.breakdown("month", month_groups),
    }


def budget_against_actual(pool, period):
    """For the grants this pool committed to in the period, by category: committed, paid
    since (net), the variance in amount and percent; rows with fewer than 5 grants are
    hidden as the rules say."""
    allocations = db.session.execute(
        sa.select(Allocation.id, Allocation.grant_id, Allocation.amount, Application.category)
        .join(Grant, Grant.id == Allocation.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(Allocation.pool_id == pool.id, _between(Allocation.created_at, period))
    ).all()
    signed = signed_amount(Disbursement)
    paid = dict(
        db.session.execute(
            sa.select(Disbursement.allocation_id, summed(signed))
            .join(Allocation, Allocation.id == Disbursement.allocation_id)
            .where(
                Allocation.pool_id == pool.id,
                _between(Allocation.created_at, period),
                Disbursement.paid_on < period.end,
            )
            .group_by(Disbursement.allocation_id)
        ).all()
    )
    groups = defaultdict(
        lambda: {"grants": 0, "budget": ZERO, "actual": ZERO, "largest": {"budget": 0, "actual": 0}}
    )
    for aid, _gid, amount, category in allocations:
        group = groups[category.value]
        actual = quantize(paid.get(aid, 0))
        group["grants"] += 1
        group["budget"] += amount
        group["actual"] += actual
        group["largest"]["budget"] = max(group["largest"]["budget"], amount)
        group["largest"]["actual"] = max(group["largest"]["actual"], abs(actual))
    table = anonymise.breakdown(
        "category", dict(sorted(groups.items())), counts=("grants",), amounts=("budget", "actual")
    )
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


def _percentile(values, share):
    """Nearest-rank percentile of sorted ``values``."""
    rank = max(math.ceil(share * len(values)), 1)
    return values[rank - 1]


def timeliness(pool, period):
    """Hours from submission to decision and from decision to first payment, for grants
    this pool committed to in the period: median and 90th percentile, when 5 or more."""
    decided = db.session.execute(
        sa.select(Grant.id, Application.submitted_at, Grant.approved_at, Application.urgency)
        .join(Application, Application.id == Grant.application_id)
        .join(Allocation, Allocation.grant_id == Grant.id)
        .where(Allocation.pool_id == pool.id, _between(Allocation.created_at, period))
        .distinct()
    ).all()
    first_paid = dict(
        db.session.execute(
            sa.select(Disbursement.grant_id, sa.func.min(Disbursement.created_at))
            .where(
                Disbursement.grant_id.in_([row[0] for row in decided]),
                Disbursement.reversal_of_id.is_(None),
            )
            .group_by(Disbursement.grant_id)
        ).all()
    )
    to_decision = sorted(
        (approved - submitted).total_seconds() / 3600
        for _gid, submitted, approved, _u in decided
        if submitted and approved
    )
    to_payment = sorted(
        (first_paid[gid] - approved).total_seconds() / 3600
        for gid, _s, approved, _u in decided
        if gid in first_paid and first_paid[gid] >= approved
    )
    config = current_app.config

    def measure(hours, target):
        if len(hours) < anonymise.THRESHOLD:
            return {"cases": len(hours), "shown": False}
        return {
            "cases": len(hours),
            "shown": True,
            "median": round(_percentile(hours, 0.5)),
            "p90": round(_percentile(hours, 0.9)),
            "target": target,
            "within": round(100 * sum(1 for h in hours if h <= target) / len(hours)),
        }

    return {
        "decision": measure(to_decision, config["TARGET_DECISION_HOURS_NORMAL"]),
        "payment": measure(to_payment, config["TARGET_PAYMENT_HOURS"]),
    }


def outcomes(grants):
    """From the applicants' use-of-funds reports on the grants of the period: the share
    who felt safer and who could continue their work, when 5 or more answered."""
    application_ids = {case["application_id"] for case in grants.values()}
    answers = db.session.execute(
        sa.select(UseOfFundsReport.felt_safer, UseOfFundsReport.continued_work).where(
            UseOfFundsReport.application_id.in_(application_ids)
        )
    ).all()

    def share(values):
        given = [v for v in values if v is not None]
        if len(given) < anonymise.THRESHOLD:
            return {"answers": len(given), "shown": False}
        return {
            "answers": len(given),
            "shown": True,
            "percent": round(100 * sum(given) / len(given)),
        }

    return {
        "felt_safer": share([a[0] for a in answers]),
        "continued_work": share([a[1] for a in answers]),
    }


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


def line_items(pool, period, grants, months):
    """The CSV's lines: one per grant of the period whose defender agreed that donors may
    see the case, anonymised (the donor's code for it, category and place generalised so
    each pair is shared by 5 or more, committed from the pool as at the end of the period,
    paid in the period); and the grants without that consent added up in one line, their
    number shown only from 5."""
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
    shown = shared_with(pool.donor_id, {case["application_id"] for case in grants.values()})
    items, others = [], {"grants": 0, "committed": ZERO, "paid": ZERO}
    for gid, case in grants.items():
        committed_here = quantize(committed.get(gid, 0)) - quantize(released.get(gid, 0))
        paid_here = quantize(sum(months[gid].values(), start=ZERO))
        if case["application_id"] not in shown:
            # No consent to show this case to donors: counted in one line with the others.
            others["grants"] += 1
            others["committed"] += committed_here
            others["paid"] += paid_here
            continue
        items.append(
            {
                "code": anonymise.donor_code(pool.donor_id, case["grant_uid"]),
                "category": case["category"],
                "place": anonymise.place(case["country"]),
                "region": case["region"],
                "committed": committed_here,
                "paid": paid_here,
            }
        )
    anonymise.generalise(items)
    for item in items:
        del item["region"]
    others["count"] = anonymise.count_cell(others.pop("grants"))
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
    months = _payments_of_period(pool, period)
    grants = _cases(months)
    report = {
        "fund": current_app.config["FUND_NAME"],
        "donor": pool.donor.name,
        "pool": pool.name,
        "currency": pool.currency,
        "period": period.code,
        "period_start": period.start,
        "period_end": period.end,
        "generated_at": generated_at or utcnow().replace(microsecond=0),
        "summary": money,
        "position": position,
        "budget": budget_against_actual(pool, period),
        "breakdowns": breakdowns(grants, months),
        "timeliness": timeliness(pool, period),
        "outcomes": outcomes(grants),
        "stories": stories(pool, period),
    }
    report["items"], report["unlisted"] = line_items(pool, period, grants, months)
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
