"""The data inventory and what the database itself guarantees."""

import os
import stat
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from hrdfund.applications.models import Application, Category
from hrdfund.columns import DATA_CLASSES, ENCRYPTED_CLASSES
from hrdfund.extensions import db
from hrdfund.pools.models import Contribution, Pool


def test_every_column_is_classed_and_sensitive_ones_are_encrypted(app):
    """A new column without a data class, or a sensitive one stored in clear, fails here."""
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            data_class = column.info.get("data_class")
            assert data_class in DATA_CLASSES, f"{table.name}.{column.name} has no data class"
            if data_class in ENCRYPTED_CLASSES:
                assert isinstance(column.type, sa.LargeBinary), f"{table.name}.{column.name}"


@pytest.mark.parametrize("backend", ["sqlite"])  # reads the SQLite file itself
def test_canaries_never_reach_the_database_file(app, backend, fund, make_user):
    """Sensitive values are unreadable in the SQLite file and its write-ahead log."""
    user = make_user("applicant")
    user.contact = "canary-signal-number-5512"
    case = Application(
        fund_id=fund.id, applicant_id=user.id, category=Category.MEDICAL, currency="EUR"
    )
    case.threat = "canary-threat-detail-8841"
    case.details = {"provider": "canary-clinic-3390"}
    db.session.add(case)
    db.session.commit()
    path = db.engine.url.database
    raw = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))
    for canary in (b"canary-signal", b"canary-threat", b"canary-clinic"):
        assert canary not in raw
    db.session.expire_all()
    assert db.session.get(Application, case.id).details == {"provider": "canary-clinic-3390"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sqlite_connections_enforce_foreign_keys_and_secure_delete(app, backend):
    """Every SQLite connection checks foreign keys and overwrites deleted data."""
    assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    assert db.session.execute(sa.text("PRAGMA secure_delete")).scalar() == 1


@pytest.mark.parametrize(
    "column, value", [("amount", "-5"), ("received_currency", "eur"), ("received_amount", "0")]
)
def test_the_database_refuses_bad_money_rows(app, fund, make_donor, column, value):
    """Negative amounts and malformed currencies are stopped by CHECK constraints."""
    pool = Pool(fund_id=fund.id, donor_id=make_donor().id, name="P", currency="EUR")
    db.session.add(pool)
    db.session.commit()
    row = {
        "uid": "c1",
        "pool_id": pool.id,
        "amount": Decimal(10),
        "received_amount": Decimal(10),
        "received_currency": "EUR",
        "fx_rate": Decimal(1),
        "received_on": date(2026, 1, 1),
        "seal": "x",
        "created_at": datetime(2026, 1, 1),
    }
    row[column] = Decimal(value) if column != "received_currency" else value
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(sa.insert(Contribution.__table__).values(**row))
        db.session.flush()
    db.session.rollback()
