"""Fixtures: an app per test on SQLite and, when configured, on PostgreSQL; factories;
a login helper that passes the second factor; a small fund with money in it.

Set HRDFUND_TEST_DATABASE_URL to a PostgreSQL database to run every database test there
too. Under CI=true a leg that cannot run fails instead of being skipped.
"""

import base64
import contextlib
import gc
import io
import os
import re
import shutil
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from flask import g
from flask.testing import FlaskClient
from PIL import Image

from hrdfund import create_app
from hrdfund.audit.models import AuditEvent
from hrdfund.auth import second_factor
from hrdfund.auth import services as auth_services
from hrdfund.cases import steps, targets
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    BudgetLine,
    Consent,
    ConsentKind,
    Reference,
    Urgency,
)
from hrdfund.cases.services import defender_key
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db, end_read
from hrdfund.core.support import Category
from hrdfund.disbursements import holds
from hrdfund.disbursements import services as payments
from hrdfund.grants import plans
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.ledger.models import Channel, PayeeType
from hrdfund.ledger.seals import FINAL_TABLES
from hrdfund.pools import services as pools
from hrdfund.reviews.models import Recommendation, Review, RiskLevel
from tests.clock import Clock

#: Each test makes and drops an app, its engine and sessions: most of what the suite
#: allocates dies young, while what stays (modules, compiled statements and templates,
#: catalogs) is large, and the default thresholds scanned all of it again every few
#: seconds (a full collection took about 165 ms). With these, the young are collected in
#: larger batches and the whole rarely: on 974 tests in one process, collections took
#: 2.4 s instead of 8.8 s (176.7 s to 170.8 s in all), the process 406 MB at most
#: instead of 394 MB.
gc.set_threshold(10_000, 20, 50)

IN_CI = os.environ.get("CI", "").lower() == "true"
#: Under ``pytest -n`` (the Makefile's way) each worker has a database of its own beside
#: the configured one, its name ending in the worker's name: ``hrdfund_test_gw0``...
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
PG_URL = os.environ.get("HRDFUND_TEST_DATABASE_URL")
if PG_URL and WORKER:
    _configured = sa.engine.make_url(PG_URL)
    PG_URL = _configured.set(database=f"{_configured.database}_{WORKER}").render_as_string(
        hide_password=False
    )
PASSWORD = "correct horse staple 42"
#: The session cookie's name, and the one answer to any failed sign-in.
COOKIE = "hrdfund_session"
GENERIC = "Login name or password is not right."
#: The client cookie naming a browser to the sign-in limits, and the answer once they lock.
CLIENT_COOKIE = "hrdfund_client"
LOCKED = "Too many failed attempts. Wait 15 minutes, then try again."
#: What the Content-Security-Policy of every page must hold.
CSP_PARTS = (
    "default-src 'self'",
    "script-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def missing_infrastructure(reason):
    """Skip a leg for missing infrastructure, or fail it under CI."""
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


def _key():
    return base64.b64encode(os.urandom(32)).decode()


SESSION_KEYS = {"SECRET_KEY": _key(), "HRDFUND_ENCRYPTION_KEY": _key(), "HRDFUND_AUDIT_KEY": _key()}


def stored_bytes(app, document_id):
    """What is stored of a document, as the database or the folder keeps it: its file's
    bytes, or its pieces' ciphertexts joined; None when nothing is left of it."""
    from hrdfund.cases.models import Document, DocumentChunk

    chunks = db.session.scalars(
        sa.select(DocumentChunk.data)
        .where(DocumentChunk.document_id == document_id)
        .order_by(DocumentChunk.seq)
    ).all()
    if chunks:
        return b"".join(chunks)
    name = db.session.scalar(sa.select(Document.storage_name).where(Document.id == document_id))
    path = Path(app.instance_path, "documents", name or "-")
    return path.read_bytes() if path.is_file() else None


def edit_behind_the_app(table, sql, params=None):
    """Run ``sql`` on a final ledger table as someone with the database owner's rights
    would: on PostgreSQL that means switching the table's refusal trigger off first."""
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    trigger = f"{table}_rows_are_final"
    if postgresql:
        db.session.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
    db.session.execute(sa.text(sql), params or {})
    if postgresql:
        db.session.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}"))
    db.session.commit()


