"""The migrations build exactly the models' schema, on SQLite and PostgreSQL, and undo."""

import itertools
from datetime import date
from decimal import Decimal
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.core.extensions import db
from tests.single_chain import BEFORE_CHAINS, one_chain_hash, one_chain_rows, write_one_chain


def _tables():
    return set(sa.inspect(db.engine).get_table_names())


def test_upgrade_matches_models_then_downgrades_to_base(empty_app):
    """`flask db upgrade` builds every table, `flask db check` finds nothing pending,
    and `flask db downgrade base` removes it all again."""
    assert _tables() == set()
    flask_migrate.upgrade()
    assert set(db.metadata.tables) <= _tables()
    flask_migrate.check()  # exits with status 1 (SystemExit) on any difference
    flask_migrate.downgrade(revision="base")
    assert _tables() <= {"alembic_version"}


def test_check_notices_a_model_change(empty_app):
    """The check is real: an index missing from the database is reported."""
    flask_migrate.upgrade()
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_applications_queue"))
    with pytest.raises(SystemExit) as exited:
        flask_migrate.check()
    assert exited.value.code == 1


#: The revision that moved the sign-in counters off `users`, which rebuilds that table on
#: SQLite while other tables refer to it.
COUNTERS_OFF_USERS = "dc82ef6e39f7"


def _rows(conn):
    return {
        table: conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
        for table in ("users", "recovery_codes", "alerts")
    }


def test_rebuilding_the_users_table_keeps_every_row_that_refers_to_it(empty_app):
    """Accounts, the recovery codes that would go with them (ON DELETE CASCADE) and the
    alerts that name them (no cascade) all stay, up and down again."""
    flask_migrate.upgrade(revision=COUNTERS_OFF_USERS)
    flask_migrate.downgrade(revision="-1")
    now = {"at": "2026-11-30 12:00:00"}
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (uid, login, role, active, session_version, failed_logins,"
                " locked_until, created_at) VALUES ('u1', 'amina', 'applicant', true, 1, 3,"
                " :at, :at)"
            ),
            now,
        )
        user_id = conn.execute(sa.text("SELECT id FROM users")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (:u, 'h', :at)"
            ),
            {"u": user_id, **now},
        )
        conn.execute(
            sa.text(
                "INSERT INTO alerts (user_id, kind, created_at, attempts)"
                " VALUES (:u, 'urgent_case', :at, 0)"
            ),
            {"u": user_id, **now},
        )
        before = _rows(conn)
    assert before == {"users": 1, "recovery_codes": 1, "alerts": 1}
    flask_migrate.upgrade(revision=COUNTERS_OFF_USERS)
    with db.engine.connect() as conn:
        assert _rows(conn) == before
        assert "failed_logins" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}
    flask_migrate.downgrade(revision="-1")
    with db.engine.connect() as conn:
        assert _rows(conn) == before
        assert conn.execute(sa.text("SELECT failed_logins FROM users")).scalar() == 0
    flask_migrate.upgrade()
    if db.engine.dialect.name == "sqlite":
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


#: The columns whose clear text the free-text migration encrypts.
MOVED = {
    "users": ("display_name",),
    "contributions": ("reference", "reason"),
    "exchange_rates": ("source",),
    "releases": ("reason",),
    "cofundings": ("funder",),
    "disbursements": ("rate_source", "rate_reason", "reference", "reason"),
}
BEFORE_FREE_TEXT = "dc82ef6e39f7"


def _money_world():
    """A fund where every moved column holds a value, written through the services."""
    from hrdfund.auth import services as auth_services
    from hrdfund.auth.models import Fund
    from hrdfund.disbursements.services import reverse_disbursement
    from hrdfund.grants.plans import close_grant
    from hrdfund.pools.models import Donor
    from hrdfund.pools.services import record_contribution, reverse_contribution
    from hrdfund.reviews.services import record_cofunding
    from tests.conftest import PASSWORD, MoneyWorld, pay

    fund = Fund(name="A fund before the upgrade")
    db.session.add(fund)
    db.session.flush()
    logins = itertools.count(1)

    def make_user(role, **fields):
        fields.setdefault("fund_id", fund.id) if role != "applicant" else None
        return auth_services.create_user(
            role, f"{role}{next(logins)}", PASSWORD, display_name=f"Named {role}", **fields
        )

    def make_donor(name):
        donor = Donor(name=name, fund_id=fund.id)
        db.session.add(donor)
        db.session.flush()
        return donor

    world = MoneyWorld(fund, make_user, make_donor)
    received = record_contribution(
        world.eur, world.m1, Decimal(500), "EUR", date(2026, 1, 5), reference="Letter 7/2026"
    )
    reverse_contribution(received, world.m1, "Booked twice, Nairobi office")
    grant = world.grant("2000")
    pay(world, grant, "300", instalment=None, reference="TRF-1001")
    bounced = pay(
        world,
        grant,
        "400",
        currency="USD",
        instalment=None,
        reference="TRF-1002",
        rate=Decimal("0.91"),
        rate_source="Bank quote",
        rate_reason="The bank's own rate that day",
    )
    reverse_disbursement(bounced, world.finance, "The defender moved to Kisumu")
    record_cofunding(grant.application, world.reviewer, "Regional Fund", None, "EUR", None, None)
    close_grant(grant, world.m1, "Safe again, back at work")
    db.session.commit()
    return world


