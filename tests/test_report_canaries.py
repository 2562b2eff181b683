"""Every sensitive field of every demo case carries a unique canary string; no donor PDF
(text or metadata) and no CSV of any pool, for any period, holds one of them."""

import io
import itertools

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from hrdfund.cases.models import Story
from hrdfund.core.columns import ENCRYPTED_CLASSES, PERSONAL, Encrypted, cipher
from hrdfund.core.extensions import db
from hrdfund.ledger.seals import FINAL_TABLES
from hrdfund.pools.models import Pool
from hrdfund.reports.csv_export import render_csv
from hrdfund.reports.data import build_report
from hrdfund.reports.pdf import render_pdf
from hrdfund.reports.periods import parse_period

#: Stories are written for the donor, by a manager, to be read: they are the exception.
MEANT_FOR_DONORS = {Story}
PREFIX = "CANARY"


def _plant_canaries():
    """A unique canary in every encrypted field and every personal text column of every
    row; returns how many were planted."""
    numbers = itertools.count(1)
    planted = 0
    for mapper in db.Model.registry.mappers:
        model = mapper.class_
        if model in MEANT_FOR_DONORS:
            continue
        encrypted = [
            (name, attr) for name, attr in vars(model).items() if isinstance(attr, Encrypted)
        ]
        personal = [
            column
            for column in mapper.columns
            if column.info.get("data_class") == PERSONAL
            and isinstance(column.type, sa.String)
            and not isinstance(column.type, sa.Enum)
            and (column.type.length or 0) >= 16
        ]
        if not encrypted and not personal:
            continue
        final = mapper.local_table.name in FINAL_TABLES
        behind = []
        for row in db.session.execute(sa.select(model)).scalars():
            for name, attr in encrypted:
                canary = f"{PREFIX}{next(numbers):06d}"
                value = {"field": canary} if attr.json else canary
                if final:
                    # Ledger rows refuse edits through the app: write the ciphertext below it.
                    blob = cipher().encrypt(str(value), model.__tablename__, attr.name, row.uid)
                    behind.append({"b": blob, "i": row.id, "c": attr.name})
                else:
                    setattr(row, name, value)
                planted += 1
            for column in personal:
                setattr(
                    row, mapper.get_property_by_column(column).key, f"{PREFIX}{next(numbers):06d}"
                )
                planted += 1
        table = mapper.local_table
        for change in behind:
            db.session.execute(
                sa.update(table).where(table.c.id == change["i"]).values({change["c"]: change["b"]})
            )
    db.session.commit()
    return planted


@pytest.fixture
def demo_world(app, runner):
    result = runner.invoke(args=["hrdfund", "demo-data", "--scale", "80"])
    assert result.exit_code == 0, result.output
    return _plant_canaries()


def test_no_canary_reaches_a_donor_output(app, demo_world):
    assert demo_world > 500, "canaries in every sensitive field of every demo case"
    encrypted_columns = sum(
        1
        for mapper in db.Model.registry.mappers
        for column in mapper.columns
        if column.info.get("data_class") in ENCRYPTED_CLASSES
    )
    assert encrypted_columns >= 10
    pools = db.session.execute(sa.select(Pool)).scalars().all()
    outputs = 0
    with app.test_request_context():
        for pool in pools:
            for code in ("2025", "2026", "2026-Q1", "2026-Q3", "2026-06"):
                report = build_report(pool, parse_period(code))
                body = render_pdf(report)
                reader = PdfReader(io.BytesIO(body))
                text = "\n".join(page.extract_text() for page in reader.pages)
                metadata = " ".join(str(v) for v in (reader.metadata or {}).values())
                for output in (text, metadata, render_csv(report), body.decode("latin-1")):
                    assert PREFIX not in output.upper()
                outputs += 1
    assert outputs == 5 * len(pools) >= 40