def make_config(database_uri, instance_path, **extra):
    return {
        "ENV_NAME": "testing",
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "INSTANCE_PATH": str(instance_path),
        "WTF_CSRF_ENABLED": False,
        **SESSION_KEYS,
        **extra,
    }


@contextlib.contextmanager
def other_app(config):
    """Another start of the app with ``config`` (another database, folder or keys), its
    context pushed, its connections closed at the end."""
    other = create_app(config)
    with other.app_context():
        try:
            yield other
        finally:
            db.session.remove()
            db.engine.dispose()


def pg_database_beside(suffix):
    """A PostgreSQL database beside the suite's, its name with ``suffix`` added, created
    when missing (a leg that cannot create it fails under CI). Returns its URL and whether
    this call created it."""
    if not PG_URL:
        missing_infrastructure("HRDFUND_TEST_DATABASE_URL is not set")
    base = sa.engine.make_url(PG_URL)
    return pg_database(base.set(database=f"{base.database}{suffix}"))


def pg_database(url):
    """The PostgreSQL database at ``url``, created when missing. Returns its URL and
    whether this call created it."""
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if exists:
                return url, False
            try:
                conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
            except sa.exc.ProgrammingError:
                missing_infrastructure(
                    f"database {url.database} is missing and the role {url.username} may "
                    f"not create it: run `createdb -O {url.username} {url.database}` as "
                    "postgres"
                )
            return url, True
    except sa.exc.OperationalError as exc:
        missing_infrastructure(f"PostgreSQL is not reachable: {type(exc).__name__}")
    finally:
        admin.dispose()


def empty_schema(url):
    """Drop everything in the database at ``url``: an empty public schema is left."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


#: An engine of one connection per database, that only empties its tables.
_EMPTYING = {}


def _emptying(engine):
    """The connection that empties ``engine``'s database: one of its own, so that
    switching a table's trigger off and on (an ALTER TABLE, after which psycopg forgets
    the statements it prepared on that connection) leaves the app's connections' prepared
    statements alone."""
    url = engine.url.render_as_string(hide_password=False)
    if url not in _EMPTYING:
        _EMPTYING[url] = sa.create_engine(url, pool_size=1, max_overflow=0)
    return _EMPTYING[url]


def empty_tables(engine):
    """Empty every table of the schema on PostgreSQL and restart its sequences, as
    ``TRUNCATE ... RESTART IDENTITY`` does. A TRUNCATE gives every table and index a new
    file: 30 to 60 ms for the schema even when it is empty (most of a second where the
    server waits for the disk); deleting the rows a test left in the tables it filled takes
    7 to 10 ms after an ordinary test. The ledger's tables refuse a DELETE
    (their rows are final): their trigger is off for the DELETE, inside the transaction."""
    tables = db.metadata.sorted_tables
    with _emptying(engine).begin() as conn:
        probe = " UNION ALL ".join(
            f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables
        )
        filled = set(conn.execute(sa.text(probe)).scalars())
        steps = []
        for table in reversed(tables):
            if table.name not in filled:
                continue
            final = table.name in FINAL_TABLES
            trigger = f"ALTER TABLE {table.name} {{}} TRIGGER {table.name}_rows_are_final"
            if final:
                steps.append(trigger.format("DISABLE"))
            steps.append(f'DELETE FROM "{table.name}"')
            if final:
                steps.append(trigger.format("ENABLE"))
        steps.append(
            "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
            "FROM pg_sequences WHERE schemaname = current_schema() "
            "AND last_value IS NOT NULL"
        )
        # One round trip: a query sent without parameters may hold several statements.
        with contextlib.closing(conn.connection.cursor()) as cursor:
            cursor.execute(";\n".join(steps))


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs():
    """The translations compiled as `make` compiles them (fuzzy entries included), when a
    catalog is newer than its compiled file: pytest run on its own speaks every language."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent / "hrdfund" / "translations"
    for po in root.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with open(po, "rb") as fh:
                catalog = read_po(fh, locale=po.parent.parent.name)
            # Written aside, then renamed: test processes started together never read half.
            aside = mo.with_suffix(f".{os.getpid()}.tmp")
            with open(aside, "wb") as fh:
                write_mo(fh, catalog, use_fuzzy=True)
            os.replace(aside, mo)


