"""Digits as people type them: a keyboard set to Arabic, Persian or a full-width script
writes ٣, ۳ or ３ where a code or an id holds 3. Codes are read with those digits as the
0 to 9 they are; anything else that merely looks like a digit (², ①) is kept as it is,
for the check that follows to refuse."""

import unicodedata


def ascii_digits(text):
    """``text`` with each decimal digit of any script written as its 0 to 9."""
    return "".join(
        str(unicodedata.decimal(char)) if unicodedata.category(char) == "Nd" else char
        for char in text or ""
    )


def plain_number(text):
    """Whether ``text`` is a whole number written in the digits 0 to 9 alone (what
    ``int`` reads the same in every case; ``str.isdigit`` also takes ² and ①)."""
    return bool(text) and text.isascii() and text.isdigit()