def _decrypted():
    """Every value of the moved columns, read through the models: {(table, column, id)}."""
    from hrdfund.ops.rotation import encrypted_attributes

    values = {}
    for model, attribute in encrypted_attributes():
        if attribute.name in MOVED.get(model.__tablename__, ()):
            for row in db.session.scalars(sa.select(model)):
                values[(model.__tablename__, attribute.name, row.id)] = attribute.__get__(row)
    return values


def _stored():
    """The raw values of the moved columns: {(table, column, id): value}."""
    values = {}
    with db.engine.connect() as conn:
        for table, columns in MOVED.items():
            for column in columns:
                for row_id, value in conn.execute(sa.text(f"SELECT id, {column} FROM {table}")):
                    values[(table, column, row_id)] = value
    return values


def test_free_text_moves_into_encrypted_columns_and_back(empty_app, backend):
    """Clear reasons, references, rate sources, other funders and display names are
    encrypted by the upgrade under their own rows and decrypted back by the downgrade;
    the seals verify, statements still match payments by reference, and on PostgreSQL a
    final ledger row lets exactly its encrypted columns and blind index change."""
    from hrdfund.disbursements import reconcile
    from hrdfund.ledger.models import Disbursement, reference_key
    from hrdfund.ledger.seals import writable_columns

    flask_migrate.upgrade()
    world = _money_world()
    typed = _decrypted()
    assert {(t, c) for t, c, _id in typed} == {(t, c) for t, cs in MOVED.items() for c in cs}
    assert "The defender moved to Kisumu" in typed.values()
    finance_id = world.finance.id
    db.session.remove()

    flask_migrate.downgrade(revision=BEFORE_FREE_TEXT)
    assert _stored() == typed, "clear text again"

    flask_migrate.upgrade()
    flask_migrate.check()
    stored = _stored()
    assert stored.keys() == typed.keys()
    for key, blob in stored.items():
        if typed[key] is not None:
            assert typed[key].encode() not in bytes(blob), key
    assert _decrypted() == typed
    uids = db.session.scalars(sa.text("SELECT uid FROM exchange_rates")).all()
    assert len(set(uids)) == len(uids) >= 2 and all(uids)
    for payment in db.session.scalars(sa.select(Disbursement)):
        assert payment.reference_key == reference_key(payment.reference)
    check = empty_app.test_cli_runner().invoke(args=["hrdfund", "check"])
    assert check.exit_code == 0, check.output
    from hrdfund.auth.models import User

    finance = db.session.get(User, finance_id)
    statement = b"reference,amount,currency,date,status\nTRF-1001,300.00,EUR,2026-02-05,delivered\n"
    (line,) = reconcile.check_statement(finance, statement)
    assert line.payment.reference == "TRF-1001"

    if backend == "postgresql":
        arguments = dict(
            db.session.execute(
                sa.text(
                    "SELECT c.relname, encode(t.tgargs, 'escape') FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname LIKE '%_rows_are_final'"
                )
            ).all()
        )
        for table in ("contributions", "releases", "disbursements"):
            assert arguments[table].split("\\000")[:-1] == writable_columns(table), table
        db.session.execute(sa.text("UPDATE releases SET reason = NULL"))
        with pytest.raises(sa.exc.DBAPIError, match="never edited"):
            db.session.execute(sa.text("UPDATE contributions SET reason = NULL, amount = 1"))
        db.session.rollback()
    db.session.remove()


