"""Fixed reporting periods: a year, a quarter or a month, never a free range of dates, so
no two reports subtract to one person."""

import re
from dataclasses import dataclass
from datetime import date

from ..core import times
from ..core.times import FIRST_DAY

#: Reports cover these years; beyond them a period is refused, not a date overflow.
FIRST_YEAR, LAST_YEAR = FIRST_DAY.year, 2100
_PATTERN = re.compile(r"^(\d{4})(?:-(?:Q([1-4])|(0[1-9]|1[0-2])))?$")


class PeriodError(ValueError):
    """Not a year (2026), a quarter (2026-Q1) or a month (2026-03)."""


@dataclass(frozen=True)
class Period:
    """Days from ``start`` up to (not including) ``end``; ``code`` names it, as in URLs."""

    code: str
    kind: str  # year, quarter or month
    start: date
    end: date

    def months(self):
        """The first day of each month of the period, in order."""
        month = self.start
        while month < self.end:
            yield month
            month = _next_month(month)


def _next_month(day):
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def parse_period(code):
    """The Period named by ``code``: 2026, 2026-Q1 or 2026-03."""
    match = _PATTERN.match((code or "").strip().upper())
    if not match:
        raise PeriodError(
            f"{code!r} is not a year (2026), a quarter (2026-Q1) or a month (2026-03)"
        )
    year, quarter, month = int(match[1]), match[2], match[3]
    if year < FIRST_YEAR:
        raise PeriodError(f"{code!r} is before any report")
    if year > LAST_YEAR:
        raise PeriodError(f"{code!r} is after any report")
    if quarter:
        start = date(year, 3 * int(quarter) - 2, 1)
        end = date(year + 1, 1, 1) if quarter == "4" else date(year, 3 * int(quarter) + 1, 1)
        return Period(f"{year}-Q{quarter}", "quarter", start, end)
    if month:
        start = date(year, int(month), 1)
        return Period(f"{year}-{month}", "month", start, _next_month(start))
    return Period(str(year), "year", date(year, 1, 1), date(year + 1, 1, 1))


def recent_periods(first_day, today):
    """The periods a donor may download for a pool active since ``first_day``: every year,
    quarter and month that has begun by ``today``, newest first."""
    found = []
    for year in range(today.year, first_day.year - 1, -1):
        found.append(parse_period(str(year)))
    quarters = []
    for year in range(first_day.year, today.year + 1):
        for q in range(1, 5):
            period = parse_period(f"{year}-Q{q}")
            if period.end > first_day and period.start <= today:
                quarters.append(period)
    months = []
    month = date(first_day.year, first_day.month, 1)
    while month <= today:
        months.append(parse_period(month.strftime("%Y-%m")))
        month = _next_month(month)
    return {"year": found, "quarter": quarters[::-1], "month": months[::-1]}


def period_name(period):
    """A period as its reader says it: 2026, 3rd quarter 2026, August 2026 (in the reader's
    language); its code stays what addresses and files carry."""
    if period.kind == "quarter":
        return times.quarter(period.start)
    if period.kind == "month":
        return times.month(period.start)
    return str(period.start.year)
