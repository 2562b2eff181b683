"""An audit chain (here the instance's): every edit, deletion, reordering or cut is named by
`verify`. The chains of funds, side by side: test_audit_chains.py."""

import threading

import pytest
import sqlalchemy as sa

from hrdfund import audit, create_app
from hrdfund.audit.models import AuditEvent
from hrdfund.core.extensions import db
from tests.conftest import login


def _chain(n=5):
    for i in range(n):
        audit.record("test.event", object_type="things", object_id=f"t{i}", n=i)
    db.session.commit()


def _sql(*statements):
    for statement in statements:
        db.session.execute(sa.text(statement))
    db.session.commit()


def _rows():
    return db.session.execute(sa.select(AuditEvent).order_by(AuditEvent.id)).scalars().all()


def test_a_healthy_chain_links_every_entry(app):
    _chain()
    rows = _rows()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert len({r.hash for r in rows}) == 5
    assert audit.verify() == []
    assert audit.head() == (5, rows[-1].hash)


def test_amounts_are_stored_as_exact_strings(app):
    """A payload is canonical JSON: the same content always hashes the same way."""
    from decimal import Decimal

    event = audit.record("test.money", object_type="t", object_id="x", b=Decimal("10.50"), a=1)
    db.session.commit()
    assert event.payload == '{"a":1,"b":"10.50"}'


#: Entries 2 and 3 trade what they say, each keeping its place in the chain. A colon is
#: written "\\:" so that SQLAlchemy does not read it as a bound parameter.
SWAP_CONTENT = (
    "UPDATE audit_events SET object_id = 't2', payload = '{\"n\"\\:2}' WHERE seq = 2",
    "UPDATE audit_events SET object_id = 't1', payload = '{\"n\"\\:1}' WHERE seq = 3",
)


@pytest.mark.parametrize(
    "statements, message",
    [
        (
            ["UPDATE audit_events SET payload = '{\"n\"\\:99}' WHERE seq = 2"],
            "audit entry 2 was altered (its hash does not verify)",
        ),
        (
            ["UPDATE audit_events SET actor = 'u1' WHERE seq = 4"],
            "audit entry 4 was altered (its hash does not verify)",
        ),
        (
            ["UPDATE audit_events SET at = '2020-01-01 00:00:00' WHERE seq = 1"],
            "audit entry 1 was altered (its hash does not verify)",
        ),
        (
            ["DELETE FROM audit_events WHERE seq = 3"],
            "audit entry 3 is missing (next entry is 4)",
        ),
        (
            ["DELETE FROM audit_events WHERE seq = 1"],
            "audit entry 1 is missing (next entry is 2)",
        ),
        (SWAP_CONTENT, "audit entry 2 was altered (its hash does not verify)"),
        (
            [
                "UPDATE audit_events SET seq = 100 WHERE seq = 2",
                "UPDATE audit_events SET seq = 2 WHERE seq = 3",
                "UPDATE audit_events SET seq = 3 WHERE seq = 100",
            ],
            "audit entry 2 does not follow entry 1 (deleted, reordered or moved from another "
            "chain)",
        ),
        (
            [
                "DELETE FROM audit_events WHERE seq = 3",
                # In two moves: PostgreSQL checks the unique (chain, seq) row by row, in
                # whatever order it reaches them, so one move down could meet a row not
                # moved yet.
                "UPDATE audit_events SET seq = seq + 999 WHERE seq > 3",
                "UPDATE audit_events SET seq = seq - 1000 WHERE seq > 1000",
            ],
            "audit entry 3 does not follow entry 2 (deleted, reordered or moved from another "
            "chain)",
        ),
    ],
    ids=[
        "edited-payload",
        "edited-actor",
        "edited-time",
        "deleted",
        "deleted-first",
        "swapped-content",
        "swapped-order",
        "deleted-and-renumbered",
    ],
)
def test_tampering_is_named(app, statements, message):
    """Whoever edits, deletes, swaps or renumbers entries is caught at the first one touched."""
    _chain()
    _sql(*statements)
    assert audit.verify() == [message]


def test_a_cut_tail_is_caught_against_a_recorded_head(app):
    _chain()
    recorded = audit.head()
    assert audit.verify(head=recorded) == []
    _sql("DELETE FROM audit_events WHERE seq >= 4")
    assert audit.verify() == []  # without the head a cut tail looks whole
    assert audit.verify(head=recorded) == [
        "audit chain ends at 3, before the recorded head 5: entries were cut"
    ]


def test_a_head_recorded_while_the_chain_was_empty_vouches_for_any_chain(app):
    """A fund's chain may be empty when its head is recorded (0 and the genesis hash)."""
    empty = audit.head()
    assert empty == (0, audit.GENESIS) and audit.verify(head=empty) == []
    _chain()
    assert audit.verify(head=empty) == []


def test_a_rewritten_tail_is_caught_against_a_recorded_head(app):
    """Dropping the last entry and appending another in its place still differs from the
    head recorded outside the server."""
    _chain()
    recorded = audit.head()
    _sql("DELETE FROM audit_events WHERE seq = 5")
    audit.record("test.event", object_type="things", object_id="forged")
    db.session.commit()
    assert audit.verify() == []
    assert audit.verify(head=recorded) == ["audit entry 5 differs from the recorded head"]


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


def test_entries_name_people_by_pseudonym_only(app, client, make_user):
    """A sign-in is audited without the login name anywhere in the entry."""
    user = make_user("applicant", login="canary-login-6620")
    login(client, user)
    rows = _rows()
    assert "auth.login" in [r.action for r in rows]
    for row in rows:
        text = " ".join(str(v) for v in (row.actor, row.object_id, row.payload))
        assert "canary-login" not in text
    assert {r.actor for r in rows if r.action == "auth.login"} == {f"u{user.id}"}


def test_concurrent_appends_never_fork_the_chain(app):
    """Four writers at once, each committing its own entries, still produce one chain
    without gaps or forks."""
    errors = []
    start = threading.Barrier(4)

    def writer(k):
        with app.app_context():
            try:
                start.wait()
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
    rows = _rows()
    assert [r.seq for r in rows] == list(range(1, 41))
    assert len({r.prev_hash for r in rows}) == 40, "no two entries follow the same one"
    assert {r.object_id for r in rows} == {f"{k}-{i}" for k in range(4) for i in range(10)}
    assert audit.verify() == []