#: The tables whose clear text the free-text migration dropped.
VACUUMED = ("users", "contributions", "exchange_rates", "releases", "cofundings", "disbursements")


def _files():
    """On PostgreSQL, the file each table's rows are written in (a rewrite gives a new
    one); on SQLite, the bytes of the database and its write-ahead log."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            return dict(
                conn.execute(
                    sa.text(
                        "SELECT relname, relfilenode FROM pg_class WHERE relname = ANY(:t) "
                        "AND relnamespace = current_schema()::regnamespace"
                    ),
                    {"t": list(VACUUMED)},
                ).all()
            )
    path = Path(db.engine.url.database)
    return b"".join(name.read_bytes() for name in (path, Path(f"{path}-wal")) if name.exists())


def test_the_clear_text_the_upgrade_dropped_is_not_left_in_the_files(empty_app, backend):
    """Dropping the clear columns left their values behind: in every row of PostgreSQL's
    tables (a dropped column stays in the row until the table is rewritten) and their
    dead versions, and in SQLite's pages until a checkpoint. The upgrade rewrites the
    tables."""
    flask_migrate.upgrade()
    _money_world()
    db.session.remove()
    flask_migrate.downgrade(revision=BEFORE_FREE_TEXT)
    db.engine.dispose()
    before = _files()
    if backend == "sqlite":
        assert b"The defender moved to Kisumu" in before

    flask_migrate.upgrade()
    after = _files()  # as a server running on would leave them, before any checkpoint
    if backend == "postgresql":
        # A new file for each table: every row written again, the dropped values emptied.
        assert sorted(before) == sorted(VACUUMED)
        assert [t for t in VACUUMED if after[t] == before[t]] == []
    else:
        for clear in ("The defender moved to Kisumu", "Bank quote", "Safe again, back at work"):
            assert clear.encode() not in after, clear
    assert "The defender moved to Kisumu" in _decrypted().values()
    db.session.remove()


def test_the_migrated_schema_takes_a_held_payments_alert(empty_app):
    """The alert kind added with held payments is allowed by the migrated CHECK (the models'
    own schema is not what production runs), and refused again after a downgrade."""
    flask_migrate.upgrade()
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (uid, login, role, active, session_version, created_at) "
                "VALUES ('u1', 'someone', 'applicant', true, 1, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO alerts (user_id, kind, created_at, attempts) "
                "SELECT id, 'payment_held', CURRENT_TIMESTAMP, 0 FROM users"
            )
        )
    # Down to the revision before held payments, whatever came after them.
    flask_migrate.downgrade(revision="3785dbf937a5")
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO alerts (user_id, kind, created_at, attempts) "
                "SELECT id, 'payment_held', CURRENT_TIMESTAMP, 0 FROM users"
            )
        )
    flask_migrate.downgrade(revision="base")


#: The revision before rates waited for a second person.
BEFORE_SECOND_RATE_KEEPER = "4aef067cf455"


def test_a_downgrade_drops_the_rates_still_waiting_and_keeps_payments_sealed(empty_app):
    """Going back before rates waited for a second person: one still waiting would count
    at once, so it leaves the table; payments that kept what they were weighed against are
    sealed without it, and `check` passes once upgraded again."""
    from hrdfund.pools.services import record_rate

    flask_migrate.upgrade()
    world = _money_world()
    waiting = record_rate(
        world.fund.id, world.finance, date(2026, 3, 1), "EUR", "USD", Decimal(5), "x"
    )
    db.session.commit()
    assert waiting.needs_second
    waiting_id = waiting.id
    kept = db.session.execute(
        sa.text("SELECT count(*) FROM disbursements WHERE rate_tolerance_percent IS NOT NULL")
    ).scalar()
    assert kept >= 2
    db.session.remove()
    flask_migrate.downgrade(revision=BEFORE_SECOND_RATE_KEEPER)
    with db.engine.connect() as conn:
        rates = conn.execute(sa.text("SELECT id FROM exchange_rates")).scalars().all()
    assert waiting_id not in rates and len(rates) >= 2
    flask_migrate.upgrade()
    check = empty_app.test_cli_runner().invoke(args=["hrdfund", "check"])
    assert check.exit_code == 0, check.output
    db.session.remove()


#: The revision before sent cases had a network key.
BEFORE_NETWORK_KEY = "cb8a15d9e3a9"


def test_the_upgrade_gives_every_sent_case_its_network_key(empty_app):
    """Cases sent before the duplicate check across funds existed are matched by it after
    the upgrade: each sent case with a name and a country gets the key sending it gives now;
    a draft, a case with no country and a purged case get none. The downgrade drops it."""
    from hrdfund.auth.models import Fund
    from hrdfund.cases.models import Application, ApplicationStatus
    from hrdfund.cases.services import network_key
    from hrdfund.core.columns import utcnow
    from hrdfund.core.support import Category

    flask_migrate.upgrade()
    fund = Fund(name="A fund before the network")
    db.session.add(fund)
    db.session.flush()
    cases = {}
    for label, status, name, country, purged in (
        ("sent", ApplicationStatus.SUBMITTED, "  José  MARÍA Ndlovu ", "KE", None),
        ("paid", ApplicationStatus.PAYING, "Amina Diallo", "SN", None),
        ("draft", ApplicationStatus.DRAFT, "Amina Diallo", "SN", None),
        ("no country", ApplicationStatus.SUBMITTED, "Amina Diallo", None, None),
        ("purged", ApplicationStatus.COMPLETED, "Amina Diallo", "SN", utcnow()),
    ):
        case = Application(
            fund_id=fund.id,
            category=Category.MEDICAL,
            status=status,
            currency="EUR",
            country=country,
            purged_at=purged,
            defender_name=name,
        )
        db.session.add(case)
        cases[label] = case
    db.session.commit()
    ids = {label: case.id for label, case in cases.items()}
    db.session.remove()

    flask_migrate.downgrade(revision=BEFORE_NETWORK_KEY)
    with db.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("applications")}
    assert "network_key" not in columns
    flask_migrate.upgrade()
    flask_migrate.check()
    keys = dict(db.session.execute(sa.text("SELECT id, network_key FROM applications")).all())
    assert keys[ids["sent"]] == network_key("jose maria ndlovu", "KE")
    assert keys[ids["paid"]] == network_key("Amina Diallo", "SN")
    assert keys[ids["sent"]] != keys[ids["paid"]]
    assert [keys[ids[label]] for label in ("draft", "no country", "purged")] == [None] * 3
    db.session.remove()


def test_the_single_chain_becomes_the_instances_and_the_chains_merge_back(empty_app):
    """Entries written when there was one chain verify after the upgrade, in the
    instance's chain, against the head recorded then; the downgrade merges the chains back
    into one that verifies as the single chain did, the old entries unchanged."""
    from hrdfund import audit
    from hrdfund.auth.models import Fund

    key = empty_app.extensions["hrdfund_audit_key"]
    flask_migrate.upgrade(revision=BEFORE_CHAINS)
    seq, digest = write_one_chain(key, 3)
    before = one_chain_rows()
    flask_migrate.upgrade()
    runner = empty_app.test_cli_runner()
    for head in (f"{seq}:{digest}", f"0:{seq}:{digest}"):
        check = runner.invoke(args=["hrdfund", "check", "--head", head])
        assert check.exit_code == 0, check.output
        assert "The instance's audit chain: verified up to entry 3." in check.output
    a, b = Fund(name="Fund A"), Fund(name="Fund B")
    db.session.add_all([a, b])
    db.session.flush()
    for fund in (a, b, None, a, None, b):
        audit.record("test.after", object_type="things", object_id="x", fund=fund)
    db.session.commit()
    appended = [
        (r.chain, r.seq) for r in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))
    ]
    assert appended == [(0, 1), (0, 2), (0, 3), (1, 1), (2, 1), (0, 4), (1, 2), (0, 5), (2, 2)]
    db.session.remove()

    flask_migrate.downgrade(revision=BEFORE_CHAINS)
    rows = one_chain_rows()
    assert [row["seq"] for row in rows] == list(range(1, 10))
    assert [dict(row) for row in rows[:3]] == [dict(row) for row in before]
    assert [row["action"] for row in rows[3:]] == ["test.after"] * 6
    prev_hash = "0" * 64
    for row in rows:
        assert row["prev_hash"] == prev_hash
        assert row["hash"] == one_chain_hash(key, prev_hash, row["seq"], row), row["seq"]
        prev_hash = row["hash"]

    flask_migrate.upgrade()
    check = runner.invoke(args=["hrdfund", "check"])
    assert check.exit_code == 0, check.output
    assert "The instance's audit chain: verified up to entry 9." in check.output
    db.session.remove()


def test_the_downgrade_refuses_to_merge_a_broken_chain(empty_app, capsys):
    """Merging hashes every entry again: an altered one would come out sound, so the
    downgrade stops first and changes nothing."""
    from hrdfund import audit
    from hrdfund.auth.models import Fund

    flask_migrate.upgrade()
    fund = Fund(name="Fund A")
    db.session.add(fund)
    db.session.flush()
    for _ in range(3):
        audit.record("test.event", object_type="things", object_id="x", fund=fund)
    db.session.commit()
    db.session.execute(
        sa.text("UPDATE audit_events SET object_id = 'y' WHERE chain = :c AND seq = 2"),
        {"c": fund.id},
    )
    db.session.commit()
    db.session.remove()
    with pytest.raises(SystemExit):
        flask_migrate.downgrade(revision=BEFORE_CHAINS)
    said = capsys.readouterr().err
    assert "do not verify under this audit key (chain 1 at entry 2)" in said
    with db.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("audit_events")}
    assert {"id", "chain"} <= columns, "nothing was changed"
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET object_id = 'x' WHERE seq = 2"))
    flask_migrate.downgrade(revision="base")


#: The revision before short case codes.
BEFORE_CASE_CODES = "4247a59e3e99"


def test_the_upgrade_gives_every_sent_case_a_short_code_and_counts_on_after_them(empty_app):
    """Cases sent before short codes existed get theirs in the order each fund received
    them, counted per fund and per year; a draft gets none; the next case sent takes the
    number after them. The downgrade drops the codes and the counters."""
    from datetime import datetime

    from hrdfund.auth.models import Fund
    from hrdfund.cases.models import Application, ApplicationStatus
    from hrdfund.cases.services import change_status
    from hrdfund.core.support import Category

    flask_migrate.upgrade()
    funds = [Fund(name="Fund A"), Fund(name="Fund B")]
    db.session.add_all(funds)
    db.session.flush()
    a, b = (fund.id for fund in funds)
    cases = {}
    for label, fund_id, sent in (
        ("a 2026 second", a, datetime(2026, 3, 2, 9)),
        ("a 2025", a, datetime(2025, 12, 31, 23)),
        ("b 2026", b, datetime(2026, 1, 5, 9)),
        ("a 2026 first", a, datetime(2026, 1, 1, 0, 30)),
        ("a draft", a, None),
    ):
        case = Application(
            fund_id=fund_id,
            category=Category.MEDICAL,
            status=ApplicationStatus.SUBMITTED if sent else ApplicationStatus.DRAFT,
            currency="EUR",
            submitted_at=sent,
        )
        db.session.add(case)
        cases[label] = case
    db.session.commit()
    ids = {label: case.id for label, case in cases.items()}
    db.session.remove()

    flask_migrate.downgrade(revision=BEFORE_CASE_CODES)
    with db.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("applications")}
    assert "code" not in columns and "case_code_counters" not in _tables()
    flask_migrate.upgrade()
    flask_migrate.check()
    codes = dict(db.session.execute(sa.text("SELECT id, code FROM applications")).all())
    assert {label: codes[ids[label]] for label in ids} == {
        "a 2025": f"HRD{a}-25-0001",
        "a 2026 first": f"HRD{a}-26-0001",
        "a 2026 second": f"HRD{a}-26-0002",
        "b 2026": f"HRD{b}-26-0001",
        "a draft": None,
    }
    draft = db.session.get(Application, ids["a draft"])
    change_status(draft, ApplicationStatus.SUBMITTED, at=datetime(2026, 6, 1, 12))
    db.session.commit()
    assert draft.code == f"HRD{a}-26-0003"
    db.session.remove()


#: The revision before the receipts table's confirmations became answers.
BEFORE_ONE_KIND_OF_RECEIPT = "7c1d4e9a2b60"


def _receipt_figures(finance_id, today):
    """What Follow-up, the dashboard and the applicant's list read of answers and
    receipts: the payments overdue (listed and counted), those the payee side reported
    short or not received, and the cases waiting for the applicant's answer."""
    from hrdfund.auth.models import User
    from hrdfund.cases.models import Application
    from hrdfund.disbursements import followup, panels

    days = 14
    finance = db.session.get(User, finance_id)
    cases = db.session.scalars(sa.select(Application)).all()
    overdue = followup.receipts_overdue(finance, today, days)
    return {
        "overdue": [payment.id for payment, _uid, _code in overdue],
        "counted": followup.receipts_overdue(finance, today, days, count=True),
        "reported": sorted(
            m.answer.disbursement_id for m in followup.mismatches(finance) if m.by_payee
        ),
        "waiting": sorted(case_id for case_id, _w in panels.payments_to_confirm(cases)),
    }


