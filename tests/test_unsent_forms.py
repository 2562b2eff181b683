"""A form sent after its session ended (idle too long), or from a page open past its CSRF
token's hours, loses nothing typed: it is not sent, it waits encrypted on the server (one
per account), and the same person signing in again in the same browser lands on its page
with it filled in as they sent it. No one else finds it, it is forgotten after its
minutes, and no password or code is ever kept."""

import io
import re
import time

import pytest
import sqlalchemy as sa
from itsdangerous import TimestampSigner

from hrdfund.auth import refused
from hrdfund.auth.models import RefusedForm
from hrdfund.cases import steps
from hrdfund.cases.models import ApplicationStatus, Document
from hrdfund.core.extensions import db
from hrdfund.ledger.models import Disbursement
from hrdfund.reviews.models import CaseNote
from tests.conftest import (
    COOKIE,
    PASSWORD,
    application_by_uid,
    count_rows,
    csrf_token,
    input_value,
    login,
    make_case,
    pay,
    start_application,
)
from tests.pdfs import PDF

STORY = "They followed me home from the court on Tuesday night (canary-7741)."
SIGNED_OUT = "Your session ended. Please sign in again."
KEPT = "What you were sending was not saved, but it is kept for 30 minutes"
FILLED_IN = "It is filled in again as you typed it: check it, then send it."


def _step(uid, step=steps.DEFENDER):
    return f"/applications/{uid}/steps/{step}"


def _idle(client, minutes):
    with client.session_transaction() as session:
        session["seen_at"] -= minutes * 60


def _text(response):
    return response.get_data(as_text=True)


def _step_left_open(client, make_user):
    """A defender opens the first step of a new draft and leaves it open past the hour;
    returns the defender, the case, the form's name and the session cookie, now ended."""
    defender = make_user("applicant")
    login(client, defender)
    uid = start_application(client)
    mark = input_value(_text(client.get(_step(uid))), "_form")
    _idle(client, 61)
    return defender, uid, mark, client.get_cookie(COOKIE).value


def _sent_after_the_session_ended(client, make_user):
    """A defender leaves the first step open past the hour, then saves their account of
    the threat; returns the defender, the case and the answer to the save."""
    defender, uid, mark, _expired = _step_left_open(client, make_user)
    answer = client.post(
        _step(uid),
        data={"_form": mark, "defender_name": "Ana Teller", "threat": STORY, "save": "1"},
    )
    return defender, uid, answer


def test_a_step_sent_after_the_session_ended_comes_back_filled_in_after_signing_in(
    client, make_user
):
    defender, uid, answer = _sent_after_the_session_ended(client, make_user)
    assert answer.status_code == 302 and answer.location == "/login"
    # Not sent: nothing of it was saved.
    assert application_by_uid(uid).threat is None
    page = _text(client.get("/login"))
    assert SIGNED_OUT in page and KEPT in page
    assert STORY not in page
    # The same person signing in again goes back to the step, filled in as sent.
    assert login(client, defender).location == _step(uid)
    back = _text(client.get(_step(uid)))
    assert STORY in back and 'value="Ana Teller"' in back
    assert FILLED_IN in back
    # Shown once: a reload shows the step as saved.
    again = _text(client.get(_step(uid)))
    assert STORY not in again and FILLED_IN not in again
    # Sent again, it is saved.
    mark = input_value(again, "_form")
    client.post(_step(uid), data={"_form": mark, "threat": STORY, "save": "1"})
    assert application_by_uid(uid).threat == STORY


def test_no_one_else_finds_the_form_kept(app, client, make_user):
    """Another account signing in on that browser, and the same account on another
    browser, each land on their home page, and the text is on no page they open."""
    defender, uid, _answer = _sent_after_the_session_ended(client, make_user)
    other = make_user("applicant")
    assert login(client, other).location == "/"
    assert STORY not in _text(client.get("/my"))
    client.post("/logout")

    elsewhere = app.test_client()
    assert login(elsewhere, defender).location == "/"
    assert STORY not in _text(elsewhere.get(_step(uid)))


