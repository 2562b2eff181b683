"""Hash-chained audit log and ledger seals, keyed with a secret kept outside the database.

Each entry's hash is an HMAC-SHA256 over the previous hash, the sequence number, the time
and the canonical content. Appends are serialised (a write transaction on SQLite, an
advisory lock on PostgreSQL) so the chain never forks.
"""

import hashlib
import hmac
import json
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from ..core.columns import utcnow
from ..core.extensions import db
from .models import AuditEvent

GENESIS = "0" * 64
#: Arbitrary constant naming the audit append lock on PostgreSQL.
PG_LOCK_ID = 0x48524446


def _key():
    return current_app.extensions["hrdfund_audit_key"]


def key_id(key=None):
    """Short public name of the audit key."""
    return hashlib.sha256(b"hrdfund-audit-key:" + (key or _key())).hexdigest()[:8]


def canonical(data):
    """Canonical JSON: sorted keys, no spaces, Decimals and dates as strings."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def _entry_hash(key, prev_hash, seq, at, actor, action, object_type, object_id, payload):
    message = "\x1f".join(
        [
            prev_hash,
            str(seq),
            at.isoformat(),
            actor,
            action,
            object_type or "",
            object_id or "",
            payload,
        ]
    )
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _lock_chain():
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_ID})


def record(action, obj=None, actor=None, object_type=None, object_id=None, **payload):
    """Append an audit entry for ``action`` on ``obj`` by ``actor`` (a User or None)."""
    if obj is not None:
        object_type = object_type or obj.__tablename__
        object_id = object_id or getattr(obj, "uid", None) or str(obj.id)
    actor_name = actor.pseudonym if actor is not None else "system"
    key = _key()
    _lock_chain()
    last = db.session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = utcnow().replace(microsecond=0)
    body = canonical({k: (str(v) if isinstance(v, Decimal) else v) for k, v in payload.items()})
    event = AuditEvent(
        seq=seq,
        at=at,
        actor=actor_name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        payload=body,
        key_id=key_id(key),
        prev_hash=prev_hash,
        hash=_entry_hash(key, prev_hash, seq, at, actor_name, action, object_type, object_id, body),
    )
    db.session.add(event)
    db.session.flush()
    return event


def verify(head=None):
    """Walk the chain in order; return a list naming the first break, or an empty list.

    ``head`` is an optional (seq, hash) recorded outside the server: it also detects a
    chain cut at its tail.
    """
    key = _key()
    expected_seq, prev_hash = 1, GENESIS
    rows = db.session.execute(sa.select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    for event in rows.yield_per(2000):
        if event.seq != expected_seq:
            return [f"audit entry {expected_seq} is missing (next entry is {event.seq})"]
        if event.prev_hash != prev_hash:
            return [
                f"audit entry {event.seq} does not follow entry {event.seq - 1} "
                "(deleted or reordered)"
            ]
        digest = _entry_hash(
            key,
            event.prev_hash,
            event.seq,
            event.at,
            event.actor,
            event.action,
            event.object_type,
            event.object_id,
            event.payload,
        )
        if not hmac.compare_digest(digest, event.hash):
            return [f"audit entry {event.seq} was altered (its hash does not verify)"]
        expected_seq, prev_hash = event.seq + 1, event.hash
    if head is not None:
        head_seq, head_hash = head
        if expected_seq - 1 < head_seq:
            return [
                f"audit chain ends at {expected_seq - 1}, before the recorded head "
                f"{head_seq}: entries were cut"
            ]
        at_head = db.session.get(AuditEvent, head_seq)
        if at_head is None or at_head.hash != head_hash:
            return [f"audit entry {head_seq} differs from the recorded head"]
    return []


def head():
    """The chain's last (seq, hash), to be recorded outside the server."""
    last = db.session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last else (0, GENESIS)


#: The fields each ledger table's seal covers: whatever moves or ties money.
SEALED_FIELDS = {
    "contributions": (
        "uid",
        "pool_id",
        "amount",
        "received_amount",
        "received_currency",
        "fx_rate",
        "received_on",
        "reversal_of_id",
    ),
    "allocations": ("uid", "grant_id", "pool_id", "amount", "grant_amount", "fx_rate"),
    "releases": ("uid", "allocation_id", "amount"),
    "disbursements": (
        "uid",
        "grant_id",
        "allocation_id",
        "pool_id",
        "instalment_id",
        "amount_paid",
        "currency_paid",
        "amount",
        "fx_rate",
        "fee_amount",
        "exchange_difference",
        "paid_on",
        "reversal_of_id",
    ),
}


#: Fields added to a table's seal after rows were sealed without them: each is covered
#: when set (its name beside its value), so the older rows, where it is empty, still verify.
LATER_SEALED_FIELDS = {
    "disbursements": (
        "confirmed_by_id",
        "table_rate",
        "rate_entry_id",
        "rate_tolerance_percent",
        "max_fee_percent",
        "max_difference_percent",
    ),
}


def sealed_fields(table):
    """Every field a row of ``table`` may be sealed over."""
    return SEALED_FIELDS[table] + LATER_SEALED_FIELDS.get(table, ())


def _seal_value(value):
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def seal(table, values, key=None):
    """HMAC over a ledger row's money fields, so a direct edit in the database shows."""
    key = key or _key()
    parts = [table] + [_seal_value(values[f]) for f in SEALED_FIELDS[table]]
    parts += [
        f"{f}={_seal_value(values[f])}"
        for f in LATER_SEALED_FIELDS.get(table, ())
        if values.get(f) is not None
    ]
    message = "\x1f".join(parts)
    return hmac.new(key, b"seal\x1f" + message.encode(), hashlib.sha256).hexdigest()


def seal_row(obj):
    """Set ``obj.seal`` from its current fields (call after ids are assigned)."""
    obj.seal = seal(
        obj.__tablename__, {f: getattr(obj, f) for f in sealed_fields(obj.__tablename__)}
    )
    return obj
