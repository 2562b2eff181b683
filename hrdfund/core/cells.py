"""A cell of a CSV that people open in a spreadsheet."""

import re

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def csv_safe(value):
    """A CSV cell a spreadsheet will not run: text starting with =, +, -, @, a tab or a
    carriage return gets a leading apostrophe; numbers stay numbers."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not _NUMBER.match(text):
        return "'" + text
    return text