def test_it_waits_through_a_closed_browser_and_another_persons_sign_in(app, client, make_user):
    """On a shared phone: the browser is closed (its session cookie goes, the browser's
    own token stays), someone else signs in and out, then the defender signs in: the
    form is still theirs to find."""
    defender, uid, _answer = _sent_after_the_session_ended(client, make_user)
    client.delete_cookie(COOKIE)
    other = make_user("applicant")
    assert login(client, other).location == "/"
    client.post("/logout")
    assert login(client, defender).location == _step(uid)
    page = _text(client.get(_step(uid)))
    assert STORY in page
    assert "What you were sending is filled in again below" in page


def test_a_password_is_not_kept_whatever_form_it_claims_to_be(client, make_user):
    """The password form carries no name; one sent with a name forged for it keeps
    nothing of its passwords (nor anything, as nothing else was typed)."""
    login(client, make_user("applicant"))
    _idle(client, 61)
    forged = {
        "_form": "PasswordChangeForm:password-",
        "password-current": PASSWORD,
        "password-new": "a new secret passphrase 99",
        "password-again": "a new secret passphrase 99",
    }
    sent = client.post(
        "/account/password", data=forged, headers={"Referer": "http://localhost/account"}
    )
    assert sent.location == "/login"
    assert KEPT not in _text(client.get("/login"))
    assert count_rows(RefusedForm) == 0


def test_a_document_sent_after_the_session_ended_asks_for_its_file_again(client, make_user, fund):
    """A file is never kept: the case page says the form was not sent and asks for the
    file again, beside the kind of document chosen."""
    defender = make_user("applicant")
    case = make_case(fund, applicant_id=defender.id)
    login(client, defender)
    page = f"/applications/{case.uid}"
    html = _text(client.get(page))
    upload = re.search(r'<form[^>]*action="[^"]*/documents".*?</form>', html, re.S).group(0)
    _idle(client, 61)
    answer = client.post(
        f"{page}/documents",
        content_type="multipart/form-data",
        data={
            "_form": input_value(upload, "_form"),
            "kind": "quote",
            "file": (io.BytesIO(PDF), "quote.pdf"),
        },
        headers={"Referer": f"http://localhost{page}"},
    )
    assert answer.location == "/login"
    assert login(client, defender).location == page
    shown = _text(client.get(page))
    assert "Your session had ended, so this form was not sent" in shown
    assert "Choose the file again" in shown
    assert count_rows(Document) == 0


def test_an_account_has_one_form_kept_however_often_it_is_sent(client, make_user):
    """The session cookie sent again and again after it ended keeps one form, the last:
    an expired cookie cannot fill the database."""
    defender, uid, mark, expired = _step_left_open(client, make_user)
    for n in range(5):
        client.set_cookie(COOKIE, expired)
        data = {"_form": mark, "threat": f"{STORY} take {n}", "save": "1"}
        assert client.post(_step(uid), data=data).location == "/login"
    assert count_rows(RefusedForm) == 1
    assert login(client, defender).location == _step(uid)
    assert f"{STORY} take 4" in _text(client.get(_step(uid)))


def test_the_same_form_kept_twice_at_once_keeps_one(client, make_user, monkeypatch):
    """Sent twice at once (a double click after the session ended), the second request
    finds the row it was to replace already taken by the first: no error, one form kept."""
    defender, uid, mark, expired = _step_left_open(client, make_user)
    data = {"_form": mark, "threat": STORY, "save": "1"}
    assert client.post(_step(uid), data=data).location == "/login"
    # The second one begins before the first has committed: it deletes nothing.
    monkeypatch.setattr(refused, "_forget", lambda now, previous_key: None)
    client.set_cookie(COOKIE, expired)
    assert client.post(_step(uid), data=data).location == "/login"
    assert count_rows(RefusedForm) == 1
    assert login(client, defender).location == _step(uid)
    assert STORY in _text(client.get(_step(uid)))


