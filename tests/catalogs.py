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
    """Whether a file the applicant side sees uses ``message``: one matching a glob of
    ``applicant_side.txt`` and none of its ``!`` lines (files among them staff only use)."""
    lines = [
        line.strip()
        for line in (I18N / "applicant_side.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    globs = [line for line in lines if not line.startswith("!")]
    staff_only = [line[1:] for line in lines if line.startswith("!")]

    def seen(path):
        return any(fnmatch.fnmatch(path, g) for g in globs) and not any(
            fnmatch.fnmatch(path, g) for g in staff_only
        )

    return any(seen(path) for path, _line in message.locations)


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
