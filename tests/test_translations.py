"""The catalogs: each compiles, keeps every placeholder of its source, and translates what
its readers see: every applicant-side message (``applicant_side.txt``) in each language of
the applicant side, every message in the staff languages. The catalogs hold every message
the code and templates use now (``make i18n`` was run after the last change of words)."""

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from config import Config
from tests.catalogs import I18N, ROOT, applicant_side, catalog, pairs, untranslated

TRANSLATED = [code for code in Config.LANGUAGES if code != "en"]
STAFF = [code for code in Config.STAFF_LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdfr]|%[sdfr]")


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_catalog_compiles_and_keeps_every_placeholder(code):
    messages = catalog(code)
    write_mo(io.BytesIO(), messages, use_fuzzy=True)
    wrong = [
        (source, s)
        for message in messages
        if message.id
        for source, s in pairs(message)
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
        for message in catalog(code)
        if message.id and applicant_side(message) and untranslated(message)
    ]
    assert missing == []


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_readme_lists_every_translation_left_for_a_native_speaker(code):
    """A translation marked fuzzy is shown but not settled: the README names each one, in
    its language's line, so a native speaker knows what to review."""
    readme = (ROOT / "README.md").read_text()
    line = next((ln for ln in readme.splitlines() if f"(`{code}`):" in ln), "")
    fuzzy = [
        message.id if isinstance(message.id, str) else message.id[0]
        for message in catalog(code)
        if message.id and message.fuzzy
    ]
    assert [m for m in fuzzy if f"“{m}”" not in line] == []


@pytest.mark.parametrize("code", STAFF)
def test_every_message_is_translated_in_the_staff_languages(code):
    missing = [message.id for message in catalog(code) if message.id and untranslated(message)]
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
            "-k",
            "lazy_pgettext:1c,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(pot, "rb") as fh:
        used = {(m.context, m.id) for m in read_po(fh) if m.id}
    for code in TRANSLATED:
        held = {(m.context, m.id) for m in catalog(code) if m.id}
        assert used - held == set(), code


@pytest.mark.parametrize("code", TRANSLATED)
def test_no_translation_brings_markup_its_source_has_not(code):
    """A page shows a translation as it is written: a stray < or & in it would be markup."""
    added = [
        (source, s)
        for message in catalog(code)
        if message.id
        for source, s in pairs(message)
        if s and any(s.count(mark) != source.count(mark) for mark in "<>&")
    ]
    assert added == []


def test_french_writes_its_apostrophe_one_way():
    """French pages wrote "d'abord" beside "l’enveloppe": every French message uses the
    typographic apostrophe."""
    straight = [
        s for message in catalog("fr") if message.id for _source, s in pairs(message) if "'" in s
    ]
    assert straight == []


def test_arabic_counts_from_11_to_99_take_the_accusative():
    """Arabic's catalog picks its fifth form for 11 to 99 ("30 يومًا") and its fourth for
    100 to 102 ("100 يوم"), as its plural rule says: the retention notice read "730 يوم"
    with the two written the other way round. Every message whose two differ writes the
    accusative in the fifth."""
    with open(I18N / "ar" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        arabic = read_po(fh, locale="ar")
    assert arabic.plural_expr.replace(" ", "").endswith("n%100>=0&&n%100<=2?4:5)")
    swapped = [
        m.id[0]
        for m in arabic
        if isinstance(m.id, tuple) and "ًا" in m.string[4] and "ًا" not in m.string[5]
    ]
    assert swapped == []
    from babel.support import Translations

    with open(I18N / "ar" / "LC_MESSAGES" / "messages.mo", "rb") as fh:
        translations = Translations(fh)
    days = translations.ngettext("%(num)d day", "%(num)d days", 730) % {"num": 730}
    assert days == "730 يومًا"
    assert translations.ngettext("%(num)d day", "%(num)d days", 100) % {"num": 100} == "100 يوم"
