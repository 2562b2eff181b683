"""A refused form comes back on its page by Post/Redirect/Get: the POST answers 303 See
Other to the page (at the form's anchor), the page shows the errors and what was typed,
once, and a reload shows it clean. What was typed waits on the server, encrypted, for a few
minutes; the cookie holds only a token, which is worth nothing to another user or browser."""

import base64
import io
import json
import os
import zlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from hrdfund.auth import logins, refused
from hrdfund.auth.models import RefusedForm
from hrdfund.cases import services as applications
from hrdfund.cases.models import ApplicationStatus, Urgency
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.ledger.models import Contribution
from tests.conftest import (
    COOKIE,
    PASSWORD,
    MoneyWorld,
    confirm,
    login,
    make_costed_case,
    pay,
    payment_data,
    refused_page,
    signed_in,
)
from tests.pdfs import PDF
from tests.test_free_text_canaries import _pg_dump

FILE_AGAIN = "Choose the file again"


@pytest.fixture
def world(fund, make_user, make_donor):
    return MoneyWorld(fund, make_user, make_donor)


def _in_review(world):
    """A medical case in review, given to the world's reviewer, with two budget lines and
    two references."""
    return make_costed_case(
        world.fund,
        applicant_id=world.applicant.id,
        status=ApplicationStatus.IN_REVIEW,
        urgency=Urgency.URGENT,
        assigned_reviewer_id=world.reviewer.id,
        defender_name="Defender In Review",
    )


class Place:
    """Every case, grant and row the forms of the app are about, and a signed-in browser
    for each role."""

    def __init__(self, app, world):
        self.app, self.world = app, world
        self.review = _in_review(world)
        self.recommended = world.recommended(name="Defender Recommended")
        db.session.commit()
        self.unplanned = world.grant("3000", name="Defender Unplanned")
        self.paying = world.grant("2000", name="Defender Paying")
        world.plan(self.paying, count=2)
        self.payment = pay(world, self.paying, "1000", instalment=1)
        held = world.grant("3000", pool=world.usd, currency="USD", name="Defender Held")
        # Two payments of 2,000 held for their fee: once the first is booked, the grant
        # no longer commits enough for the second, which a second person cannot confirm.
        first = pay(world, held, "2000", "USD", instalment=None, fee=Decimal(250))
        self.held = pay(world, held, "2000", "USD", instalment=None, fee=Decimal(250))
        self.held_case = held.application
        self.draft = applications.start_application(world.applicant, "medical", world.fund)
        db.session.commit()
        confirm(world, first)
        self.contribution = db.session.execute(
            sa.select(Contribution).where(Contribution.pool_id == world.eur.id)
        ).scalar_one()
        self.clients = {}

    def case(self, application):
        return f"/applications/{application.uid}"

    def client(self, who):
        """A browser signed in as ``who`` (a user of the world), or a new one for a visitor."""
        if who is None:
            return self.app.test_client()
        if who not in self.clients:
            self.clients[who] = self.app.test_client()
            login(self.clients[who], getattr(self.world, who))
        return self.clients[who]


