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

from ..core.csv_file import FileRefused, Problems, column_names, file_text, unreadable
from ..core.money import MoneyError, parse_amount

COLUMNS = ("reference", "amount", "currency", "date", "status")
#: A statement larger than this is split by the bank's own export, not read here.
MAX_ROWS = 5000


class StatementError(FileRefused):
    """The statement is refused; ``problems`` lists every reason, by line."""


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


def read_statement(data):
    """The statement's rows as dicts keyed by the lower-cased header, and the problems of
    lines that are not rows of five values. Every line below the header counts towards
    :data:`MAX_ROWS`, whatever it holds."""
    reader = csv.reader(io.StringIO(file_text(data, StatementError)))
    try:
        names = column_names(next(reader, None), COLUMNS, StatementError)
        rows, problems = _rows(reader, names)
    except csv.Error:
        raise unreadable(reader.line_num, StatementError) from None
    if not rows and not problems:
        raise StatementError([_l("The file has no rows below its header.")])
    return rows, problems


def _rows(reader, names):
    """Each line below the header with its number, as a dict by column name; blank lines
    skipped, and a problem for a line of another number of values."""
    rows, problems = [], Problems(StatementError)
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
