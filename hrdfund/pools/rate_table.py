"""The fund's rate table in memory, for `flask hrdfund check` to weigh again what payments
and approvals were weighed with."""

import bisect
from decimal import Decimal

import sqlalchemy as sa

from ..core.extensions import db
from ..core.money import RATE_PLACES
from .models import ExchangeRate, confirmed_before


class RateTable:
    """The fund's rate table in memory for `check`: every entry by id, and the entries
    that count by pair in order, to find the latest on or before a day as ``table_rate``
    does (today's table: only for payments from before each kept what it was weighed
    against)."""

    def __init__(self):
        self.entries = {}
        self.pairs = {}
        for entry in db.session.execute(
            sa.select(
                ExchangeRate.id,
                ExchangeRate.fund_id,
                ExchangeRate.on_date,
                ExchangeRate.base,
                ExchangeRate.quote,
                ExchangeRate.rate,
                ExchangeRate.set_by_id,
                ExchangeRate.confirmed_at,
                ExchangeRate.counts().label("counts"),
            ).order_by(ExchangeRate.on_date, ExchangeRate.id)
        ):
            self.entries[entry.id] = entry
            if entry.counts:
                key = (entry.fund_id, frozenset((entry.base, entry.quote)))
                self.pairs.setdefault(key, []).append(entry)

    def latest(self, fund_id, paid, quote, on):
        """The entry that counts from ``paid`` to ``quote`` on the day ``on``, or None."""
        rows = self.pairs.get((fund_id, frozenset((paid, quote))), [])
        at = bisect.bisect_right(rows, (on, float("inf")), key=lambda r: (r.on_date, r.id))
        return rows[at - 1] if at else None

    @staticmethod
    def rate(entry, paid):
        """The ``entry``'s rate read from ``paid``, or None without an entry."""
        if entry is None:
            return None
        rate = Decimal(entry.rate)
        return rate if entry.base == paid else (Decimal(1) / rate).quantize(RATE_PLACES)

    @staticmethod
    def alone(entry, user_id, at):
        """Whether ``entry`` was ``user_id``'s alone at the time ``at``."""
        return (
            entry is not None
            and entry.set_by_id == user_id
            and not confirmed_before(entry.confirmed_at, at)
        )