def _kinds(place):
    """(name, who, page, anchor, action, data, error, typed, secret): each form of the app
    sent so that it is refused. ``typed`` must come back in its field, ``secret`` must not."""
    w, p = place.world, place
    review, recommended = p.case(p.review), p.case(p.recommended)
    unplanned, paying, held = p.case(p.unplanned.application), p.case(p.paying.application), None
    held = p.case(p.held_case)
    draft = p.case(p.draft)
    ref = p.review.references[0].uid
    long = "x" * 5001
    user = w.reviewer
    pool = f"/pools/{w.eur.uid}"
    made = logins.make_login()  # as the sign-up page makes it, with its seal
    return [
        # The case page's staff forms.
        (
            "assign",
            "m1",
            review,
            "assign",
            f"{review}/assign",
            {"assign-reviewer": ""},
            "Choose who takes the case.",
            None,
            None,
        ),
        (
            "reference",
            "reviewer",
            review,
            f"reference-{ref}",
            f"{review}/references/{ref}",
            {f"ref-{ref}-status": "sure", f"ref-{ref}-notes": "typed-ref-notes-6601"},
            "Not a valid choice",
            "typed-ref-notes-6601",
            None,
        ),
        (
            "note",
            "reviewer",
            review,
            "notes",
            f"{review}/notes",
            {"note-kind": "gossip", "note-body": "typed-note-6602"},
            "Not a valid choice",
            "typed-note-6602",
            None,
        ),
        (
            "recommend",
            "reviewer",
            review,
            "assessment",
            f"{review}/recommend",
            {
                "recommend-risk_level": "high",
                "recommend-recommendation": "approve",
                "recommend-lines-0": "typed-6603",
                "recommend-lines-1": "1000",
                "recommend-assessment": "typed-assessment-6603",
            },
            "Enter the amount in figures",
            "typed-assessment-6603",
            None,
        ),
        (
            "question",
            "reviewer",
            review,
            "ask",
            f"{review}/question",
            {"question-question": "typed-question-6604" + long},
            "Field cannot be longer than",
            "typed-question-6604",
            None,
        ),
        (
            "cofunding",
            "reviewer",
            review,
            "cofunding",
            f"{review}/cofunding",
            {
                "cofunding-funder": "typed-funder-6605",
                "cofunding-amount": "-5",
                "cofunding-currency": "EUR",
            },
            "Enter an amount above zero.",
            "typed-funder-6605",
            None,
        ),
        (
            "conflict",
            "reviewer",
            review,
            "conflict",
            f"{review}/conflict",
            {},
            "Tick the box to confirm.",
            None,
            None,
        ),
        (
            "approve",
            "m1",
            recommended,
            "approve",
            f"{recommended}/approve",
            {"approve-amount": "typed-6606"},
            "Enter the amount in figures",
            "typed-6606",
            None,
        ),
        (
            "approve-refused-by-rule",
            "m1",
            recommended,
            "approve",
            f"{recommended}/approve",
            {
                "approve-amount": "90000.00",
                "approve-draws-0-pool": str(w.eur.id),
                "approve-draws-0-amount": "90000.00",
            },
            "available",
            "90000.00",
            None,
        ),
        (
            "reject",
            "m1",
            recommended,
            "reject",
            f"{recommended}/reject",
            {"reject-reason": "typed-reject-6607" + long},
            "Field cannot be longer than",
            "typed-reject-6607",
            None,
        ),
        (
            "plan",
            "m1",
            unplanned,
            "plan",
            f"{unplanned}/plan",
            {"plan-kind": "tranches", "plan-starts_on": "2026-03-01", "plan-count": "typed-6608"},
            "Enter a whole number in figures, such as 12.",
            "typed-6608",
            None,
        ),
        (
            "close",
            "m1",
            unplanned,
            "close",
            f"{unplanned}/close",
            {"close-reason": "typed-close-6609" + "x" * 200},
            "Field cannot be longer than 200 characters",
            "typed-close-6609",
            None,
        ),
        (
            "pay",
            "finance",
            paying,
            "pay",
            f"{paying}/payments",
            {
                "pay-allocation": str(p.paying.allocations[0].id),
                "pay-instalment": "0",
                "pay-payee_type": "host_organisation",
                "pay-payee_details": "typed-payee-6610",
                "pay-channel": "bank",
                "pay-amount_paid": "",
                "pay-currency_paid": "EUR",
                "pay-fee": "0",
                "pay-paid_on": "2026-03-03",
                "pay-idempotency_key": "k-6610",
                "pay-proof": (io.BytesIO(PDF), "proof.pdf"),
            },
            "Enter the amount paid.",
            "typed-payee-6610",
            None,
        ),
        (
            "reverse",
            "finance",
            paying,
            f"payment-{p.payment.uid}",
            f"/payments/{p.payment.uid}/reverse",
            {"reverse-reason": "typed-reversal-6611", "reverse-amount": "-3"},
            "Enter an amount above zero.",
            "typed-reversal-6611",
            None,
        ),
        (
            "finance-conflict",
            "finance",
            paying,
            "conflict",
            f"{paying}/conflict",
            {},
            "Tick the box to confirm.",
            None,
            None,
        ),
        (
            "held-refuse",
            "m2",
            held,
            f"held-{p.held.uid}",
            f"/payments/held/{p.held.uid}/refuse",
            {"refuse-reason": "typed-refusal-6612" + "x" * 200},
            "Field cannot be longer than 200 characters",
            "typed-refusal-6612",
            None,
        ),
        (
            "held-confirm",
            "m2",
            held,
            f"held-{p.held.uid}",
            f"/payments/held/{p.held.uid}/confirm",
            {},
            "more than the grant still has committed",
            None,
            None,
        ),
        # The applicant side.
        (
            "message",
            "applicant",
            paying,
            "thread",
            paying,
            {"body": "typed-message-6613" + long},
            "Field cannot be longer than",
            "typed-message-6613",
            None,
        ),
        (
            "document",
            "applicant",
            paying,
            "documents",
            f"{paying}/documents",
            {"kind": "selfie", "file": (io.BytesIO(PDF), "quote.pdf")},
            "Not a valid choice",
            None,
            None,
        ),
        (
            "report",
            "applicant",
            paying,
            "report",
            f"{paying}/report",
            {"continued_work": "yes", "narrative": "typed-narrative-6614"},
            "Choose an answer.",
            "typed-narrative-6614",
            None,
        ),
        (
            "withdraw",
            "applicant",
            f"{review}/withdraw",
            None,
            f"{review}/withdraw",
            {"reason": "typed-reason-6621 " + long},
            "Field cannot be longer than 5000 characters.",
            "typed-reason-6621",
            None,
        ),
        (
            "edit",
            "applicant",
            f"{draft}/edit",
            None,
            f"{draft}/edit",
            {"defender_name": "typed-defender-6615", "budget-0-amount": "-5", "save": "y"},
            "Some answers need correcting",
            "typed-defender-6615",
            None,
        ),
        (
            "edit-send-incomplete",
            "applicant",
            f"{draft}/edit",
            None,
            f"{draft}/edit",
            {"defender_name": "typed-defender-6616", "submit": "y"},
            "Before it can be sent",
            None,
            None,
        ),
        # Pools, money received, rates, statements.
        (
            "donor",
            "m1",
            "/pools/new",
            "donor",
            "/pools/donors",
            {"donor-name": "typed-donor-6617" + "x" * 160},
            "Field cannot be longer than 160 characters",
            "typed-donor-6617",
            None,
        ),
        (
            "pool",
            "m1",
            "/pools/new",
            "pool",
            "/pools",
            {
                "pool-donor": str(w.donor.id),
                "pool-name": "typed-pool-6618",
                "pool-currency": "EUR",
                "pool-cap_per_grant": "-1",
            },
            "Enter an amount above zero.",
            "typed-pool-6618",
            None,
        ),
        (
            "contribution",
            "m1",
            pool,
            "contributions",
            f"{pool}/contributions",
            {
                "contribution-amount": "",
                "contribution-currency": "EUR",
                "contribution-received_on": "2026-01-05",
                "contribution-reference": "typed-ref-6619",
            },
            "Enter the amount received.",
            "typed-ref-6619",
            None,
        ),
        (
            "contribution-reversal",
            "m1",
            pool,
            f"contribution-{p.contribution.uid}",
            f"/pools/contributions/{p.contribution.uid}/reverse",
            {"uncontribute-reason": "typed-uncontribute-6620" + "x" * 200},
            "Field cannot be longer than 200 characters",
            "typed-uncontribute-6620",
            None,
        ),
        (
            "rate",
            "finance",
            "/pools/rates",
            "record-rate",
            "/pools/rates",
            {
                "rate-on_date": "2026-01-01",
                "rate-base": "EUR",
                "rate-quote": "USD",
                "rate-rate": "1e40",
                "rate-source": "typed-rate-source-6621",
            },
            "Enter the rate in figures",
            "typed-rate-source-6621",
            None,
        ),
        (
            "statement",
            "finance",
            "/payments",
            "import",
            "/payments/statements",
            {"statement": (io.BytesIO(b"not,a,statement\n"), "statement.csv")},
            "The statement was not applied",
            None,
            None,
        ),
        # Accounts.
        (
            "password",
            "finance",
            "/account",
            "password",
            "/account/password",
            {
                "password-current": "typed-secret-6622",
                "password-new": "a new password here",
                "password-again": "another new password",
            },
            "The two new passwords differ.",
            None,
            "typed-secret-6622",
        ),
        (
            "recovery-codes",
            "finance",
            "/account",
            "codes",
            "/account/recovery-codes",
            {"codes-password": "typed-secret-6623"},
            "That is not your current password.",
            None,
            "typed-secret-6623",
        ),
        (
            "alerts",
            "admin",
            "/admin/users",
            f"account-{user.uid}",
            "/admin/users/alerts",
            {
                f"u{user.id}-user": user.uid,
                f"u{user.id}-email": "typed-address-6624",
                f"u{user.id}-on_duty": "y",
            },
            "Enter an email address",
            "typed-address-6624",
            None,
        ),
        # Signing in and up: the login name comes back, never a password or a code.
        (
            "login",
            None,
            "/login",
            None,
            "/login",
            {"login": "typed-login-6625", "password": "typed-secret-6626"},
            "Login name or password is not right.",
            "typed-login-6625",
            "typed-secret-6626",
        ),
        (
            "register",
            None,
            "/register",
            None,
            "/register",
            {
                "login": made,
                "login_seal": logins.login_seal(made),
                "password": "pw-6628x",
                "password_again": "pw-6628x",
                "contact": "typed-contact-6630",
            },
            "This password cannot be used",
            "typed-contact-6630",
            "pw-6628x",
        ),
        (
            "code",
            "pending:m2",
            "/login/code",
            None,
            "/login/code",
            {"code": "612 345"},
            "That code is not right",
            None,
            "612 345",
        ),
        (
            "recovery",
            "pending:finance",
            "/login/recovery",
            None,
            "/login/recovery",
            {"code": "typed-secret-6629"},
            "That recovery code is not right",
            None,
            "typed-secret-6629",
        ),
    ]


