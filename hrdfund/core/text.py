"""Names as people type them, made safe to show: characters nobody sees are taken out
(controls, and format characters such as U+202E, which makes what follows read
backwards, or U+200B, which makes two names look alike), except the zero-width joiner
and non-joiner, which Persian, Arabic and Indic words are spelt with; line and paragraph
separators go too. A name's spaces are tidied, and two names that differ only in case
are the same name."""

import unicodedata

#: Zero-width non-joiner and joiner: part of how a word is spelt (می‌خواهم).
JOINERS = frozenset("\u200c\u200d")


def visible(text):
    """``text`` without the characters nobody sees, joiners kept."""
    return "".join(
        char
        for char in text or ""
        if char in JOINERS
        or (unicodedata.category(char)[0] != "C" and unicodedata.category(char) not in ("Zl", "Zp"))
    )


def tidy_name(text):
    """A name as it is kept: what shows of it, its spaces tidied."""
    return " ".join(visible(text).split())


def same_name(first, second):
    """Whether two tidy names are one name to a reader: case aside."""
    return first.casefold() == second.casefold()
