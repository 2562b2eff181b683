"""A CSV file a person uploads to be read whole (a bank's statement, the directory's
entries): its size and encoding, its header, and the problems found in it, listed by line,
so that the page names every reason at once and nothing is applied from a file with one."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from .forms import strip_invisible

MAX_BYTES = 1024 * 1024
#: A refused file lists this many problems in words, then says how many more it has.
MAX_PROBLEMS = 50


class FileRefused(ValueError):
    """The file is refused; ``problems`` lists every reason, by line."""

    def __init__(self, problems):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class Problems:
    """What is wrong with a file: the first :data:`MAX_PROBLEMS` in words, and a count of
    the rest (a file of thousands of bad lines makes a page of a few dozen). ``error`` is
    the :class:`FileRefused` kind raised for it."""

    def __init__(self, error=FileRefused):
        self.listed, self.more, self._error = [], 0, error

    def add(self, message):
        if len(self.listed) < MAX_PROBLEMS:
            self.listed.append(message)
        else:
            self.more += 1

    def line(self, number, message):
        self.add(_l("Line %(line)d: %(problem)s", line=number, problem=message))

    def __bool__(self):
        return bool(self.listed)

    def error(self):
        """The refusal, naming each listed problem and how many more there are."""
        problems = list(self.listed)
        if self.more:
            problems.append(
                lazy_ngettext(
                    "%(num)d more problem on a later line is not listed; correct these and "
                    "check the file again.",
                    "%(num)d more problems on later lines are not listed; correct these and "
                    "check the file again.",
                    self.more,
                )
            )
        return self._error(problems)


def shown(value):
    """A value from the file as a problem quotes it: no longer than a line."""
    return value if len(value) <= 40 else value[:40] + "…"


def file_text(data, error=FileRefused):
    """The file as text: refused when larger than :data:`MAX_BYTES` or not UTF-8."""
    if len(data) > MAX_BYTES:
        raise error([_l("The file is larger than 1 MB; split it and import each part.")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error([_l("The file is not UTF-8 text; save it again as CSV.")]) from None


def column_names(header, columns, error=FileRefused):
    """The header's names, lower-cased; refused when one of ``columns`` is missing."""
    names = [strip_invisible(name or "").strip().lower() for name in header or []]
    missing = [c for c in columns if c not in names]
    if missing and len(names) == 1 and any(mark in names[0] for mark in (";", "\t")):
        # A spreadsheet set to a language that writes cents after a comma saves "CSV"
        # with semicolons (or tabs) between the columns.
        raise error(
            [
                _l(
                    "The columns are separated by semicolons or tabs, not commas: save the"
                    " file again as CSV with commas between the columns (in a spreadsheet,"
                    " “CSV (comma-separated)”)."
                )
            ]
        )
    if missing:
        raise error(
            [
                _l(
                    "The first line must name the columns %(columns)s; missing: %(missing)s.",
                    columns=", ".join(columns),
                    missing=", ".join(missing),
                )
            ]
        )
    return names


def unreadable(line, error=FileRefused):
    """The refusal of a file whose line ``line`` is not CSV."""
    return error([_l("Line %(line)d cannot be read as CSV; save the file again.", line=line)])