def _browser(place, who):
    if who and who.startswith("pending:"):
        # Half-way through signing in: the password given, the second step to come.
        client = place.app.test_client()
        user = getattr(place.world, who.split(":")[1])
        response = client.post("/login", data={"login": user.login, "password": PASSWORD})
        assert response.location.endswith("/login/code"), response.status
        return client
    return place.client(who)


def test_every_refused_form_comes_back_on_its_page_once(app, world):
    """For each form of the app: the refused POST answers 303 to a GET address of its page,
    at the form's anchor; that page shows the errors and what was typed (never a password or
    a code); the next GET of it shows it clean, and the form sent again is refused again."""
    place = Place(app, world)
    checked = []
    for name, who, page, anchor, action, data, error, typed, secret in _kinds(place):
        client = _browser(place, who)
        before = db.session.scalar(sa.select(sa.func.count()).select_from(RefusedForm))
        response = client.post(action, data=data)
        where = page + (f"#{anchor}" if anchor else "")
        shown = refused_page(client, response, where).get_data(as_text=True)
        assert error in shown, (name, shown[-3000:])
        if typed:
            assert typed in shown, (name, "what was typed is lost")
        if secret:
            assert secret not in shown, (name, "a secret came back")
        if name in ("pay", "document", "statement"):
            assert FILE_AGAIN in shown, (name, "a refused upload must ask for its file again")
        assert db.session.scalar(sa.select(sa.func.count()).select_from(RefusedForm)) > before
        again = client.get(page).get_data(as_text=True)
        assert error not in again, (name, "a reload still shows the refusal")
        if typed:
            assert typed not in again, (name, "a reload still shows what was typed")
        checked.append(name)
    assert len(checked) == len(_kinds(place))


