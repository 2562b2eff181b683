"""The catalogs as tests read them: each language's messages, which of them the applicant
side reads, and whether a message is translated."""

import fnmatch
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
I18N = ROOT / "hrdfund" / "translations"


def catalog(code):
    with open(I18N / code / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh)


def applicant_side(message):
    globs = [
        line.strip()
        for line in (I18N / "applicant_side.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, glob) for path, _line in message.locations for glob in globs)


def pairs(message):
    """(source, translation) of each form of ``message``."""
    ids = message.id if isinstance(message.id, tuple) else (message.id,)
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return [(ids[min(i, len(ids) - 1)], s) for i, s in enumerate(strings)]


def untranslated(message):
    return any(
        not s or (s == source and "reviewed-identical" not in message.flags)
        for source, s in pairs(message)
    )
