"""What a request may make the server read and parse: a visitor not signed in sends a few
kilobytes, every form a bounded number of fields, and past a bound the answer is the app's
413 page, given before the body is parsed. The real forms at their real sizes still work."""

import io
import time

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from hrdfund.cases.models import Application, Document
from hrdfund.core.extensions import db
from hrdfund.disbursements.models import PaymentProof
from tests.conftest import CSP_PARTS, login, pay, refused_page, sign_up, start_application
from tests.pdfs import make_pdf

#: The attack: 8 MB of URL-encoded form with 800,000 fields.
HUGE_FORM = b"&".join(b"f%d=x" % n for n in range(800_000)).ljust(8 * 1024 * 1024, b"x")
ANONYMOUS_PAGES = ["/login", "/login/code", "/login/recovery", "/register"]


def _post_form(client, path, body, **kwargs):
    """POST a URL-encoded body; return the answer and the CPU seconds it took: the test
    client answers in this thread, so this thread's time is the request's, whatever other
    threads of the process (a server a test left running) do meanwhile."""
    started = time.thread_time()
    response = client.post(
        path, data=body, content_type="application/x-www-form-urlencoded", **kwargs
    )
    return response, time.thread_time() - started


def _post_multipart(client, path, fields):
    """POST a form with a file, encoded in memory: the test client would spool a large file
    to a temporary file it never closes."""
    boundary, body = encode_multipart(fields)
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _is_the_413_page(response):
    page = response.get_data(as_text=True)
    assert response.status_code == 413, response.status_code
    assert "<h1>File too large</h1>" in page
    assert all(part in response.headers["Content-Security-Policy"] for part in CSP_PARTS)
    return True


@pytest.mark.parametrize("path", ANONYMOUS_PAGES)
def test_a_huge_anonymous_form_is_refused_before_it_is_parsed(client, path):
    """Splitting 800,000 fields took over a second of CPU per request; refused from its
    length, it costs almost nothing."""
    response, cpu = _post_form(client, path, HUGE_FORM)
    assert _is_the_413_page(response)
    assert cpu < 0.3, f"{cpu:.2f} s of CPU"


def test_a_visitor_sends_a_few_kilobytes_at_most(client):
    response, _cpu = _post_form(client, "/register", b"login=someone&password=" + b"x" * 20_000)
    assert _is_the_413_page(response)