def _page_for(app, user_id, url):
    """``url`` as the user ``user_id`` reads it once signed in."""
    from hrdfund.auth.models import User
    from tests.conftest import RequestIsolatedClient, signed_in

    app.test_client_class = RequestIsolatedClient
    return signed_in(app, db.session.get(User, user_id)).get(url)


def test_confirmations_kept_before_answers_become_answers_and_go_back(empty_app):
    """Each row of the old receipts table becomes the answer "received", given when and by
    whom the payment was confirmed; an answer given since still stands over it. Follow-up,
    the dashboard and the applicant's list give the same figures after as before, both case
    pages show it, and `check` passes. The downgrade gives the confirmations back to the
    receipts table as they were, and leaves the answers given since where they are."""
    from datetime import datetime, timedelta

    from hrdfund.core.columns import utcnow
    from hrdfund.disbursements import receipts
    from hrdfund.ledger.models import ReceiptAnswer
    from tests.conftest import pay

    flask_migrate.upgrade()
    world = _money_world()
    today = utcnow().date()
    grant = world.grant("4000")
    world.plan(grant, kind="one_off", starts_on=today - timedelta(days=90))
    confirmed, confirmed_then_lost, unanswered, answered = (
        pay(world, grant, "400", instalment=1, paid_on=today - timedelta(days=60 - i))
        for i in range(4)
    )
    receipts.answer_receipt(answered, world.applicant, "received")
    lost = receipts.answer_receipt(confirmed_then_lost, world.applicant, "not_received")
    db.session.commit()
    ids = {
        "confirmed": confirmed.id,
        "confirmed then lost": confirmed_then_lost.id,
        "unanswered": unanswered.id,
        "answered": answered.id,
    }
    case_uid, applicant_id, lost_id = grant.application.uid, world.applicant.id, lost.id
    finance_id = world.finance.id
    answers_before = db.session.execute(
        sa.text("SELECT id, uid, disbursement_id, answer FROM receipt_answers ORDER BY id")
    ).all()
    db.session.remove()

    flask_migrate.downgrade(revision=BEFORE_ONE_KIND_OF_RECEIPT)
    kept = [
        (7, ids["confirmed"], applicant_id, datetime(2026, 11, 2, 9, 30)),
        (8, ids["confirmed then lost"], applicant_id, datetime(2026, 11, 3, 10, 0)),
    ]
    with db.engine.begin() as conn:
        for receipt in kept:
            conn.execute(
                sa.text(
                    "INSERT INTO receipts (id, disbursement_id, confirmed_by_id, confirmed_at) "
                    "VALUES (:id, :payment, :by, :at)"
                ),
                dict(zip(("id", "payment", "by", "at"), receipt, strict=True)),
            )
        # The older code worked the payment's open items out again as it kept a receipt.
        conn.execute(
            sa.text("DELETE FROM open_items WHERE kind = 'receipt' AND item_id = :id"),
            {"id": ids["confirmed"]},
        )
    before = _receipt_figures(finance_id, today)
    db.session.remove()
    # The payment of the closed grant from before is overdue too.
    assert before["overdue"][1:] == [ids["unanswered"]] and before["counted"] == 2
    assert before["reported"] == [ids["confirmed then lost"]]

    flask_migrate.upgrade()
    flask_migrate.check()
    assert "receipts" not in _tables()
    assert _receipt_figures(finance_id, today) == before
    moved = db.session.scalars(
        sa.select(ReceiptAnswer).where(ReceiptAnswer.id < 0).order_by(ReceiptAnswer.id.desc())
    )
    assert [
        (a.id, a.disbursement_id, a.answer, a.answered_by_id, a.answered_at, a.amount_received)
        for a in moved
    ] == [
        (-7, ids["confirmed"], "received", applicant_id, kept[0][3], None),
        (-8, ids["confirmed then lost"], "received", applicant_id, kept[1][3], None),
    ]
    lost_answers = receipts.answers_of([ids["confirmed then lost"]])[ids["confirmed then lost"]]
    assert [a.id for a in lost_answers] == [-8, lost_id]
    check = empty_app.test_cli_runner().invoke(args=["hrdfund", "check"])
    assert check.exit_code == 0, check.output

    db.session.remove()
    page = f"/applications/{case_uid}"
    staff = _page_for(empty_app, finance_id, page)
    shown = staff.get_data(as_text=True)
    assert staff.status_code == 200
    assert shown.count("confirmed by the payee side on") == 2
    assert "confirmed by the payee side on 2026-11-02" in shown
    assert shown.count("reported not received by the payee side on") == 1
    applicant = _page_for(empty_app, applicant_id, page)
    said = applicant.get_data(as_text=True)
    assert applicant.status_code == 200
    assert said.count(": received.") == 2
    assert said.count(": not received. The fund looks into it.") == 1
    db.session.remove()

    flask_migrate.downgrade(revision=BEFORE_ONE_KIND_OF_RECEIPT)
    with db.engine.connect() as conn:
        back = conn.execute(
            sa.text(
                "SELECT id, disbursement_id, confirmed_by_id, confirmed_at FROM receipts "
                "ORDER BY id"
            )
        ).all()
        answers_after = conn.execute(
            sa.text("SELECT id, uid, disbursement_id, answer FROM receipt_answers ORDER BY id")
        ).all()
    assert [
        (r.id, r.disbursement_id, r.confirmed_by_id, str(r.confirmed_at)[:19]) for r in back
    ] == [(*receipt[:3], str(receipt[3])) for receipt in kept]
    assert answers_after == answers_before