def test_a_refused_choice_of_support_is_the_start_page_with_its_errors(app, world):
    """The start page sends its choice by GET (it stores nothing): a kind of support it
    does not offer answers the start page again with the error, at the same address, and
    keeps nothing, so the start page opened anew is clean."""
    client = Place(app, world).client("applicant")
    before = db.session.scalar(sa.select(sa.func.count()).select_from(RefusedForm))
    response = client.get("/apply/new", query_string={"category": "spa"})
    assert response.status_code == 200
    shown = response.get_data(as_text=True)
    assert "Not a valid choice" in shown and 'action="/apply/new"' in shown
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RefusedForm)) == before
    assert "Not a valid choice" not in client.get("/apply").get_data(as_text=True)


def test_a_refused_upload_asks_for_its_file_again(app, world):
    """The file of a refused form is not kept: its field says to choose it again."""
    place = Place(app, world)
    finance = place.client("finance")
    paying = place.case(place.paying.application)
    response = finance.post(
        f"{paying}/payments",
        data={"pay-amount_paid": "", "pay-proof": (io.BytesIO(PDF), "proof.pdf")},
    )
    page = refused_page(finance, response, f"{paying}#pay").get_data(as_text=True)
    assert "Choose the file again: a form sent back for correction does not keep it." in page
    statement = finance.post(
        "/payments/statements", data={"statement": (io.BytesIO(b"x,y\n"), "statement.csv")}
    )
    page = refused_page(finance, statement, "/payments#import").get_data(as_text=True)
    assert "The statement was not applied" in page and FILE_AGAIN in page


