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

import sqlalchemy as sa

from .. import audit
from ..core.extensions import db, reading
from ..core.sql import lock_row
from ..pools.models import Pool
from .decision import Decision
from .models import IssuedFigures
from .recorded import Recorded, ended_batches, year_periods


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
