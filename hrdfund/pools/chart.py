"""A pool's chart: its received, committed, disbursed and available at the start of each
of the last months and today, against its end date; drawn for its page and the
dashboard."""

from datetime import date, timedelta

from babel.numbers import format_compact_decimal
from flask_babel import get_locale, lazy_pgettext, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..core import times
from ..core.charts import Chart, Series
from ..core.money import format_money

#: How far past today a pool's chart reaches to show its end date.
END_HORIZON = timedelta(days=183)
#: Months before this one that a pool's chart goes back to.
MONTHS_BACK = 10


def chart_days(today):
    """The first day of each of the last months (this one included), then tomorrow: a
    pool's figures at the start of those days are its chart's points, the last one as
    today closes."""
    year, month = today.year, today.month
    firsts = []
    for _step in range(MONTHS_BACK + 1):
        firsts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return [*reversed(firsts), today + timedelta(days=1)]


def _locale():
    return str(get_locale() or "en")


def _compact(value):
    return format_compact_decimal(value, locale=_locale(), fraction_digits=1)


#: The lines of a pool's chart, in the order of its figures.
POOL_LINES = [
    ("received", lazy_pgettext("money", "Received")),
    ("committed", _l("Committed")),
    ("disbursed", _l("Disbursed")),
    ("available", _l("Available")),
]


def pool_chart(pool, days, history, today, key):
    """A pool's received, committed, disbursed and available at the start of each of
    ``days`` (the last one is tomorrow: today's close), against its end date."""
    first, last = days[0], days[-1]
    end = pool.ends_on
    reach = last
    if end is not None and last < end <= last + END_HORIZON:
        reach = end
    span = max((reach - first).days, 1)
    marker = None
    if end is not None and first <= end <= reach:
        marker = ((end - first).days / span, _("Ends %(day)s", day=times.day_of_month(end)))
    if end is None:
        ending = _("It has no end date.")
    elif end < today:
        ending = _("It ended on %(day)s.", day=times.day(end))
    else:
        left = (end - today).days
        ending = ngettext(
            "It ends on %(day)s, in %(num)d day.",
            "It ends on %(day)s, in %(num)d days.",
            left,
            day=times.day(end),
        )
    labels = [times.chart_month(day) for day in days[:-1]] + [_("Today")]
    # A figure that stays the same from month to month is written once.
    locale, words = _locale(), {}

    def written(amount):
        if amount not in words:
            words[amount] = format_money(amount, pool.currency, locale)
        return words[amount]

    return Chart(
        key=key,
        title=_("%(pool)s over time", pool=pool.name),
        summary=_(
            "Received, committed, disbursed and available in %(currency)s at the start of "
            "each month and today.",
            currency=pool.currency,
        )
        + " "
        + ending,
        labels=labels,
        series=[
            Series(
                str(words),
                [point[name] for point in history],
                [written(point[name]) for point in history],
            )
            for name, words in POOL_LINES
        ],
        kind="lines",
        axis=_compact,
        positions=[(day - first).days / span for day in days],
        marker=marker,
    )


def _locale():
    return str(get_locale() or "en")


def _compact(value):
    return format_compact_decimal(value, locale=_locale(), fraction_digits=1)