def test_the_form_kept_is_forgotten_after_its_minutes(app, client, make_user):
    app.config["UNSENT_FORM_MINUTES"] = 0
    defender, uid, _answer = _sent_after_the_session_ended(client, make_user)
    assert "it is kept for 0 minutes" in _text(client.get("/login"))
    assert login(client, defender).location == "/"
    assert STORY not in _text(client.get(_step(uid)))


def test_the_cookie_carries_a_random_token_only(app, client, make_user):
    _defender, _uid, answer = _sent_after_the_session_ended(client, make_user)
    cookie = client.get_cookie(COOKIE).value
    assert "canary" not in cookie and "Teller" not in cookie
    assert "canary-7741" not in repr(answer.headers)


def test_a_form_holding_a_password_is_never_named_so_never_kept(client, make_user):
    """The account page's password form carries no name; the notice settings beside it
    (nothing secret) do."""
    login(client, make_user("applicant"))
    page = _text(client.get("/account"))
    forms = re.findall(r"<form\b.*?</form>", page, re.S)
    password = [f for f in forms if 'name="password-current"' in f]
    assert len(password) == 1 and 'name="_form"' not in password[0]
    assert any('name="_form"' in f for f in forms if f not in password)


def test_a_note_sent_to_its_own_address_comes_back_on_the_page_it_was_written_on(
    client, make_user, fund
):
    """A staff note posts to an address of its own, which no page is at: the note is kept
    for the case page the browser says it was written on."""
    manager = make_user("manager")
    case = make_case(fund)
    login(client, manager)
    page = f"/applications/{case.uid}"
    mark = input_value(
        re.search(r'<form[^>]*action="[^"]*/notes".*?</form>', _text(client.get(page)), re.S).group(
            0
        ),
        "_form",
    )
    assert mark == "NoteForm:note-"
    _idle(client, 31)
    note = "Spoke to the lawyer; the hearing moved to Friday (canary-5150)."
    answer = client.post(
        f"{page}/notes",
        data={"_form": mark, "note-kind": "note", "note-body": note},
        headers={"Referer": f"http://localhost{page}"},
    )
    assert answer.location == "/login"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CaseNote)) == 0
    assert login(client, manager).location == page
    assert note in _text(client.get(page))


def test_a_form_sent_from_another_site_is_not_kept(client, make_user, fund):
    """The page the browser names must be one of this site's: another's is not followed,
    and an address no page is at keeps nothing."""
    manager = make_user("manager")
    case = make_case(fund)
    login(client, manager)
    _idle(client, 31)
    answer = client.post(
        f"/applications/{case.uid}/notes",
        data={"_form": "NoteForm:note-", "note-kind": "note", "note-body": "x" * 20},
        headers={"Referer": f"https://elsewhere.example/applications/{case.uid}"},
    )
    assert answer.location == "/login"
    assert KEPT.split(",")[0] not in _text(client.get("/login"))
    assert login(client, manager).location == "/"