#: The revision before every country had a region.
BEFORE_EVERY_REGION = "5b7d2e9c4a13"


def test_the_upgrade_gives_a_region_to_cases_from_countries_that_had_none(empty_app):
    """Cases from a country the table of regions left out (Syria, Ecuador) had no region:
    the upgrade fills it in from the country; a case with a region, or with no country,
    keeps what it had."""
    from hrdfund.auth.models import Fund
    from hrdfund.cases.models import Application
    from hrdfund.core.support import Category

    flask_migrate.upgrade()
    fund = Fund(name="A fund before every region")
    db.session.add(fund)
    db.session.flush()
    rows = {}
    for label, country, region in (
        ("syria", "SY", None),
        ("ecuador", "EC", None),
        ("kenya", "KE", "East Africa"),
        ("nowhere", None, None),
    ):
        case = Application(fund_id=fund.id, category=Category.MEDICAL, currency="EUR")
        db.session.add(case)
        db.session.flush()
        rows[label] = case.id
        db.session.execute(
            sa.text("UPDATE applications SET country = :c, region = :r WHERE id = :id"),
            {"c": country, "r": region, "id": case.id},
        )
    db.session.commit()
    db.session.remove()
    flask_migrate.downgrade(revision=BEFORE_EVERY_REGION)
    flask_migrate.upgrade()
    regions = dict(db.session.execute(sa.text("SELECT id, region FROM applications")).all())
    assert regions[rows["syria"]] == "Middle East and North Africa"
    assert regions[rows["ecuador"]] == "Andean region"
    assert regions[rows["kenya"]] == "East Africa"
    assert regions[rows["nowhere"]] is None
    db.session.remove()