def test_a_body_sent_without_its_length_is_cut_off_at_the_bound(client):
    """A chunked body announces no length: it is read only up to the bound."""
    response = client.post(
        "/login",
        input_stream=io.BytesIO(HUGE_FORM),
        content_type="application/x-www-form-urlencoded",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert _is_the_413_page(response)


def test_sign_up_and_sign_in_fit_at_the_longest_answers(app, client, make_user):
    """Every field at its longest, in four-byte characters: well within a visitor's bound."""
    password = "".join(chr(0x1F600 + n % 64) for n in range(128))
    response, _made = sign_up(client, password, contact="\U0001f4de" * 200)
    assert response.status_code == 302
    visitor = app.test_client()
    wrong = refused_page(
        visitor, visitor.post("/login", data={"login": "x" * 64, "password": password}), "/login"
    )
    assert "Login name or password is not right." in wrong.get_data(as_text=True)
    assert login(visitor, make_user("applicant")).status_code == 302


@pytest.fixture
def signed_in(client, make_user, fund):
    """An applicant with a draft of each kind: returns the case code."""
    login(client, make_user("applicant"))
    return start_application(client, "relocation")


def test_a_signed_in_form_takes_a_few_dozen_fields_not_thousands(client, signed_in):
    """Anyone may sign up, so a signed-in form is bounded too: in bytes, and in fields even
    on a page that takes a file."""
    for path in (f"/applications/{signed_in}", f"/applications/{signed_in}/edit"):
        response, cpu = _post_form(client, path, HUGE_FORM)
        assert _is_the_413_page(response) and cpu < 0.3
    # An upload may be megabytes, but its fields are counted before they are split.
    upload = f"/applications/{signed_in}/documents"
    response, cpu = _post_form(client, upload, HUGE_FORM[: 8 * 1024 * 1024 - 4096])
    assert _is_the_413_page(response) and cpu < 0.3
    many = b"&".join(b"f%d=x" % n for n in range(60))
    assert _is_the_413_page(_post_form(client, f"/applications/{signed_in}", many)[0])
    assert _post_form(client, f"/applications/{signed_in}", many[:200])[0].status_code != 413


def test_a_file_form_of_many_parts_is_refused(client, signed_in):
    response = _post_multipart(
        client,
        f"/applications/{signed_in}/documents",
        {
            **{f"f{n}": "x" for n in range(60)},
            "kind": "quote",
            "file": FileStorage(io.BytesIO(make_pdf()), "quote.pdf"),
        },
    )
    assert _is_the_413_page(response)
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0


def test_an_upload_arrives_with_no_transaction_open(client, signed_in, monkeypatch):
    """The bounds are chosen from the signed session cookie, with no query: nothing holds
    a transaction (on SQLite, the write lock) while a slow upload's body arrives."""
    from hrdfund.core import request_limits

    seen = []
    parse = request_limits._BoundedFormDataParser.parse

    def watched(self, *args, **kwargs):
        seen.append(db.session().in_transaction())
        return parse(self, *args, **kwargs)

    monkeypatch.setattr(request_limits._BoundedFormDataParser, "parse", watched)
    db.session.rollback()  # the test's own reads end here
    response = _post_multipart(
        client,
        f"/applications/{signed_in}/documents",
        {"kind": "quote", "file": FileStorage(io.BytesIO(make_pdf()), "quote.pdf")},
    )
    assert response.status_code == 302
    assert seen == [False]


def _longest_application():
    """The relocation form with every row and every answer at its longest, in four-byte
    characters: the largest application form a defender can send."""
    long, story, text = "\U0001f3e0" * 2000, "\U0001f4dd" * 4000, "\U0001f4cd" * 200
    data = {
        "defender_name": "\U0001f464" * 120,
        "country": "KE",
        "gender": "woman",
        "urgency": "urgent",
        "urgency_reason": long,
        "defender_work": story,
        "threat": story,
        "details-scope": "region",
        "details-destination_country": "UG",
        "details-host_organisation": text,
        "details-people": "3",
        "details-months": "6",
        "details-stay_plan": long,
        "details-security_plan": long,
        "details-exit_plan": long,
        "currency": "KES",
        "other_funders": long,
        "consent_referral": "y",
        "consent_story": "y",
        "save": "1",
    }
    for row in range(10):
        data[f"budget-{row}-description"] = text
        data[f"budget-{row}-amount"] = "120000.50"
        data[f"dependants-{row}-relation"] = "\U0001f467" * 60
        data[f"dependants-{row}-age"] = "7"
    for row in range(2):
        for field in ("name", "organisation", "contact"):
            data[f"references-{row}-{field}"] = text
    return data


def test_the_longest_application_form_is_saved(client, signed_in):
    response = client.post(f"/applications/{signed_in}/edit", data=_longest_application())
    assert response.status_code == 302, response.status_code
    application = db.session.execute(sa.select(Application)).scalar_one()
    db.session.refresh(application)
    assert application.threat == "\U0001f4dd" * 4000
    assert len(application.budget_lines) == 10


def test_a_document_at_the_size_limit_is_taken(app, client, signed_in):
    limit = app.config["HRDFUND_MAX_DOCUMENT_BYTES"]
    big = make_pdf("x" * (limit - 4096))
    assert limit - 8192 < len(big) <= limit
    response = _post_multipart(
        client,
        f"/applications/{signed_in}/documents",
        {"kind": "quote", "file": FileStorage(io.BytesIO(big), "quote.pdf")},
    )
    assert response.status_code == 302
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 1


def test_a_proof_at_the_size_limit_is_added_after_its_payment(app, money_world):
    """A proof that came after its payment takes a file as large as any document: a
    scanned bank confirmation is often past the bound of an ordinary form."""
    limit = app.config["HRDFUND_MAX_DOCUMENT_BYTES"]
    big = make_pdf("x" * (limit - 4096))
    payment = pay(money_world, money_world.grant("1000"), "400", instalment=None)
    finance = app.test_client()
    login(finance, money_world.finance)
    response = _post_multipart(
        finance,
        f"/payments/{payment.uid}/proof",
        {"proof-proof": FileStorage(io.BytesIO(big), "confirmation.pdf")},
    )
    assert response.status_code == 302
    assert db.session.execute(sa.select(sa.func.count(PaymentProof.id))).scalar() == 1


def test_a_statement_at_its_size_limit_reaches_the_import(app, make_user, fund):
    """A statement of a megabyte (its own bound) is read and judged line by line."""
    from hrdfund.core.csv_file import MAX_BYTES

    finance = app.test_client()
    login(finance, make_user("finance"))
    header = b"reference,amount,currency,date,status,note\n"
    rows = 5000  # its most rows, each with a long note, to a megabyte
    line = b"TRF-UNKNOWN,10.00,EUR,2026-02-05,delivered,\n"
    note = b"n" * ((MAX_BYTES - len(header)) // rows - len(line))
    body = header + line.replace(b",\n", b"," + note + b"\n") * rows
    assert MAX_BYTES - rows < len(body) <= MAX_BYTES
    response = _post_multipart(
        finance, "/payments/statements", {"statement": FileStorage(io.BytesIO(body), "s.csv")}
    )
    response = refused_page(finance, response, "/payments#import")
    assert "TRF-UNKNOWN" in response.get_data(as_text=True)


def _as_files(fields, names):
    """``fields`` with each of ``names`` sent as a small file rather than as text."""
    return {
        name: (io.BytesIO(str(value).encode()), "x.txt") if name in names else value
        for name, value in fields.items()
    }


def test_a_file_sent_for_a_text_field_is_refused_in_words(app, client, make_user, money_world):
    """A password, a login, a code or an amount sent as a file, before signing in and
    after: each form refuses it as it refuses a missing value (the page again, saying
    what to fill in), never with a crash, and nothing is recorded."""
    visitor = app.test_client()
    sent = visitor.post(
        "/login",
        data=_as_files({"login": "someone", "password": "a long enough password"}, {"password"}),
        content_type="multipart/form-data",
    )
    assert "Enter your password." in refused_page(visitor, sent, "/login").get_data(as_text=True)
    sent = visitor.post(
        "/register",
        data=_as_files({"password": "x" * 20, "password_again": "x" * 20}, {"password"}),
        content_type="multipart/form-data",
    )
    assert sent.status_code in (302, 303)
    finance = app.test_client()
    login(finance, money_world.finance)
    grant = money_world.grant("1000")
    payment = pay(money_world, grant, "400", instalment=None)
    reverse = {"reverse-reason": "bounced", "reverse-amount": "100.00"}
    sent = finance.post(
        f"/payments/{payment.uid}/reverse",
        data=_as_files(reverse, {"reverse-amount", "reverse-reason"}),
        content_type="multipart/form-data",
    )
    assert sent.status_code == 303
    assert "Say why" in finance.get(sent.location).get_data(as_text=True)
    db.session.expire_all()
    assert payment.reversals == []
    changed = finance.post(
        "/account/password",
        data=_as_files(
            {"password-current": "x", "password-new": "y" * 14, "password-again": "y" * 14},
            {"password-new", "password-current"},
        ),
        content_type="multipart/form-data",
    )
    assert "Enter your current password." in refused_page(finance, changed).get_data(as_text=True)