def _session(app, client):
    """The session cookie's content, decoded as Flask reads it."""
    cookie = client.get_cookie(COOKIE)
    return cookie.value, app.session_interface.get_signing_serializer(app).loads(cookie.value)


def _cookie_text(value):
    """The session cookie's payload as text, decompressed as Flask writes it."""
    payload = value.split(".")[1 if value.startswith(".") else 0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(raw) if value.startswith(".") else raw).decode()


def _raw_database(backend):
    if backend == "postgresql":
        return _pg_dump()
    path = db.engine.url.database
    return b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))


def test_what_was_typed_waits_encrypted_and_the_cookie_holds_only_a_token(app, backend, world):
    place = Place(app, world)
    reviewer = place.client("reviewer")
    review = place.case(place.review)
    canaries = {"note": "canary-refused-note-7701", "payee": "canary-refused-payee-7702"}
    response = reviewer.post(
        f"{review}/notes", data={"note-kind": "gossip", "note-body": canaries["note"]}
    )
    assert response.status_code == 303
    finance = place.client("finance")
    paying = place.case(place.paying.application)
    response = finance.post(
        f"{paying}/payments",
        data={"pay-payee_details": canaries["payee"], "pay-amount_paid": "1e3"},
    )
    assert response.status_code == 303
    db.session.commit()
    raw = _raw_database(backend)
    rows = db.session.execute(sa.select(RefusedForm)).scalars().all()
    assert len(rows) == 2
    assert rows[0].key.encode() in raw, "the scan does see what is stored in clear"
    assert [name for name, c in canaries.items() if c.encode() in raw] == []
    # The cookie holds the token, and nothing typed.
    for client, canary in ((reviewer, canaries["note"]), (finance, canaries["payee"])):
        value, content = _session(app, client)
        assert canary not in _cookie_text(value) and canary not in json.dumps(content)
        assert len(content["refused"]) == 43  # a random token, and nothing else of the form
    # Each reads back its own.
    assert canaries["note"] in reviewer.get(review).get_data(as_text=True)
    assert canaries["payee"] in finance.get(paying).get_data(as_text=True)


def test_a_password_or_a_code_is_never_kept(app, world):
    """Neither the table nor the page holds a refused form's password."""
    visitor = app.test_client()
    response = visitor.post("/login", data={"login": world.m1.login, "password": "canary-pw-7703"})
    assert response.status_code == 303
    (row,) = db.session.execute(sa.select(RefusedForm)).scalars().all()
    assert "canary-pw-7703" not in json.dumps(row.content)
    assert world.m1.login in json.dumps(row.content)
    page = refused_page(visitor, response, "/login").get_data(as_text=True)
    assert f'value="{world.m1.login}"' in page and "canary-pw-7703" not in page


def _token(client):
    with client.session_transaction() as session:
        return session.get("refused")


def _give(client, token):
    with client.session_transaction() as session:
        session["refused"] = token


def test_another_user_or_browser_with_the_token_gets_nothing(app, world):
    place = Place(app, world)
    review = place.case(place.review)
    reviewer, manager = place.client("reviewer"), place.client("m1")
    response = reviewer.post(
        f"{review}/notes", data={"note-kind": "gossip", "note-body": "canary-stolen-7704"}
    )
    assert response.status_code == 303
    token = _token(reviewer)
    _give(manager, token)
    page = manager.get(review).get_data(as_text=True)
    assert "canary-stolen-7704" not in page and "Not a valid choice" not in page
    assert _token(manager) is None, "a token that names nothing is forgotten"
    # The owner still gets it: the token was what the other lacked, not the row.
    assert "canary-stolen-7704" in reviewer.get(review).get_data(as_text=True)

    # Before sign-in, the browser: another visitor holding the token gets nothing.
    first, second = app.test_client(), app.test_client()
    first.get("/login")
    second.get("/login")
    response = first.post("/login", data={"login": "canary-login-7705", "password": "nope"})
    assert response.status_code == 303
    _give(second, _token(first))
    assert "canary-login-7705" not in second.get("/login").get_data(as_text=True)
    assert "canary-login-7705" in first.get("/login").get_data(as_text=True)


