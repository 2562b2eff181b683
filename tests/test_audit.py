"""The audit chain: every edit, deletion, reordering or cut is named by `verify`."""

import threading

import sqlalchemy as sa

from hrdfund import audit, create_app
from hrdfund.audit.models import AuditEvent
from hrdfund.extensions import db


def _chain(n=5):
    for i in range(n):
        audit.record("test.event", object_type="things", object_id=f"t{i}", n=i)
    db.session.commit()


def _sql(statement):
    db.session.execute(sa.text(statement))
    db.session.commit()


def test_a_healthy_chain_links_every_entry(app):
    _chain()
    rows = db.session.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert audit.verify() == []


def test_an_edited_payload_is_named(app):
    _chain()
    _sql("UPDATE audit_events SET payload = 'tampered' WHERE seq = 2")
    assert audit.verify() == ["audit entry 2 was altered (its hash does not verify)"]


def test_a_deleted_entry_is_named(app):
    _chain()
    _sql("DELETE FROM audit_events WHERE seq = 3")
    assert audit.verify() == ["audit entry 3 is missing (next entry is 4)"]


def test_swapped_entries_are_detected(app):
    _chain()
    _sql("UPDATE audit_events SET seq = 100 WHERE seq = 2")
    _sql("UPDATE audit_events SET seq = 2 WHERE seq = 3")
    _sql("UPDATE audit_events SET seq = 3 WHERE seq = 100")
    assert audit.verify() == ["audit entry 2 does not follow entry 1 (deleted or reordered)"]


def test_a_cut_tail_is_caught_against_a_recorded_head(app):
    _chain()
    recorded = audit.head()
    assert audit.verify(recorded) == []
    _sql("DELETE FROM audit_events WHERE seq = 5")
    assert audit.verify() == []  # without the head a cut tail looks whole
    assert "entries were cut" in audit.verify(recorded)[0]


def test_another_key_cannot_vouch_for_the_chain(app, app_config):
    """Someone with database access but not the key cannot rebuild a valid chain."""
    _chain()
    other = create_app({**app_config, "HRDFUND_AUDIT_KEY": app_config["SECRET_KEY"]})
    with other.app_context():
        try:
            assert audit.verify() == ["audit entry 1 was altered (its hash does not verify)"]
        finally:
            db.session.remove()
            db.engine.dispose()


def test_concurrent_appends_never_fork_the_chain(app):
    """Four writers at once still produce one chain without gaps."""
    errors = []

    def writer(k):
        with app.app_context():
            try:
                for i in range(10):
                    audit.record("test.concurrent", object_type="w", object_id=f"{k}-{i}")
                    db.session.commit()
            except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.session.execute(sa.select(sa.func.count(AuditEvent.seq))).scalar() == 40
    assert audit.verify() == []