#: The revision before a consent a partner ticked in the form said so.
BEFORE_PARTNER_FORM = "8e1c4f7a2b95"


def test_the_upgrade_says_which_consents_a_partner_ticked_and_the_downgrade_undoes_it(
    empty_app,
):
    from hrdfund.auth import services
    from hrdfund.auth.models import Fund, PartnerOrganisation
    from hrdfund.cases.models import Application, Consent, ConsentKind
    from hrdfund.core.columns import utcnow
    from hrdfund.core.support import Category
    from tests.conftest import PASSWORD

    flask_migrate.upgrade()
    fund = Fund(name="A fund before partner words")
    org = PartnerOrganisation(name="A partner before", country="KE")
    db.session.add_all([fund, org])
    db.session.flush()
    case = Application(fund_id=fund.id, category=Category.MEDICAL, currency="EUR")
    db.session.add(case)
    partner = services.create_user(
        "partner", "partner.before", PASSWORD, partner_organisation_id=org.id
    )
    applicant = services.create_user("applicant", "applicant.before", PASSWORD)
    db.session.flush()
    rows = {}
    for who, kind in ((partner, ConsentKind.REFERRAL), (applicant, ConsentKind.STORY)):
        consent = Consent(
            application_id=case.id,
            kind=kind,
            method="form",
            recorded_by_id=who.id,
            given_at=utcnow(),
        )
        db.session.add(consent)
        db.session.flush()
        rows[consent.id] = who.role.value
    db.session.commit()
    db.session.remove()

    def methods():
        found = db.session.execute(sa.text("SELECT id, method FROM consents")).all()
        db.session.remove()
        return {rows[i]: method for i, method in found}

    flask_migrate.downgrade(revision=BEFORE_PARTNER_FORM)
    flask_migrate.upgrade()
    assert methods() == {"partner": "partner_form", "applicant": "form"}
    flask_migrate.downgrade(revision=BEFORE_PARTNER_FORM)
    assert methods() == {"partner": "form", "applicant": "form"}
    flask_migrate.upgrade()