@pytest.fixture(scope="session", autouse=True)
def compiled_once():
    """Templates, URL rules and SQL statements compiled once for every app of the process
    (see tests/compiled_once.py)."""
    from flask import Flask

    from tests import compiled_once as once

    undo = [
        once.share_templates(Flask),
        once.share_url_builders(),
        once.share_url_rules(),
        once.share_compiled_sql(),
        once.share_postgresql_engines(),
    ]
    yield
    for step in undo:
        step()


@pytest.fixture(scope="session")
def pg_schema():
    """Create the schema once per session on PostgreSQL."""
    if not PG_URL:
        missing_infrastructure("HRDFUND_TEST_DATABASE_URL is not set")
    if WORKER:
        pg_database(sa.engine.make_url(PG_URL))
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
            from hrdfund import models  # noqa: F401

            db.metadata.create_all(conn)
    except sa.exc.OperationalError as exc:
        missing_infrastructure(f"PostgreSQL is not reachable: {type(exc).__name__}")
    yield PG_URL
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    return request.param


#: Where the tests' SQLite databases are kept: in memory when the machine has a tmpfs,
#: as a commit there waits for no disk (each commit of a WAL database syncs its log).
MEMORY_FOLDER = "/dev/shm"  # noqa: S108 (a folder of its own is made in it, mode 0700)


@pytest.fixture
def sqlite_folder(tmp_path):
    """A folder for the test's SQLite database, in memory when it can be; removed after."""
    if not os.path.isdir(MEMORY_FOLDER) or not os.access(MEMORY_FOLDER, os.W_OK):
        yield tmp_path
        return
    folder = tempfile.mkdtemp(prefix="hrdfund-test-", dir=MEMORY_FOLDER)
    yield Path(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def app_config(backend, tmp_path, request):
    """The overrides an app is built with; tests may extend them."""
    if backend == "postgresql":
        uri = request.getfixturevalue("pg_schema")
    else:
        uri = f"sqlite:///{request.getfixturevalue('sqlite_folder') / 'hrdfund.sqlite3'}"
    return make_config(uri, tmp_path / "instance")


class RequestIsolatedClient(FlaskClient):
    """A test client whose requests never see each other's `g`.

    Tests keep one app context open, and Flask reuses it for each request, so whatever an
    extension caches in `g` (the signed-in user, the locale) would leak from one request,
    or one client, to the next. In production every request has its own context.
    """

    def open(self, *args, **kwargs):
        g.__dict__.clear()
        try:
            return super().open(*args, **kwargs)
        finally:
            g.__dict__.clear()


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory):
    """An SQLite database with the schema and no rows, made once by the app as the tests'
    apps make theirs; each test's database starts as a copy of it."""
    folder = tmp_path_factory.mktemp("schema")
    path = folder / "hrdfund.sqlite3"
    with other_app(make_config(f"sqlite:///{path}", folder / "instance")):
        db.create_all()
    return path


#: Whether this process emptied what an earlier run left in its PostgreSQL database.
_LEFTOVERS_CLEARED = []


@pytest.fixture
def app(app_config, backend, request):
    """A fresh application with an empty database."""
    fresh = False
    if backend == "sqlite":
        path = sa.engine.make_url(app_config["SQLALCHEMY_DATABASE_URI"]).database
        if path and not os.path.exists(path):
            # A copy of the file is a thousandth of the time of creating every table.
            shutil.copyfile(request.getfixturevalue("sqlite_schema"), path)
            fresh = True
    application = create_app(app_config)
    application.test_client_class = RequestIsolatedClient
    with application.app_context():
        if backend == "sqlite" and not fresh:
            db.create_all()
        if backend == "postgresql" and not _LEFTOVERS_CLEARED:
            # Rows a run stopped halfway left behind (its teardown never ran), once per
            # process: within it, each test's teardown empties what the test filled.
            empty_tables(db.engine)
            _LEFTOVERS_CLEARED.append(True)
        yield application
        if backend == "postgresql":
            # Ended as the app ends a read when it wrote nothing: the connection keeps
            # the statements it prepared for the next test.
            end_read(db.session)
        db.session.remove()
        if backend == "postgresql":
            empty_tables(db.engine)
        else:
            # PostgreSQL's engine, its connections warm, serves the next test's app
            # (tests/compiled_once.py); an SQLite file goes with its test.
            db.engine.dispose()


