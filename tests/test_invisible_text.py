"""Text that reads differently from what it holds never reaches staff: a name typed with a
right-to-left override, a reference with zero-width spaces, a payment reference with a
hidden word in tag characters. Every field that takes text drops those characters; the
joiners and marks that Persian, Arabic and Indic writing needs stay."""

import sqlalchemy as sa
import wtforms
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import PasswordField, StringField

from hrdfund.cases.forms import application_form_class
from hrdfund.cases.models import Application
from hrdfund.core.extensions import db
from hrdfund.core.forms import INVISIBLE, strip_invisible
from hrdfund.core.support import Category
from tests.conftest import login, payment_data, start_application

#: A right-to-left override that makes "exe.gnp" read "png.exe", a zero-width space, a
#: word joiner, a byte-order mark, an isolate, "hi" written in tag characters, a soft
#: hyphen, the Hangul fillers, the combining grapheme joiner, variation selectors, a
#: musical and a shorthand format control.
HIDDEN = (
    "\u202e\u200b\u2060\ufeff\u2067\U000e0068\U000e0069\u00ad"
    "\u115f\u1160\u3164\uffa0\u034f\ufe00\ufe0f\U000e0100\U000e01ef"
    "\U0001d173\U0001d17a\U0001bca0\U0001bca3"
)
#: A Persian word with a zero-width non-joiner, an Arabic word between right-to-left marks
#: and after an Arabic letter mark, a Hindi conjunct shown half-formed by a zero-width
#: joiner, and "1" between left-to-right marks.
KEPT = "می\u200cخواهم \u200fسلام\u200f \u061cسلام क\u094d\u200dष \u200e1\u200e"
#: Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 15.1): the
#: characters a reader is not shown.
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
#: Of those, the joiners and marks writing needs: they stay.
WRITING_NEEDS = {0x200C, 0x200D, 0x200E, 0x200F, 0x061C}


def test_the_characters_that_reorder_or_hide_text_go_and_writing_keeps_its_joiners():
    assert strip_invisible(f"Ana{HIDDEN} Gomez") == "Ana Gomez"
    assert strip_invisible(KEPT) == KEPT
    assert strip_invisible(None) is None
    assert not INVISIBLE.search("\u200c\u200d\u200e\u200f\u061c")


def test_every_character_a_reader_is_not_shown_goes_but_the_joiners_and_marks():
    ignorable = {c for first, last in DEFAULT_IGNORABLE for c in range(first, last + 1)}
    kept = [hex(c) for c in sorted(ignorable - WRITING_NEEDS) if INVISIBLE.sub("", chr(c))]
    assert kept == []
    assert [hex(c) for c in sorted(WRITING_NEEDS) if INVISIBLE.search(chr(c))] == []
    # A name of Hangul fillers only looks empty, and is.
    assert strip_invisible("\u3164\u3164") == ""


def _every_subclass(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _every_subclass(sub)


def _text_fields(form):
    for field in form:
        if isinstance(field, wtforms.FormField):
            yield from _text_fields(field.form)
        elif isinstance(field, wtforms.FieldList):
            for entry in field:
                yield from (_text_fields(entry.form) if hasattr(entry, "form") else [entry])
        elif isinstance(field, StringField) and not isinstance(field, PasswordField):
            yield field


def test_every_text_field_of_every_form_drops_them(app):
    """Each form of the app, sent text with invisible characters in every field that takes
    text, holds the text without them; passwords are kept exactly as typed."""
    for category in Category:
        application_form_class(category)
    forms = [f for f in _every_subclass(FlaskForm) if f.__module__.startswith("hrdfund.")]
    checked = 0
    for form_class in forms:
        with app.test_request_context(method="POST"):
            try:
                empty = form_class(formdata=None)
            except TypeError:
                continue  # a form built with arguments of its own, checked through its page
            names = [field.name for field in _text_fields(empty)]
            data = MultiDict({name: f"x{HIDDEN}y" for name in names})
            data.update({"password": f"pw{HIDDEN}", "current": f"pw{HIDDEN}"})
            form = form_class(formdata=data)
            for field in _text_fields(form):
                assert field.data == "xy", (form_class.__qualname__, field.name, field.data)
                checked += 1
            for field in form:
                if isinstance(field, PasswordField) and field.data:
                    assert field.data == f"pw{HIDDEN}"
    assert checked > 40


def test_staff_read_names_and_references_as_they_are_written(app, client, make_user, fund):
    """A defender's name and a reference sent with an override come back to the form and
    to staff without it; a Persian name keeps its joiner."""
    applicant = make_user("applicant")
    login(client, applicant)
    uid = start_application(client, "medical")
    client.post(
        f"/applications/{uid}/edit",
        data={
            "defender_name": f"Ana{HIDDEN} Gomez",
            "references-0-name": f"exe.{HIDDEN}gnp",
            "references-1-name": KEPT,
            "details-provider": f"Clinic{HIDDEN}",
            "save": "1",
        },
    )
    case = db.session.execute(sa.select(Application).where(Application.uid == uid)).scalar_one()
    db.session.refresh(case)
    assert case.defender_name == "Ana Gomez"
    assert [r.name for r in case.references] == ["exe.gnp", KEPT]
    assert case.details["provider"] == "Clinic"
    page = client.get(f"/applications/{uid}/edit").get_data(as_text=True)
    assert not INVISIBLE.search(page) and KEPT in page


def test_a_payment_reference_and_a_note_lose_them_too(app, money_world):
    """Finance's references and staff notes go through the same fields."""
    from hrdfund.ledger.models import Disbursement
    from hrdfund.reviews.models import CaseNote

    grant = money_world.grant("3000")
    money_world.plan(grant)
    finance = app.test_client()
    login(finance, money_world.finance)
    finance.post(
        f"/applications/{grant.application.uid}/payments",
        data=payment_data(grant, **{"pay-reference": f"TRF{HIDDEN}-1", "pay-fee": "0"}),
    )
    client = app.test_client()
    login(client, money_world.m1)
    client.post(
        f"/applications/{grant.application.uid}/notes",
        data={"note-kind": "note", "note-body": f"Called{HIDDEN} the partner"},
    )
    assert [n.body for n in db.session.scalars(sa.select(CaseNote))] == ["Called the partner"]
    assert db.session.scalars(sa.select(Disbursement)).one().reference == "TRF-1"