BEFORE_PARTNER_FACTOR = "7c3e1a9d5f20"


def test_the_upgrade_ends_every_session_a_partner_opened_without_a_second_factor(empty_app):
    """Partners now sign in with a second factor: a cookie a partner got with the password
    alone stops working at the upgrade; a defender's goes on."""
    from hrdfund.auth import services
    from hrdfund.auth.models import PartnerOrganisation
    from tests.conftest import PASSWORD

    flask_migrate.upgrade(revision=BEFORE_PARTNER_FACTOR)
    org = PartnerOrganisation(name="A partner before its factor", country="KE")
    db.session.add(org)
    db.session.flush()
    services.create_user("partner", "partner.before", PASSWORD, partner_organisation_id=org.id)
    services.create_user("applicant", "applicant.before", PASSWORD)
    db.session.commit()
    db.session.remove()
    flask_migrate.upgrade()
    versions = dict(db.session.execute(sa.text("SELECT role, session_version FROM users")).all())
    db.session.remove()
    assert versions == {"partner": 2, "applicant": 1}


#: The revision before a payment could be reversed in several parts.
BEFORE_PARTS = "5d2a8c1f7b34"


def _payment_rows():
    with db.engine.connect() as conn:
        return {
            table: conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
            for table in ("disbursements", "receipt_answers", "releases", "held_payments")
        }