@pytest.fixture
def empty_app(app_config, backend, pg_reset):
    """An app whose database has no tables at all."""
    application = create_app(app_config)
    with application.app_context():
        if backend == "postgresql":
            # No connection that ran statements on the tables about to go is kept.
            db.engine.dispose()
            pg_reset(drop_only=True)
        yield application
        db.session.remove()
        if backend == "postgresql":
            pg_reset()
        db.engine.dispose()


@pytest.fixture
def pg_reset(backend):
    """On PostgreSQL: empty the shared test schema, then rebuild it for later tests."""

    def reset(drop_only=False):
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
            if not drop_only:
                db.metadata.create_all(conn)

    return reset


@pytest.fixture
def clock():
    """The application's clock, set by the test (see tests/clock.py)."""
    clock = Clock()
    yield clock
    clock.stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_fund(app):
    from hrdfund.auth.models import Fund

    def make(name="Test Fund"):
        fund = Fund(name=name)
        db.session.add(fund)
        db.session.commit()
        return fund

    return make


@pytest.fixture
def fund(make_fund):
    return make_fund()


@pytest.fixture
def make_donor(app, fund):
    from hrdfund.pools.models import Donor

    def make(name="Donor A", fund_id=None):
        donor = Donor(name=name, fund_id=fund_id or fund.id)
        db.session.add(donor)
        db.session.commit()
        return donor

    return make


@pytest.fixture
def make_partner_org(app):
    from hrdfund.auth.models import PartnerOrganisation

    def make(name="Partner Org", country="KE"):
        org = PartnerOrganisation(name=name, country=country)
        db.session.add(org)
        db.session.commit()
        return org

    return make


@pytest.fixture
def make_pool(app, fund):
    """A pool of ``donor``'s money in ``fund`` (the test's fund by default) holding
    ``amount`` from one contribution received on ``received_on``, written straight to the
    database, a grant taking at most ``cap_per_grant`` of it when given; each keyword
    left, like ``category="medical"``, restricts it."""
    from hrdfund.ledger.models import Contribution
    from hrdfund.pools.models import Pool, PoolRestriction

    def make(
        donor,
        name,
        amount=20000,
        currency="EUR",
        received_on=date(2026, 1, 1),
        fund_id=None,
        cap_per_grant=None,
        **restrictions,
    ):
        pool = Pool(
            fund_id=fund_id or fund.id,
            donor_id=donor.id,
            name=name,
            currency=currency,
            cap_per_grant=cap_per_grant,
        )
        pool.restrictions = [PoolRestriction(kind=k, value=v) for k, v in restrictions.items()]
        db.session.add(pool)
        db.session.flush()
        db.session.add(
            Contribution(
                pool_id=pool.id,
                amount=Decimal(amount),
                received_amount=Decimal(amount),
                received_currency=currency,
                fx_rate=Decimal(1),
                received_on=received_on,
            )
        )
        db.session.commit()
        return pool

    return make


@pytest.fixture
def make_user(app, fund, make_donor, make_partner_org):
    """Create a user of a role with PASSWORD; links a fund, donor or partner as needed."""
    counter = {"n": 0}

    def make(role="applicant", login=None, password=PASSWORD, **fields):
        counter["n"] += 1
        login = login or f"{role}{counter['n']}"
        if role not in ("applicant", "partner", "network_admin"):
            fields.setdefault("fund_id", fund.id)
        if role == "donor" and "donor_id" not in fields:
            fields["donor_id"] = make_donor(f"Donor {counter['n']}", fields["fund_id"]).id
        if role == "partner" and "partner_organisation_id" not in fields:
            fields["partner_organisation_id"] = make_partner_org(f"Org {counter['n']}").id
        user = auth_services.create_user(role, login, password, **fields)
        db.session.commit()
        return user

    return make


