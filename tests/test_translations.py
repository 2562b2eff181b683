"""The catalogs: each compiles, keeps every placeholder of its source, and translates what
its readers see: every applicant-side message (``applicant_side.txt``) in each language of
the applicant side, every message in the staff languages. The catalogs hold every message
the code and templates use now (``make i18n`` was run after the last change of words)."""

import fnmatch
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from config import Config

ROOT = Path(__file__).resolve().parent.parent
I18N = ROOT / "hrdfund" / "translations"
TRANSLATED = [code for code in Config.LANGUAGES if code != "en"]
STAFF = [code for code in Config.STAFF_LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdfr]|%[sdfr]")


def _catalog(code):
    with open(I18N / code / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh)


def _applicant_side(message):
    globs = [
        line.strip()
        for line in (I18N / "applicant_side.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, glob) for path, _line in message.locations for glob in globs)


def _pairs(message):
    """(source, translation) of each form of ``message``."""
    ids = message.id if isinstance(message.id, tuple) else (message.id,)
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return [(ids[min(i, len(ids) - 1)], s) for i, s in enumerate(strings)]


def _untranslated(message):
    return any(
        not s or (s == source and "reviewed-identical" not in message.flags)
        for source, s in _pairs(message)
    )


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_catalog_compiles_and_keeps_every_placeholder(code):
    catalog = _catalog(code)
    write_mo(io.BytesIO(), catalog, use_fuzzy=True)
    wrong = [
        (source, s)
        for message in catalog
        if message.id
        for source, s in _pairs(message)
        if s
        and sorted(PLACEHOLDER.findall(s)) != sorted(PLACEHOLDER.findall(source))
        # A plural's singular may say "one" in words where the source says %(n)d.
        and not (
            isinstance(message.id, tuple)
            and set(PLACEHOLDER.findall(s)) <= set(PLACEHOLDER.findall(source))
        )
    ]
    assert wrong == []


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_applicant_side_message_is_translated(code):
    missing = [
        message.id
        for message in _catalog(code)
        if message.id and _applicant_side(message) and _untranslated(message)
    ]
    assert missing == []


@pytest.mark.parametrize("code", STAFF)
def test_every_message_is_translated_in_the_staff_languages(code):
    missing = [message.id for message in _catalog(code) if message.id and _untranslated(message)]
    assert missing == []


def test_the_catalogs_hold_every_message_in_use(tmp_path):
    """A message added to the code or a template without ``make i18n`` would show in
    English in every language: the catalogs must hold what a fresh extraction finds."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).with_name("pybabel")),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-k",
            "ngettext:1,2",
            "-k",
            "lazy_ngettext:1,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(pot, "rb") as fh:
        used = {m.id for m in read_po(fh) if m.id}
    for code in TRANSLATED:
        held = {m.id for m in _catalog(code) if m.id}
        assert used - held == set(), code