class TestPastTheTokensHours:
    """With CSRF tokens checked, as deployed: a form whose page was open past the token's
    hours is kept the same way, where it used to meet an error page that lost it."""

    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    @pytest.fixture
    def draft(self, client, make_user, fund):
        """A defender signed in (their tokens checked), a draft of theirs, and the first
        step's form as its page gives it."""
        defender = make_user("applicant")
        data = {"login": defender.login, "password": PASSWORD}
        client.post("/login", data={**data, "csrf_token": csrf_token(client, "/login")})
        case = make_case(
            fund, applicant_id=defender.id, status=ApplicationStatus.DRAFT, submitted_at=None
        )
        page = _text(client.get(_step(case.uid)))
        form = {
            "csrf_token": input_value(page, "csrf_token"),
            "_form": input_value(page, "_form"),
            "defender_name": "Ana Teller",
            "threat": STORY,
            "save": "1",
        }
        return defender, case, form

    @staticmethod
    def _hours_later(monkeypatch, hours):
        later = int(time.time()) + hours * 3600
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)

    def test_a_form_open_for_hours_comes_back_on_its_page_filled_in(
        self, client, draft, monkeypatch
    ):
        _defender, case, form = draft
        self._hours_later(monkeypatch, 5)
        answer = client.post(_step(case.uid), data=form)
        assert answer.status_code == 303 and answer.location == _step(case.uid)
        assert application_by_uid(case.uid).threat is None
        back = _text(client.get(answer.location))
        assert STORY in back and "This form had been open for hours" in back
        # The page gives a fresh token: sent again from it, the step is saved.
        again = {**form, "csrf_token": input_value(back, "csrf_token")}
        assert client.post(_step(case.uid), data=again).status_code == 302
        assert application_by_uid(case.uid).threat == STORY

    def test_left_open_all_afternoon_it_waits_for_the_person_to_sign_in_again(
        self, client, draft, monkeypatch
    ):
        """Past the token's hours and the idle hour both: kept until the person signs in."""
        defender, case, form = draft
        _idle(client, 5 * 60)
        self._hours_later(monkeypatch, 5)
        answer = client.post(_step(case.uid), data=form)
        assert answer.location == "/login"
        page = _text(client.get("/login"))
        assert KEPT in page
        data = {"login": defender.login, "password": PASSWORD}
        signed = client.post("/login", data={**data, "csrf_token": input_value(page, "csrf_token")})
        assert signed.location == _step(case.uid)
        back = _text(client.get(signed.location))
        assert STORY in back and FILLED_IN in back

    def test_another_sessions_old_token_plants_nothing(self, app, client, draft, monkeypatch):
        """A token this site signed for someone else's session, once past its hours, is
        no way to put words into this person's form."""
        _defender, case, form = draft
        stranger = app.test_client()
        theirs = csrf_token(stranger, "/login")
        self._hours_later(monkeypatch, 5)
        planted = {**form, "csrf_token": theirs, "threat": "Send the money to account 666"}
        answer = client.post(_step(case.uid), data=planted)
        assert answer.status_code == 400
        assert count_rows(RefusedForm) == 0
        assert "account 666" not in _text(client.get(_step(case.uid)))

    def test_a_form_without_a_token_gets_the_page_that_says_so(self, client, draft):
        _defender, case, form = draft
        answer = client.post(_step(case.uid), data={**form, "csrf_token": "forged"})
        assert answer.status_code == 400
        assert "open the page again" in _text(answer).lower()
        assert application_by_uid(case.uid).threat is None
        assert STORY not in _text(client.get(_step(case.uid)))


def test_a_form_sent_for_one_row_comes_back_on_that_row(app, money_world):
    """Finance leaves a case page open, then reverses part of one of its two payments
    after the session ended: signed in again, the reverse form of that payment's row is
    filled in as sent, the other row's is empty, and nothing was reversed."""
    grant = money_world.grant("1000")
    first = pay(money_world, grant, "400", instalment=None)
    second = pay(money_world, grant, "300", instalment=None)
    finance = app.test_client()
    login(finance, money_world.finance)
    url = f"/applications/{grant.application.uid}"
    page = _text(finance.get(url))
    action = f"/payments/{second.uid}/reverse"
    mark = input_value(page.split(f'action="{action}"')[1], "_form")
    _idle(finance, 31)
    data = {"_form": mark, "reverse-reason": "returned by the bank", "reverse-amount": "120.00"}
    sent = finance.post(action, data=data, headers={"Referer": f"http://localhost{url}"})
    assert sent.location == "/login"
    assert login(finance, money_world.finance).location == url
    back = _text(finance.get(url))

    def row_of(payment):
        return back.split(f'id="payment-{payment.uid}"')[1].split("</tr>")[0]

    assert "returned by the bank" in row_of(second) and 'value="120.00"' in row_of(second)
    assert "returned by the bank" not in row_of(first)
    assert FILLED_IN in back
    assert count_rows(Disbursement) == 2
