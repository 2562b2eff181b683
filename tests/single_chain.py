"""Audit entries as the log wrote them when the instance had one chain, before each fund had
its own: what the migration to chains per fund starts from."""

import hashlib
import hmac
from datetime import datetime

import sqlalchemy as sa

from hrdfund.core.extensions import db

#: The revision before each fund had an audit chain of its own.
BEFORE_CHAINS = "7d3e91b0c2a4"


def one_chain_hash(key, prev_hash, seq, row):
    """An entry's hash as the audit log computed it when the instance had one chain."""
    at = row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(row["at"])
    parts = [prev_hash, str(seq), at.isoformat(), row["actor"], row["action"]]
    parts += [row["object_type"] or "", row["object_id"] or "", row["payload"]]
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def write_one_chain(key, count):
    """Entries written as the single chain was, before the upgrade; its head."""
    prev_hash = "0" * 64
    with db.engine.begin() as conn:
        for seq in range(1, count + 1):
            row = {
                "at": datetime(2026, 3, 1, 12, seq),
                "actor": "system",
                "action": "test.before",
                "object_type": "things",
                "object_id": f"t{seq}",
                "payload": "{}",
            }
            digest = one_chain_hash(key, prev_hash, seq, row)
            conn.execute(
                sa.text(
                    "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id,"
                    " payload, key_id, prev_hash, hash) VALUES (:seq, :at, :actor, :action,"
                    " :object_type, :object_id, :payload, 'k', :prev_hash, :hash)"
                ),
                {**row, "seq": seq, "prev_hash": prev_hash, "hash": digest},
            )
            prev_hash = digest
    return count, prev_hash


def one_chain_rows():
    """The entries as the table holds them, in their order."""
    with db.engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM audit_events ORDER BY seq")).mappings().all()