def test_reading_the_page_writes_nothing_and_shows_it_once(app, world):
    """The GET that shows a refused form forgets its token in the session; the row stays
    until it expires (a read does not write), and a second GET shows the page clean."""
    place = Place(app, world)
    reviewer = place.client("reviewer")
    review = place.case(place.review)
    reviewer.post(f"{review}/notes", data={"note-kind": "x", "note-body": "canary-once-7706"})
    db.session.commit()
    count = sa.select(sa.func.count()).select_from(RefusedForm)
    assert db.session.scalar(count) == 1
    assert "canary-once-7706" in reviewer.get(review).get_data(as_text=True)
    assert _token(reviewer) is None
    db.session.commit()
    assert db.session.scalar(count) == 1
    assert "canary-once-7706" not in reviewer.get(review).get_data(as_text=True)
    # Another page first: the form waits for its own page.
    reviewer.post(f"{review}/notes", data={"note-kind": "x", "note-body": "canary-later-7707"})
    assert "canary-later-7707" not in reviewer.get("/cases").get_data(as_text=True)
    assert "canary-later-7707" in reviewer.get(review).get_data(as_text=True)


def test_an_expired_refused_form_is_not_shown_and_is_deleted(app, world, runner, monkeypatch):
    place = Place(app, world)
    reviewer = place.client("reviewer")
    review = place.case(place.review)
    reviewer.post(f"{review}/notes", data={"note-kind": "x", "note-body": "canary-expired-7708"})
    minutes = app.config["REFUSED_FORM_MINUTES"]
    later = utcnow() + timedelta(minutes=minutes, seconds=1)
    monkeypatch.setattr(refused, "utcnow", lambda: later)
    assert "canary-expired-7708" not in reviewer.get(review).get_data(as_text=True)
    count = sa.select(sa.func.count()).select_from(RefusedForm)
    db.session.commit()
    assert db.session.scalar(count) == 1  # the read deleted nothing
    # The next refusal deletes it (and keeps its own).
    reviewer.post(f"{review}/notes", data={"note-kind": "x", "note-body": "canary-next-7709"})
    db.session.commit()
    (row,) = db.session.execute(sa.select(RefusedForm)).scalars().all()
    assert "canary-next-7709" in json.dumps(row.content)
    # And the purge deletes what is past its time.
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    dry = runner.invoke(args=["hrdfund", "purge", "--dry-run"])
    assert "1 refused forms past their time to delete" in dry.output
    done = runner.invoke(args=["hrdfund", "purge", "--yes"])
    assert done.exit_code == 0, done.output
    db.session.expire_all()
    assert db.session.scalar(count) == 0


def test_a_refusal_for_a_form_that_is_gone_leaves_the_page_as_it_is(app, world):
    """The form refused is no longer on the page (the case moved on): the page says the
    refusal at its top, and nothing typed leaks into another form of the page."""
    place = Place(app, world)
    manager = place.client("m1")
    recommended = place.case(place.recommended)
    response = manager.post(
        f"{recommended}/reject", data={"reject-reason": "canary-gone-7710" + "x" * 2001}
    )
    assert response.status_code == 303
    place.recommended.status = ApplicationStatus.REJECTED
    db.session.commit()
    page = manager.get(recommended)
    assert page.status_code == 200 and "canary-gone-7710" not in page.get_data(as_text=True)
    # The refusal is still said, at the top of the page, once.
    assert "Field cannot be longer than 2000 characters." in page.get_data(as_text=True)
    again = manager.get(recommended).get_data(as_text=True)
    assert "Field cannot be longer than 2000 characters." not in again


def test_a_refused_form_lists_its_fields_problems_above_it(app, money_world):
    """Finance's payment form comes back under a table of what is due, its first field
    far below: the problems are listed above the table, each with its field's name."""
    grant = money_world.grant("1000")
    money_world.plan(grant, count=3)
    finance = signed_in(app, money_world.finance)
    url = f"/applications/{grant.application.uid}"
    sent = finance.post(f"{url}/payments", data=payment_data(grant, **{"pay-payee_details": ""}))
    page = refused_page(finance, sent).get_data(as_text=True)
    form = page.split('id="pay"')[1]
    summary = form.split('class="error-summary"')[1].split("</div>")[0]
    assert "Not sent yet: check what is said below." in summary
    assert "Payee details (account, phone or name; seen by finance only): Enter who was paid" in (
        summary
    )
    assert form.index('class="error-summary"') < form.index('class="due stack"')
