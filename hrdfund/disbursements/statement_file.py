"""A bank's or transfer provider's statement as a file: its size, encoding and columns, its
rows read as text, and the problems found in it, listed by line.

A statement is a CSV with the columns reference, amount, currency, date and status
(delivered, short or failed). Reading it changes nothing; ``reconcile`` matches its rows to
the fund's payments and applies them.
"""

import csv
import hashlib
import io

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext

from ..core.money import MoneyError, parse_amount

COLUMNS = ("reference", "amount", "currency", "date", "status")
#: A statement larger than this is split by the bank's own export, not read here.
MAX_ROWS = 5000
MAX_BYTES = 1024 * 1024
#: A refused statement lists this many problems in words, then says how many more it has.
MAX_PROBLEMS = 50


class StatementError(Exception):
    """The statement is refused; ``problems`` lists every reason, by line."""

    def __init__(self, problems):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class Problems:
    """What is wrong with a statement: the first :data:`MAX_PROBLEMS` in words, and a count
    of the rest (a file of thousands of bad lines makes a page of a few dozen)."""

    def __init__(self):
        self.listed, self.more = [], 0

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
        return StatementError(problems)


def digest(data):
    return hashlib.sha256(data).hexdigest()


def statement_amount(text):
    """A statement's amount, read as every amount is (zero allowed, no thousands
    separator: a statement's commas are its columns'); None when it does not read."""
    if "," in text:
        return None
    try:
        return parse_amount(text, allow_zero=True)
    except MoneyError:
        return None


def shown(value):
    """A value from the file as a problem quotes it: no longer than a line."""
    return value if len(value) <= 40 else value[:40] + "…"


def read_statement(data):
    """The statement's rows as dicts keyed by the lower-cased header, and the problems of
    lines that are not rows of five values. Every line below the header counts towards
    :data:`MAX_ROWS`, whatever it holds."""
    reader = csv.reader(io.StringIO(_text(data)))
    try:
        names = _column_names(next(reader, None))
        rows, problems = _rows(reader, names)
    except csv.Error:
        raise StatementError(
            [
                _l(
                    "Line %(line)d cannot be read as CSV; export the file again.",
                    line=reader.line_num,
                )
            ]
        ) from None
    if not rows and not problems:
        raise StatementError([_l("The file has no rows below its header.")])
    return rows, problems


def _text(data):
    """The file as text: refused when larger than :data:`MAX_BYTES` or not UTF-8."""
    if len(data) > MAX_BYTES:
        raise StatementError([_l("The file is larger than 1 MB; split it and import each part.")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise StatementError([_l("The file is not UTF-8 text; export it again as CSV.")]) from None


def _column_names(header):
    """The header's names, lower-cased; refused when one of :data:`COLUMNS` is missing."""
    names = [(name or "").strip().lower() for name in header or []]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise StatementError(
            [
                _l(
                    "The first line must name the columns %(columns)s; missing: %(missing)s.",
                    columns=", ".join(COLUMNS),
                    missing=", ".join(missing),
                )
            ]
        )
    return names


def _rows(reader, names):
    """Each line below the header with its number, as a dict by column name; blank lines
    skipped, and a problem for a line of another number of values."""
    rows, problems = [], Problems()
    for count, values in enumerate(reader, 1):
        if count > MAX_ROWS:
            raise StatementError(
                [
                    _l(
                        "The file has more than %(limit)d lines below its header; split it.",
                        limit=MAX_ROWS,
                    )
                ]
            )
        number = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(names):
            problems.line(
                number,
                _l(
                    "it has %(found)d values where the first line names %(named)d.",
                    found=len(values),
                    named=len(names),
                ),
            )
            continue
        rows.append((number, {n: v.strip() for n, v in zip(names, values, strict=True)}))
    return rows, problems
