"""Text as people type it, made safe to show. What hides or reorders the text around it
is taken out of every typed text (:data:`INVISIBLE`), and names lose controls too; the
joiners and marks Persian, Arabic and Indic writing needs stay. A name's spaces are
tidied, and two names that differ only in case are the same name."""

import re
import unicodedata

#: Characters that reorder or hide the text around them: the bidirectional embeddings,
#: overrides and isolates (a name typed with a right-to-left override reads backwards to
#: staff, "gnp.exe"), and every other character Unicode says a reader is not shown
#: (Default_Ignorable_Code_Point): zero-width spaces, word joiners, byte-order marks, soft
#: hyphens, invisible operators, the Hangul fillers (which make a name that looks empty),
#: the combining grapheme joiner, variation selectors, Mongolian free variation
#: selectors, Khmer inherent vowels, musical and shorthand format controls, and the tag
#: characters that can carry hidden words; and the interlinear annotation marks. The
#: zero-width non-joiner and joiner and the left-to-right, right-to-left and Arabic letter
#: marks stay: Persian, Arabic and Indic writing needs them, and they cannot reorder
#: letters.
INVISIBLE = re.compile(
    "[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def strip_invisible(value):
    """``value`` without the characters of :data:`INVISIBLE`; anything not text as it is."""
    return INVISIBLE.sub("", value) if isinstance(value, str) else value


def visible(text):
    """``text`` without :data:`INVISIBLE` characters, controls, or line and paragraph
    separators: what a name or a file name shows."""
    return "".join(
        char
        for char in strip_invisible(text or "")
        if unicodedata.category(char) not in ("Cc", "Zl", "Zp")
    )


def tidy_name(text):
    """A name as it is kept: what shows of it, its spaces tidied."""
    return " ".join(visible(text).split())


def same_name(first, second):
    """Whether two tidy names are one name to a reader: case aside."""
    return first.casefold() == second.casefold()
