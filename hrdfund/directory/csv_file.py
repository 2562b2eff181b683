"""The directory as CSV: the entries a manager's fund keeps, exported with every cell safe
to open in a spreadsheet, and a file of entries read and checked whole before anything of
it is stored, its problems listed by line.

Columns: code (empty for a new entry; an entry's code corrects that entry), name,
services, countries, regions, languages (several values separated by ``;``), contact,
referrers, visibility (``network`` or ``fund``), verified (the day it was last
verified, YYYY-MM-DD). Payment details
are finance's and never travel in the file. Each cell loses the characters that would make
it read otherwise (``core.forms.INVISIBLE``), as the entry's form does.
"""

import csv
import io
from datetime import date

from flask_babel import lazy_gettext as _l

from ..core import geo
from ..core.cells import csv_safe
from ..core.columns import utcnow
from ..core.csv_file import FileRefused, Problems, column_names, file_text, shown, unreadable
from ..core.forms import strip_invisible
from .forms import LANGUAGES
from .models import DirectoryEntry, Service, Visibility

COLUMNS = (
    "code",
    "name",
    "services",
    "countries",
    "regions",
    "languages",
    "contact",
    "referrers",
    "visibility",
    "verified",
)
LISTS = ("services", "countries", "regions", "languages")
MAX_ROWS = 2000


class EntriesFileError(FileRefused):
    """The file is refused; ``problems`` lists every reason, by line."""


def export_rows(entries):
    """The CSV of ``entries``, header first, every cell neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in entries:
        writer.writerow(
            csv_safe(v)
            for v in (
                e.uid,
                e.name,
                ";".join(e.services),
                ";".join(e.countries),
                ";".join(e.regions),
                ";".join(e.languages),
                e.contact,
                e.referrers or "",
                e.visibility.value,
                e.verified_on.isoformat(),
            )
        )
    return out.getvalue()


def _split(text):
    return [part.strip() for part in (text or "").split(";") if part.strip()]


def _unquote(text):
    """A cell as typed: the apostrophe the export put before a leading =, +, - or @
    taken off again."""
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r":
        return text[1:]
    return text


def read_entries(data, own_codes, today=None):
    """The file's entries as (line, code or None, fields), every line checked; raises
    :class:`EntriesFileError` listing each problem by line when any line is wrong.
    ``own_codes`` are the codes of the entries the importing fund keeps."""
    today = today or utcnow().date()
    reader = csv.reader(io.StringIO(file_text(data, EntriesFileError)))
    try:
        header = column_names(next(reader, None), COLUMNS, EntriesFileError)
        problems, found, seen = Problems(EntriesFileError), [], set()
        for values in reader:
            number = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(found) >= MAX_ROWS:
                raise EntriesFileError(
                    [_l("The file has more than %(max)d entries; split it.", max=MAX_ROWS)]
                )
            if len(values) != len(header):
                problems.line(
                    number,
                    _l(
                        "%(found)d values where the header names %(expected)d.",
                        found=len(values),
                        expected=len(header),
                    ),
                )
                continue
            row = {
                n: _unquote(strip_invisible(v).strip()) for n, v in zip(header, values, strict=True)
            }
            fields = _check_row(row, number, problems, today)
            code = row["code"] or None
            if code is not None:
                if code not in own_codes:
                    problems.line(
                        number,
                        _l("no entry of your fund has the code %(code)s.", code=shown(code)),
                    )
                elif code in seen:
                    problems.line(
                        number, _l("the code %(code)s is on an earlier line too.", code=code)
                    )
                seen.add(code)
            found.append((number, code, fields))
    except csv.Error:
        raise unreadable(reader.line_num, EntriesFileError) from None
    if problems.listed:
        raise problems.error()
    if not found:
        raise EntriesFileError([_l("The file has no entries below its header.")])
    return found


def _check_row(row, number, problems, today):
    """The row's fields as the services take them; each problem added by line."""
    fields = {}
    name = " ".join(row["name"].split())
    if not name:
        problems.line(number, _l("the name is empty."))
    elif len(name) > DirectoryEntry.NAME_MAX:
        problems.line(
            number, _l("the name is longer than %(max)d characters.", max=DirectoryEntry.NAME_MAX)
        )
    fields["name"] = name
    services = _split(row["services"])
    unknown = [s for s in services if s not in set(Service)]
    if unknown:
        problems.line(
            number,
            _l(
                "%(value)s is not a service; use %(known)s.",
                value=shown(unknown[0]),
                known=", ".join(Service),
            ),
        )
    elif not services:
        problems.line(number, _l("no service is named."))
    fields["services"] = services
    countries = []
    for text in _split(row["countries"]):
        code = geo.country_code(text)
        if code is None:
            problems.line(number, _l("%(value)s is not a country.", value=shown(text)))
        countries.append(code)
    fields["countries"] = countries
    regions = []
    by_name = {r.casefold(): r for r in geo.REGIONS}
    for text in _split(row["regions"]):
        if text.casefold() not in by_name:
            problems.line(
                number,
                _l(
                    "%(value)s is not a region; use %(known)s.",
                    value=shown(text),
                    known=", ".join(geo.REGIONS),
                ),
            )
        regions.append(by_name.get(text.casefold()))
    fields["regions"] = regions
    if not countries and not regions:
        problems.line(number, _l("no country or region is named."))
    languages = [text.lower() for text in _split(row["languages"])]
    for code in languages:
        if code not in LANGUAGES:
            problems.line(
                number,
                _l(
                    "%(value)s is not a language code; use %(known)s.",
                    value=shown(code),
                    known=", ".join(LANGUAGES),
                ),
            )
    fields["languages"] = languages
    fields["contact"] = row["contact"]
    if not row["contact"]:
        problems.line(number, _l("the contact is empty."))
    elif len(row["contact"]) > DirectoryEntry.CONTACT_MAX:
        problems.line(
            number,
            _l("the contact is longer than %(max)d characters.", max=DirectoryEntry.CONTACT_MAX),
        )
    fields["referrers"] = row["referrers"]
    if len(row["referrers"]) > DirectoryEntry.REFERRERS_MAX:
        problems.line(
            number,
            _l(
                "who may refer is longer than %(max)d characters.",
                max=DirectoryEntry.REFERRERS_MAX,
            ),
        )
    visibility = row["visibility"].lower() or Visibility.FUND.value
    if visibility not in set(Visibility):
        problems.line(
            number,
            _l("the visibility is %(value)s; use network or fund.", value=shown(visibility)),
        )
    fields["visibility"] = visibility
    try:
        verified = date.fromisoformat(row["verified"])
    except ValueError:
        problems.line(
            number,
            _l("%(value)s is not a date as YYYY-MM-DD.", value=shown(row["verified"])),
        )
        verified = None
    else:
        if verified > today:
            problems.line(number, _l("the date it was verified is in the future."))
    fields["verified_on"] = verified
    return fields