def _payment_checks():
    """The payments table's CHECK constraints, as the database holds them."""
    with db.engine.connect() as conn:
        found = sa.inspect(conn).get_check_constraints("disbursements")
    return sorted((c["name"], c["sqltext"]) for c in found)


def test_payments_reversed_in_parts_keep_every_row_that_refers_to_them_up_and_down(
    empty_app, capsys
):
    """Going down and up again (on SQLite both rebuild the payments table, which receipts
    and reversals refer to) keeps every payment and every row that refers to one, and
    `check` passes. Once a payment is reversed in two parts the downgrade stops, saying
    why, and changes nothing."""
    from hrdfund.auth.models import User
    from hrdfund.disbursements import receipts
    from hrdfund.disbursements.checks import check_ledger
    from hrdfund.disbursements.services import reverse_disbursement
    from hrdfund.ledger.models import Disbursement
    from tests.conftest import pay

    flask_migrate.upgrade()
    world = _money_world()
    grant = world.grant("3000")
    answered = pay(world, grant, "400", instalment=None)
    returned = pay(world, grant, "600", instalment=None)
    receipts.answer_receipt(answered, world.applicant, "received")
    reverse_disbursement(returned, world.finance, "Bank returned a part", Decimal(100))
    db.session.commit()
    returned_id, finance_id = returned.id, world.finance.id
    db.session.remove()
    before, checks = _payment_rows(), _payment_checks()
    assert len(checks) >= 6

    flask_migrate.downgrade(revision=BEFORE_PARTS)
    assert _payment_rows() == before and _payment_checks() == checks
    flask_migrate.upgrade()
    assert _payment_rows() == before and _payment_checks() == checks
    flask_migrate.check()  # the same indexes and constraints as a database built afresh
    assert check_ledger() == []
    db.session.remove()
    returned = db.session.get(Disbursement, returned_id)
    finance = db.session.get(User, finance_id)
    reverse_disbursement(returned, finance, "Given back unused", Decimal(200))
    db.session.commit()
    assert [r.amount for r in returned.reversals] == [Decimal("100.00"), Decimal("200.00")]
    db.session.remove()
    after = _payment_rows()

    with pytest.raises(SystemExit):
        flask_migrate.downgrade(revision=BEFORE_PARTS)
    assert "1 payments were reversed in several parts" in capsys.readouterr().err
    assert _payment_rows() == after
    assert check_ledger() == []