class SecondFactorClock:
    """The clock the second factor reads its time step from (``time`` in
    hrdfund.auth.second_factor): the real one, moved on by ``offset`` seconds. Each code
    works once and only beside the current 30-second step, so an account signed in more
    than twice in a step would wait for the next one; `totp_code` moves this clock on to
    it instead. Back to real time at the start of each test."""

    def __init__(self):
        self.offset = 0

    def time(self):
        return time.time() + self.offset


SECOND_FACTOR_CLOCK = SecondFactorClock()


@pytest.fixture(scope="session", autouse=True)
def second_factor_reads_its_clock():
    """For the whole run, module fixtures that sign in included."""
    real = second_factor.time
    second_factor.time = SECOND_FACTOR_CLOCK
    yield
    second_factor.time = real


@pytest.fixture(autouse=True)
def second_factor_clock():
    SECOND_FACTOR_CLOCK.offset = 0
    return SECOND_FACTOR_CLOCK


def totp_code(user):
    """A code the server will accept now: later than any step already used. When the
    current step and the next are both used, the second factor's clock moves on a step
    (as if the person waited for their app's next code)."""
    db.session.refresh(user)
    step = int(SECOND_FACTOR_CLOCK.time() // 30)
    if user.totp_last_step is not None and user.totp_last_step > step:
        SECOND_FACTOR_CLOCK.offset += (user.totp_last_step - step) * 30
        step = user.totp_last_step
    # The current step or the next: both stay valid if the server's clock moves on to the
    # next step before it checks (the previous step would then be two behind).
    for candidate in (step, step + 1):
        if user.totp_last_step is None or candidate > user.totp_last_step:
            return pyotp.TOTP(user.totp_secret).at(candidate * 30)
    raise AssertionError("unreachable: the step after the last one used is always free")


def login(client, user, password=PASSWORD):
    """Sign ``user`` in through the forms, second factor included; return the response."""
    response = client.post("/login", data={"login": user.login, "password": password})
    if user.needs_totp:
        assert response.status_code == 302 and response.location.endswith("/login/code"), (
            response.get_data(as_text=True)[:500]
        )
        enrolling = user.totp_confirmed_at is None
        response = client.post("/login/code", data={"code": totp_code(user)})
        if enrolling:
            # The first code activates the factor; the recovery codes are shown once.
            # In whatever language the account reads: the list of codes.
            assert '<ul class="secret codes">' in response.get_data(as_text=True), response.status
            return response
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response


def signed_in(app, user):
    """A fresh client of ``app`` signed in as ``user``."""
    client = app.test_client()
    login(client, user)
    return client


def session_contents(app, client):
    """What the client's session cookie holds, its signature checked."""
    value = client.get_cookie(COOKIE).value
    return app.session_interface.get_signing_serializer(app).loads(value)


def csrf_token(client, path):
    """The CSRF token of the form on ``path``."""
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def form_errors(response):
    """The messages of the page's error summary."""
    html = response.get_data(as_text=True)
    summary = re.search(r'<div class="error-summary"[^>]*>(.*?)</div>', html, re.S)
    return re.findall(r"<p>(.*?)</p>", summary.group(1)) if summary else []


def count_rows(model):
    """How many rows the table of ``model`` holds."""
    return db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def audit_actions():
    """The actions of the audit trail, every chain's, in the order they were written."""
    return db.session.execute(sa.select(AuditEvent.action).order_by(AuditEvent.id)).scalars().all()


def start_application(client, category="relocation", first=None, **extra):
    """Start an application through the forms as the signed-in applicant or partner:
    choose the kind of support (which stores nothing), then save the first step with
    ``first`` (its answers, none by default), which opens the draft; return its case
    code."""
    response = save_first_step(client, choose_support(client, category, **extra), first)
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    return response.location.split("/")[2]


def choose_support(client, category="relocation", **extra):
    """Choose the fund and the kind of support as the signed-in applicant or partner; the
    answer is the first step's page, carrying the choice. The start page sends the choice
    by GET: it stores nothing."""
    response = client.get("/apply/new", query_string={"category": category, **extra})
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    return response


def carried_choice(html):
    """What the first step's page carries of the choice before it (fund, kind of support,
    a partner's consent), as the form sends it back."""
    return {
        name: input_value(html, name)
        for name in ("fund", "category", "consent", "consent_method")
        if re.search(rf'<input[^>]*\bname="{name}"', html)
    }


def save_first_step(client, chosen, first=None):
    """Save the first step of the page ``chosen`` (the answer to choosing the kind of
    support) with the answers ``first``: the save that opens the draft."""
    carried = carried_choice(chosen.get_data(as_text=True))
    return client.post("/apply/new", data={**carried, **(first or {}), "save": "1"})


def step_data(step, data):
    """The answers of the whole form's ``data`` that one step of it sends."""
    return {k: v for k, v in data.items() if k.split("-")[0] in steps.FIELDS[step]}


def apply_step_by_step(client, category, data, send=True, seen=lambda response: response, **extra):
    """Apply as a defender on a phone does: choose the kind of support, open and save each
    step in turn with its part of the whole form's ``data``, read the last step and, with
    ``send``, send from it. ``seen`` is handed every response. Returns the case code."""
    chosen = seen(choose_support(client, category, **extra))
    first = seen(save_first_step(client, chosen, step_data(steps.DEFENDER, data)))
    assert first.status_code == 302, first.get_data(as_text=True)[:400]
    uid = first.location.split("/")[2]
    for step in steps.STEPS[1:]:
        seen(client.get(f"/applications/{uid}/steps/{step}"))
        saved = seen(
            client.post(
                f"/applications/{uid}/steps/{step}", data={**step_data(step, data), "save": "1"}
            )
        )
        assert saved.status_code == 302, (step, saved.status_code)
        assert saved.location == f"/applications/{uid}/steps/{steps.next_step(step)}"
    review = f"/applications/{uid}/steps/{steps.REVIEW}"
    seen(client.get(review))
    if send:
        sent = seen(client.post(review))
        assert sent.location == f"/applications/{uid}", sent.location
    return uid


def make_case(fund, *, commit=True, **fields):
    """A case sent to ``fund``, written through the model: medical, in EUR, submitted from
    Kenya at normal urgency just now, its response and decision targets set from its
    submission time as sending it sets them (unless the test gives ``response_due_at`` or
    ``decision_due_at``; none when ``submitted_at`` is None). Every keyword, a column or a
    relationship such as ``budget_lines``, overrides or adds to these. Committed, or only
    added to the session when ``commit`` is false."""
    values = {
        "fund_id": fund.id,
        "category": Category.MEDICAL,
        "currency": "EUR",
        "status": ApplicationStatus.SUBMITTED,
        "country": "KE",
        "urgency": Urgency.NORMAL,
        "submitted_at": utcnow(),
        **fields,
    }
    case = Application(**values)
    due = {"response_due_at", "decision_due_at"} & fields.keys()
    if case.submitted_at is not None and not due:
        targets.set_targets(case, case.submitted_at)
    db.session.add(case)
    if commit:
        db.session.commit()
    return case


def make_costed_case(fund, *, commit=True, **fields):
    """A sent case, as ``make_case`` makes it, asking 6,000 EUR in two budget lines
    (surgery 5,000 and transport 1,000) and naming two references."""
    values = {
        "amount_requested": Decimal("6000.00"),
        "budget_lines": [
            BudgetLine(description="Surgery", amount=Decimal("5000.00"), currency="EUR"),
            BudgetLine(description="Transport", amount=Decimal("1000.00"), currency="EUR"),
        ],
        "references": [Reference(name="Ref A", contact="a"), Reference(name="Ref B", contact="b")],
        **fields,
    }
    return make_case(fund, commit=commit, **values)


def application_by_uid(uid):
    """The application with case code ``uid``, read afresh from the database."""
    db.session.expire_all()
    return db.session.execute(sa.select(Application).where(Application.uid == uid)).scalar_one()


def agree_to_listing(case):
    """Add the defender's consent, given in the form when the case was made, to show the
    case to donors, anonymised (not committed)."""
    db.session.add(
        Consent(
            application_id=case.id, kind=ConsentKind.STORY, method="form", given_at=case.created_at
        )
    )


def jpeg_with_gps(note):
    """A small JPEG whose EXIF holds ``note`` as its description and a GPS position."""
    image = Image.new("RGB", (32, 24), "red")
    exif = Image.Exif()
    exif[0x010E] = note  # ImageDescription
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def input_value(html, name):
    """The value of the input named ``name`` in a page."""
    tag = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', html).group(0)
    return re.search(r'\bvalue="([^"]*)"', tag).group(1)


def sign_up(client, password=PASSWORD, **fields):
    """Sign up through the page, with the login name it made and the seal it carries;
    returns the response and the login."""
    page = client.get("/register").get_data(as_text=True)
    login_name = input_value(page, "login")
    data = {
        "login": login_name,
        "login_seal": input_value(page, "login_seal"),
        "password": password,
        "password_again": password,
        **fields,
    }
    return client.post("/register", data=data), login_name


@pytest.fixture
def login_as(client, make_user):
    """Create a user of ``role``, sign in with the shared client and return the user."""

    def do(role, **fields):
        user = make_user(role, **fields)
        login(client, user)
        return user

    return do


def set_cookie_header(response, name=COOKIE):
    """The Set-Cookie header of the cookie ``name`` in ``response``, or None."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    return None


def refused_page(client, response, page=None):
    """The page a refused form came back on: the POST answered 303 See Other to it (to
    ``page``, when given, with its anchor), and a GET of it answers 200. Returns that page."""
    assert response.status_code == 303, (
        response.status_code,
        response.get_data(as_text=True)[:800],
    )
    if page is not None:
        assert response.location == page, response.location
    shown = client.get(response.location)
    assert shown.status_code == 200, shown.status_code
    return shown


def as_shown(client, response):
    """What the browser shows after ``response``: for a refused form (303 See Other) the
    page it comes back on, marked ``refused``; otherwise the response itself."""
    if response.status_code != 303:
        return response
    shown = refused_page(client, response)
    shown.refused = True
    return shown


# -- A fund with money ----------------------------------------------------------------------
# A small fund with money in it, built through the services as staff would build it: a donor
# with a EUR pool and a USD pool, a rate table, managers, finance, and approved grants on
# demand.

#: 1 EUR buys this many USD in the table (and 1 USD this many KES).
EUR_USD = Decimal("1.10000000")
USD_KES = Decimal("130.00000000")


class MoneyWorld:
    """Pools with money, the staff who move it, and a helper to approve grants."""

    def __init__(self, fund, make_user, make_donor):
        self.fund = fund
        self.make_user = make_user
        self.admin = make_user("admin")
        self.m1 = make_user("manager")
        self.m2 = make_user("manager")
        self.finance = make_user("finance")
        self.reviewer = make_user("reviewer")
        self.applicant = make_user("applicant")
        self.donor = make_donor("Protection Donor")
        # Finance keeps the table and a manager confirms each entry: no rate in it is one
        # person's alone, so it is a reference for everyone.
        for base, quote, rate, source in (
            ("EUR", "USD", EUR_USD, "ECB"),
            ("USD", "KES", USD_KES, "CBK"),
        ):
            entry = pools.record_rate(
                fund.id, self.finance, date(2026, 1, 1), base, quote, rate, source
            )
            pools.confirm_rate(entry, self.m2)
        self.eur = pools.create_pool(self.donor, self.m1, "Emergency EUR", "EUR")
        self.usd = pools.create_pool(self.donor, self.m1, "Relocation USD", "USD")
        pools.record_contribution(self.eur, self.m1, Decimal("20000"), "EUR", date(2026, 1, 2))
        pools.record_contribution(self.usd, self.m1, Decimal("30000"), "USD", date(2026, 1, 2))
        db.session.commit()

    @classmethod
    def around(cls, fund, applicant, reviewer, manager):
        """The grant helper over a fund that exists already (the demo's)."""
        world = cls.__new__(cls)
        world.fund, world.applicant, world.reviewer, world.m1 = fund, applicant, reviewer, manager
        return world

    def recommended(
        self,
        name=None,
        category=Category.RELOCATION,
        currency="EUR",
        applicant=None,
        reviewer=None,
    ):
        """A case that ``reviewer`` (the world's reviewer by default) reviewed and
        recommended for approval, flushed; ``name`` also gives it a defender key."""
        case = Application(
            fund_id=self.fund.id,
            applicant_id=(applicant or self.applicant).id,
            category=category,
            country="KE",
            region="East Africa",
            currency=currency,
            status=ApplicationStatus.RECOMMENDED,
        )
        if name:
            case.defender_name = name
            case.defender_key = defender_key(name, "KE")
        db.session.add(case)
        db.session.flush()
        db.session.add(
            Review(
                application_id=case.id,
                reviewer_id=(reviewer or self.reviewer).id,
                risk_level=RiskLevel.HIGH,
                recommendation=Recommendation.APPROVE,
                currency=currency,
            )
        )
        db.session.flush()
        return case

    def grant(
        self,
        amount="3000",
        pool=None,
        category=Category.RELOCATION,
        currency="EUR",
        name="Defender One",
        applicant=None,
    ):
        """An approved grant of ``amount`` for a recommended case, drawn from ``pool``."""
        case = self.recommended(name, category, currency, applicant)
        pool = pool or self.eur
        grant = approve_with_recorded_rates(
            case, self.m1, Decimal(amount), [(pool.id, Decimal(amount))]
        )
        db.session.commit()
        return grant

    def plan(self, grant, kind="tranches", count=2, starts_on=date(2026, 2, 1), **options):
        """A payment plan made by a manager."""
        plan = plans.create_plan(grant, self.m1, kind, starts_on, count=count, **options)
        db.session.commit()
        return plan


_keys = iter(range(1, 10**6))


def pay(world, grant, amount, currency="EUR", instalment=1, key=None, **options):
    """Finance records a payment; returns the payment, or the payment held for a second
    person (committed)."""
    instalments = payments.grant_instalments(grant)
    payment, _created = payments.record_disbursement(
        grant,
        options.pop("actor", world.finance),
        allocation=options.pop("allocation", payments.grant_allocations(grant)[0]),
        instalment=instalments[instalment - 1] if instalment else None,
        payee_type=options.pop("payee_type", PayeeType.HOST_ORGANISATION),
        payee_details=options.pop("payee_details", "IBAN DE00 1234"),
        channel=options.pop("channel", Channel.BANK),
        amount_paid=Decimal(amount),
        currency_paid=currency,
        paid_on=options.pop("paid_on", date(2026, 2, 3)),
        idempotency_key=key or f"key-{next(_keys)}",
        **options,
    )
    db.session.commit()
    return payment


#: The payee details ``payment_data`` types into the payment form.
PAYEE_CANARY = "PAYEE-CANARY-7Q4Z IBAN XX00"


def payment_data(grant, **changes):
    """What finance types into the payment form of ``grant``: 1,000 EUR paid by bank to a
    host organisation on its first allocation and first instalment (none when it has no
    plan); each ``"pay-..."`` keyword replaces or adds a field."""
    instalments = payments.grant_instalments(grant)
    data = {
        "pay-allocation": payments.grant_allocations(grant)[0].id,
        "pay-instalment": instalments[0].id if instalments else 0,
        "pay-payee_type": "host_organisation",
        "pay-payee_details": PAYEE_CANARY,
        "pay-channel": "bank",
        "pay-amount_paid": "1000.00",
        "pay-currency_paid": "EUR",
        "pay-fee": "12.50",
        "pay-paid_on": "2026-02-03",
        "pay-reference": "PAY-0001",
        "pay-idempotency_key": "form-key-1",
    }
    data.update(changes)
    return data


def confirm(world, held, by=None):
    """A second person (the second manager by default) confirms a held payment; returns
    the payment it booked (committed)."""
    payment = holds.confirm_held_payment(held, by or world.m2)
    db.session.commit()
    return payment


@pytest.fixture
def money_world(fund, make_user, make_donor):
    """The fund with money: pools, staff, rates, and grants and plans on demand."""
    return MoneyWorld(fund, make_user, make_donor)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` as tests/scheduling.py shares it: the longest units first."""
    if config.getvalue("dist") == "loadfile":
        from tests.scheduling import LongestFirstScheduling

        return LongestFirstScheduling(config, log)
    return None
