"""Key rotation (SECURITY.md, promise 21): `flask hrdfund rotate-keys` encrypts every field
and stored document again under the new key, after which the old key can go."""

import base64
import os

import pytest
import sqlalchemy as sa

from hrdfund.auth import second_factor
from hrdfund.auth.models import Role, User
from hrdfund.cases.documents import CleanUpload, read_document, store_document
from hrdfund.cases.models import Application, Document, DocumentKind
from hrdfund.core.columns import cipher
from hrdfund.core.crypto import key_id, parse_key
from hrdfund.core.extensions import db
from hrdfund.ledger.models import Contribution, Disbursement, Release
from hrdfund.ops.rotation import encrypted_attributes
from tests.conftest import other_app
from tests.pdfs import make_pdf

PDF = make_pdf("A medical report")


def _new_key():
    return base64.b64encode(os.urandom(32)).decode()


def _every_value():
    """Every encrypted value of the database, decrypted: {(table, column, uid): value}."""
    values = {}
    for model, attribute in encrypted_attributes():
        for row in db.session.scalars(sa.select(model)):
            values[(model.__tablename__, attribute.name, row.uid)] = attribute.__get__(row)
    return values


def _key_ids():
    """The key id of every stored ciphertext, read from the raw columns."""
    ids = set()
    for model, attribute in encrypted_attributes():
        storage = model.__table__.c[attribute.name]
        for blob in db.session.scalars(sa.select(storage).where(storage.is_not(None))):
            ids.add(bytes(blob)[1:5])
    return ids


@pytest.fixture
def world(app, runner):
    """The demo fund, one stored document, and recovery codes for a manager."""
    # Fifty cases: enough for every kind of encrypted value (a grant closed under budget
    # gives a release its reason).
    result = runner.invoke(args=["hrdfund", "demo-data", "--scale", "50"])
    assert result.exit_code == 0, result.output
    manager = db.session.scalars(sa.select(User).where(User.role == Role.MANAGER)).first()
    case = db.session.scalars(sa.select(Application).order_by(Application.id)).first()
    document = store_document(
        CleanUpload(PDF, "application/pdf", "report.pdf"), case, DocumentKind.OTHER, manager
    )
    codes = second_factor.issue_recovery_codes(manager)
    db.session.commit()
    return {
        "values": _every_value(),
        "defender_keys": dict(
            db.session.execute(sa.select(Application.id, Application.defender_key)).all()
        ),
        "document": document.id,
        "manager": manager.id,
        "codes": codes,
    }


def _app_with(app_config, current, old=""):
    """Another start of the app on the same database and folder, with other keys."""
    return other_app(
        dict(app_config, HRDFUND_ENCRYPTION_KEY=current, HRDFUND_ENCRYPTION_OLD_KEYS=old)
    )


def test_rotation_moves_everything_to_the_new_key(app, app_config, world):
    old = app_config["HRDFUND_ENCRYPTION_KEY"]
    new = _new_key()
    assert world["values"] and len(world["values"]) > 300
    db.session.remove()

    with _app_with(app_config, new, old) as rotating:
        result = rotating.test_cli_runner().invoke(args=["hrdfund", "rotate-keys"])
        assert result.exit_code == 0, result.output
        assert "nothing is left under an old key" in result.output
        assert "Documents: 1 re-encrypted" in result.output
        # Final ledger rows too, and what finance and staff typed about payments and people.
        for where in (
            "disbursements.payee_details",
            "disbursements.reference",
            "disbursements.rate_source",
            "contributions.reference",
            "contributions.reason",
            "releases.reason",
            "exchange_rates.source",
            "users.display_name",
        ):
            assert f"{where}: " in result.output, where
        again = rotating.test_cli_runner().invoke(args=["hrdfund", "rotate-keys"])
        assert "OK: 0 values and 0 documents" in again.output, "a second run has nothing to do"

    # The old key is gone: everything still reads, under the new key only.
    with _app_with(app_config, new) as rotated:
        assert _key_ids() == {key_id(parse_key(new))}
        assert cipher().current_id == key_id(parse_key(new))
        assert _every_value() == world["values"]
        document = db.session.get(Document, world["document"])
        assert read_document(document) == PDF
        # Blind indexes do not follow the encryption key: defenders still match, and a
        # recovery code issued before the rotation still signs in.
        keys = dict(db.session.execute(sa.select(Application.id, Application.defender_key)).all())
        assert keys == world["defender_keys"]
        manager = db.session.get(User, world["manager"])
        assert second_factor.use_recovery_code(manager, world["codes"][0])
        check = rotated.test_cli_runner().invoke(args=["hrdfund", "check"])
        assert check.exit_code == 0, check.output
        assert "keys.rotated" in {
            row for row in db.session.scalars(sa.text("SELECT action FROM audit_events"))
        }

    # Under a key that never wrote them, the values are reported unreadable and left alone.
    with _app_with(app_config, _new_key()) as stranger:
        out = stranger.test_cli_runner().invoke(args=["hrdfund", "rotate-keys"])
        assert out.exit_code == 1 and "UNREADABLE" in out.output
        assert _key_ids() == {key_id(parse_key(new))}


@pytest.mark.parametrize("backend", ["postgresql"])  # the database's own refusal
@pytest.mark.parametrize(
    "model, column",
    [
        (Disbursement, "payee_details"),
        (Disbursement, "reference"),
        (Disbursement, "reason"),
        (Disbursement, "rate_source"),
        (Disbursement, "rate_reason"),
        (Contribution, "reference"),
        (Contribution, "reason"),
        (Release, "reason"),
    ],
)
def test_a_final_row_lets_only_its_encrypted_columns_change(app, backend, world, model, column):
    """Rotation rewrites, and retention empties, an encrypted column of a final ledger row;
    the database refuses anything else on it, and any deletion."""
    table = model.__table__
    row = db.session.scalars(sa.select(model).order_by(model.id)).first()
    fresh = cipher().encrypt("rewritten", table.name, column, row.uid)
    db.session.execute(sa.update(table).where(table.c.id == row.id).values({column: fresh}))
    db.session.commit()
    with pytest.raises(sa.exc.DatabaseError, match="never edited"):
        db.session.execute(
            sa.update(table).where(table.c.id == row.id).values({column: None, "amount": 1})
        )
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError, match="never edited"):
        db.session.execute(sa.delete(table).where(table.c.id == row.id))
    db.session.rollback()
    db.session.expire_all()
    assert getattr(db.session.get(model, row.id), column) == "rewritten"


@pytest.mark.parametrize("backend", ["postgresql"])  # the database's own refusal
def test_retention_may_empty_a_payment_reference_and_its_blind_index(app, backend, world):
    payment = db.session.scalars(
        sa.select(Disbursement).where(Disbursement.reference_key.is_not(None))
    ).first()
    table = Disbursement.__table__
    db.session.execute(
        sa.update(table).where(table.c.id == payment.id).values(reference=None, reference_key=None)
    )
    db.session.commit()
    with pytest.raises(sa.exc.DatabaseError, match="never edited"):
        db.session.execute(
            sa.update(table).where(table.c.id == payment.id).values(idempotency_key="x")
        )
    db.session.rollback()
