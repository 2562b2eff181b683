"""The data inventory, encryption at rest, and what the database itself guarantees."""

import os
import sqlite3
import stat
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from hrdfund import models  # noqa: F401  (every table on the metadata)
from hrdfund.auth.models import User
from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.core.columns import DATA_CLASSES, ENCRYPTED_CLASSES, TEXT_REASONS, Text, is_text
from hrdfund.core.extensions import db, reading
from hrdfund.core.support import Category
from hrdfund.ledger.models import Contribution
from hrdfund.pools.models import Pool


def inventory_gaps(metadata=None):
    """The columns without a data class, the sensitive or financial ones stored in clear,
    and the columns of text in clear that do not say why they are not free text (a
    :class:`~hrdfund.core.columns.Text`), as ``table.column`` lists."""
    unclassed, clear, unexplained = [], [], []
    for table in (metadata or db.metadata).sorted_tables:
        for column in table.columns:
            name = f"{table.name}.{column.name}"
            data_class = column.info.get("data_class")
            if data_class not in DATA_CLASSES:
                unclassed.append(name)
            elif data_class in ENCRYPTED_CLASSES and not isinstance(column.type, sa.LargeBinary):
                clear.append(name)
            if is_text(column) and column.info.get("text") not in TEXT_REASONS:
                unexplained.append(name)
    return unclassed, clear, unexplained


def test_every_column_is_classed_and_sensitive_ones_are_encrypted():
    """A new column without a data class, a sensitive one stored in clear, or text in clear
    that does not say why it is not free text, fails here."""
    assert len(db.metadata.sorted_tables) >= 20
    unclassed, clear, unexplained = inventory_gaps()
    assert unclassed == []
    assert clear == []
    assert unexplained == []


@pytest.mark.parametrize(
    "type_, info",
    [
        (sa.String(200), {}),
        (sa.Text, {}),
        (sa.JSON, {}),
        (sa.Enum("a", "b", name="kind"), {}),
        (sa.String(200), {"text": "notes"}),
    ],
    ids=["string", "text", "json", "enum", "unknown-reason"],
)
def test_text_that_does_not_say_why_it_is_clear_is_caught(type_, info):
    """The inventory names a column of text, of any type, left unclassified: whoever adds
    one decides whether people type into it (and encrypts it) or says why it is not free
    text."""
    metadata = sa.MetaData()
    sa.Table(
        "journal",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, info={"data_class": "internal"}),
        sa.Column("remark", type_, info={"data_class": "internal", **info}),
    )
    assert inventory_gaps(metadata) == ([], [], ["journal.remark"])


def test_words_kept_in_clear_are_only_these():
    """Logins, institutions' names and what the application writes itself are the only
    words stored in clear; any other text is a code, a hash or an id, or it is encrypted.
    Adding to this list is a decision about people's words, made here."""
    wordy = {Text.LOGIN, Text.LABEL, Text.GENERATED}
    assert {
        f"{t.name}.{c.name}"
        for t in db.metadata.sorted_tables
        for c in t.columns
        if c.info.get("text") in wordy
    } == {
        "users.login",
        # The login an administrator sets for an invited account.
        "invitations.login",
        "funds.name",
        "donors.name",
        "pools.name",
        "partner_organisations.name",
        "audit_events.actor",
        "audit_events.payload",
        "alerts.once_key",
        # A case's short code, made of its fund's id, a year and a count.
        "applications.code",
        # Donor reports' figures as issued: codes, country and region names from the
        # application's own lists, counts, amounts and grant ids; nothing anyone typed.
        "issued_figures.figures",
    }


def test_the_known_secrets_are_classed_as_encrypted():
    """The fields that could hurt someone if read are among the encrypted ones: what
    applicants write, and what staff type about a case, a payment or a person."""
    encrypted = {
        f"{t.name}.{c.name}"
        for t in db.metadata.sorted_tables
        for c in t.columns
        if c.info.get("data_class") in ENCRYPTED_CLASSES
    }
    assert {
        "users.contact",
        "users.totp_secret",
        "users.display_name",
        "applications.defender_name",
        "applications.threat",
        "applications.details",
        "references.contact",
        "references.notes",
        "messages.body",
        "case_notes.body",
        "reviews.assessment",
        "decisions.reason",
        "cofundings.funder",
        "use_of_funds_reports.narrative",
        "disbursements.payee_details",
        "disbursements.reference",
        "disbursements.reason",
        "disbursements.rate_source",
        "disbursements.rate_reason",
        "contributions.reference",
        "contributions.reason",
        "releases.reason",
        "exchange_rates.source",
    } <= encrypted


def _raw_sqlite_bytes():
    path = db.engine.url.database
    return b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's own file and pragmas
def test_canaries_never_reach_the_database_file(app, backend, fund, make_user):
    """Sensitive values are unreadable in the SQLite file and its write-ahead log, and read
    back whole through the model."""
    user = make_user("applicant")
    user.contact = "canary-signal-number-5512"
    staff = make_user("reviewer")
    case = Application(
        fund_id=fund.id, applicant_id=user.id, category=Category.MEDICAL, currency="EUR"
    )
    case.threat = "canary-threat-detail-8841"
    case.defender_name = "canary-defender-name-7730"
    case.details = {"provider": "canary-clinic-3390"}
    db.session.add(case)
    db.session.commit()
    raw = _raw_sqlite_bytes()
    assert raw, "the database file was found and read"
    assert user.login.encode() in raw, "the scan does see plain columns"
    for canary in (
        b"canary-signal",
        b"canary-threat",
        b"canary-defender",
        b"canary-clinic",
        staff.totp_secret.encode(),
    ):
        assert canary not in raw, canary
    db.session.expire_all()
    again = db.session.get(Application, case.id)
    assert again.threat == "canary-threat-detail-8841"
    assert again.details == {"provider": "canary-clinic-3390"}
    assert db.session.get(User, user.id).contact == "canary-signal-number-5512"


