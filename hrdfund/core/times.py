"""Times as people read them: a day or a month in the reader's language, as that language
writes it; a moment with its time zone, and the time left to a target in days and hours,
or how long it is overdue (in days once past two days)."""

import calendar
import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_date, format_skeleton
from flask import g, has_request_context
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .columns import utcnow

#: The furthest ahead of UTC any place's clock runs (UTC+14): its date is the latest date
#: anywhere on Earth.
AHEAD_OF_UTC = timedelta(hours=14)

#: The first day money is recorded on: reports cover the years from 2000 on, and a date
#: before it is a slip of the keyboard (1900 for 2019), refused where it is entered.
FIRST_DAY = date(2000, 1, 1)
TOO_EARLY = _l("A date before the year 2000 is not accepted: check the year.")

#: Past this many hours overdue, a target is said to be overdue by days, not hours.
OVERDUE_IN_DAYS_AFTER = 48


def latest_day(now=None):
    """The latest date it is anywhere now: a payment, a receipt or a rate dated after it
    is dated in the future wherever the person recording it is."""
    return ((now or utcnow()) + AHEAD_OF_UTC).date()


def _date_locale():
    """The reader's locale for dates: English ones are written day first, as most of the
    world writes them (6 December 2026), not the American way."""
    locale = get_locale()
    if locale is None or locale.language == "en":
        return "en_GB"
    return locale


def day(value):
    """A day in full, as the reader's language writes it: 6 December 2026, 6 de diciembre
    de 2026, 2026年12月6日; French writes the first of a month 1er juillet 2026."""
    locale = _date_locale()
    written = format_date(value, "long", locale=locale)
    if str(locale).startswith("fr") and value.day == 1 and written.startswith("1 "):
        written = "1er" + written[1:]
    return written


def month(value):
    """A month of a year: December 2026, diciembre de 2026, 2026年12月."""
    return format_skeleton("yMMMM", value, locale=_date_locale())


def months_after(day, months):
    """The same day ``months`` later, or the month's last day when it is shorter."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def quarter(value):
    """The quarter of a year ``value`` falls in: 3rd quarter 2026, 3e trimestre 2026."""
    return format_skeleton("yQQQQ", value, locale=_date_locale())


def short_month(value):
    """A month of a year, short: Dec 2026, dic 2026."""
    return format_skeleton("yMMM", value, locale=_date_locale())


def day_of_month(value):
    """A day and its month, short, for a chart's axis: 6 Dec, 12月6日."""
    return format_skeleton("MMMd", value, locale=_date_locale())


def chart_month(value):
    """A month and its year in two digits, for a chart's axis: Dec 26."""
    return format_date(value, "MMM yy", locale=_date_locale())


def reader_zone():
    """The time zone the reader's pages give times in: for staff, their fund's when it set
    one (``Fund.time_zone``); else None, and times are in UTC. Read once a request."""
    if not has_request_context():
        return None
    if "reader_zone" not in g:
        g.reader_zone = _zone_of(current_user)
    return g.reader_zone


def _zone_of(user):
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_staff", False):
        return None
    name = getattr(user.fund, "time_zone", None)
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None  # a zone this machine's tz data no longer holds: UTC, said so


def _in_reader_zone(value):
    """``value`` (naive UTC) in the reader's time zone, and the zone's short name."""
    zone = reader_zone()
    if zone is None:
        return value, "UTC"
    local = value.replace(tzinfo=UTC).astimezone(zone)
    return local.replace(tzinfo=None), local.tzname()


def day_and_time(value):
    """A moment as the reader's language writes its day, with its time of day in the
    reader's time zone (UTC on the applicant side), joined as that language joins them:
    6 December 2026, 14:05 UTC; 2026年12月6日 14:05 UTC; ۶ دسامبر ۲۰۲۶،‏ 14:05 UTC."""
    if value is None:
        return ""
    value, zone = _in_reader_zone(value)
    joined = Locale.parse(_date_locale()).datetime_formats["medium"]
    return joined.replace("{1}", day(value)).replace("{0}", f"{value:%H:%M} {zone}")


def moment(value):
    """``value`` (a naive UTC datetime, as every column stores it) in the reader's time
    zone, naming it: 2026-12-06 17:05 EAT for the staff of a fund in Nairobi, 2026-12-06
    14:05 UTC for everyone else."""
    if value is None:
        return ""
    value, zone = _in_reader_zone(value)
    return value.strftime("%Y-%m-%d %H:%M") + f" {zone}"


def clock(value):
    """The time of day of ``value`` (naive UTC) in the reader's time zone, naming it:
    17:05 EAT; 14:05 UTC."""
    if value is None:
        return ""
    value, zone = _in_reader_zone(value)
    return f"{value:%H:%M} {zone}"


def zone_name():
    """The reader's time zone as :func:`moment` names it (UTC, EAT, +03)."""
    zone = reader_zone()
    return "UTC" if zone is None else datetime.now(UTC).astimezone(zone).tzname()


def _days_and_hours(hours):
    whole = max(int(math.floor(hours)), 0)
    days, rest = divmod(whole, 24)
    if not days:
        return ngettext("%(num)d hour", "%(num)d hours", rest)
    if not rest:
        return ngettext("%(num)d day", "%(num)d days", days)
    return (
        ngettext("%(num)d day", "%(num)d days", days)
        + " "
        + ngettext("%(num)d hour", "%(num)d hours", rest)
    )


def time_left(hours):
    """``hours`` left to a target, in words: "2 days 5 hours left", "overdue by 30 hours",
    "overdue by 3 days" (in days once more than two days overdue)."""
    if hours >= 0:
        return _("%(left)s left", left=_days_and_hours(hours))
    late = -hours
    if late > OVERDUE_IN_DAYS_AFTER:
        return ngettext("overdue by %(num)d day", "overdue by %(num)d days", int(late // 24))
    return ngettext("overdue by %(num)d hour", "overdue by %(num)d hours", int(late))