def test_an_encrypted_value_copied_to_another_row_does_not_read(app, make_user):
    """Someone with database access cannot move one person's secret onto another record."""
    from hrdfund.core.crypto import DecryptionError

    first, second = make_user("applicant"), make_user("applicant")
    first.contact = "canary-contact-1"
    db.session.commit()
    db.session.execute(sa.update(User).where(User.id == second.id).values(_contact=first._contact))
    db.session.commit()
    db.session.expire_all()
    with pytest.raises(DecryptionError):
        _ = db.session.get(User, second.id).contact


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's own file and pragmas
def test_sqlite_connections_enforce_foreign_keys_and_secure_delete(app, backend):
    """Every SQLite connection checks foreign keys and overwrites deleted data."""
    for _ in range(2):
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(sa.text("PRAGMA secure_delete")).scalar() == 1
            assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        db.engine.dispose()


def _another_writer_gets_the_lock():
    """Whether a second connection to the SQLite file can begin writing at once."""
    other = sqlite3.connect(db.engine.url.database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's write lock
def test_a_read_inside_reading_leaves_the_write_lock_to_others(app, backend, make_user):
    """Slow work after a read (hashing a password, decoding an image) keeps no writer
    waiting: inside reading() the transaction takes no write lock, and it has ended on
    leaving; an ordinary transaction holds the lock from its first statement."""
    user = make_user("applicant")
    db.session.get(User, user.id)
    assert not _another_writer_gets_the_lock()
    db.session.rollback()
    with reading():
        assert db.session.get(User, user.id).login == user.login
        assert _another_writer_gets_the_lock()
    assert not db.session().in_transaction()
    assert _another_writer_gets_the_lock()
    # The next transaction writes again with the lock taken first.
    db.session.get(User, user.id)
    assert not _another_writer_gets_the_lock()


def test_reading_refuses_to_drop_unsaved_changes(app, make_user):
    """A read section opened over unsaved changes is a bug, not a silent loss."""
    user = make_user("applicant")
    user.language = "fr"
    with pytest.raises(RuntimeError), reading():
        pass
    assert user.language == "fr"


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's own file and pragmas
def test_the_sqlite_files_are_readable_by_their_owner_only(app, backend, make_user):
    """The database and its write-ahead log are 0600: other local accounts read nothing."""
    make_user("applicant")
    path = db.engine.url.database
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            assert stat.S_IMODE(os.stat(path + suffix).st_mode) == 0o600, suffix


def test_foreign_keys_are_enforced(app, fund):
    """A case pointing at a fund that does not exist is refused by the database."""
    db.session.add(Application(fund_id=fund.id + 999, category=Category.LEGAL, currency="EUR"))
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def _contribution_row(pool_id, **changes):
    row = {
        "uid": "c1",
        "pool_id": pool_id,
        "amount": Decimal(10),
        "received_amount": Decimal(10),
        "received_currency": "EUR",
        "fx_rate": Decimal(1),
        "received_on": date(2026, 1, 1),
        "seal": "x",
        "created_at": datetime(2026, 1, 1),
    }
    row.update(changes)
    return row


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": Decimal("-5")},
        {"amount": Decimal("0")},
        {"received_amount": Decimal("-0.01")},
        {"fx_rate": Decimal("0")},
        {"received_currency": "eur"},
        {"received_currency": "EU"},
    ],
    ids=["negative", "zero", "negative-received", "zero-rate", "lower-case", "two-letters"],
)
def test_the_database_refuses_bad_money_rows(app, fund, make_donor, changes):
    """Negative amounts and malformed currencies are stopped by CHECK constraints, even when
    written around the application."""
    pool = Pool(fund_id=fund.id, donor_id=make_donor().id, name="P", currency="EUR")
    db.session.add(pool)
    db.session.commit()
    db.session.execute(sa.insert(Contribution.__table__).values(**_contribution_row(pool.id)))
    db.session.commit()
    # Plain SQL, as someone around the application would write: the money and rate column
    # types, which refuse a zero rate before the database sees it, are not in the way.
    row = {
        k: str(v) if isinstance(v, Decimal) else v
        for k, v in _contribution_row(pool.id, uid="c2", **changes).items()
    }
    names, params = ", ".join(row), ", ".join(f":{name}" for name in row)
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text(f"INSERT INTO contributions ({names}) VALUES ({params})"), row)
    db.session.rollback()
    assert db.session.execute(sa.select(sa.func.count(Contribution.id))).scalar() == 1


@pytest.mark.parametrize(
    "column, value",
    [("amount_requested", "-100"), ("currency", "usd"), ("status", "lost")],
)
def test_the_database_refuses_bad_cases(app, fund, column, value):
    """A direct write cannot give a case a negative amount, a bad currency or a status the
    application does not know."""
    row = {
        "uid": "a1",
        "fund_id": fund.id,
        "category": Category.LEGAL.value,
        "status": ApplicationStatus.DRAFT.value,
        "urgency": "normal",
        "currency": "EUR",
        "dependants_count": 0,
        "created_at": datetime(2026, 1, 1),
        column: value,
    }
    # Plain SQL: the model's own checks would stop a bad status before the database does.
    names = ", ".join(row)
    params = ", ".join(f":{name}" for name in row)
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.text(f"INSERT INTO applications ({names}) VALUES ({params})"), row)
    db.session.rollback()
