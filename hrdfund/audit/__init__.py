"""Hash-chained audit logs and ledger seals, keyed with a secret kept outside the database.

Each member fund has an audit chain of its own, and the instance has one (chain 0,
``INSTANCE``). An entry goes to the chain of whom or what the event is about:

1. the fund given as ``fund=`` (a Fund, a fund's id, or None for the instance's chain); an
   event that concerns two funds (a referral between them) is recorded in each;
2. else the fund of the object: its ``fund_id`` (a case, grant, pool, donor, rate, statement,
   a staff account). A row that carries no ``fund_id`` (a message, a document, a payment, an
   allocation) is recorded with ``fund=`` its case's, grant's or pool's fund: ``record``
   refuses it otherwise, so that no entry lands in a chain by default;
3. else the fund of the actor (a staff member's);
4. else the instance's chain: what belongs to no fund, such as a fund created or suspended,
   an applicant's or a partner's sign-up and sign-in, a retention run, a key rotation.

Each entry's hash is an HMAC-SHA256 over its chain (a fund's), the previous hash, the
sequence number, the time and the canonical content, so an entry moved to another chain
no longer verifies there. Appends to one chain are serialised, so it never forks: on
PostgreSQL by an advisory lock per chain, taken at the append and held to the commit, so
one fund's appends never wait on another's; on SQLite by the database's write lock, which
serialises every write anyway. A transaction that writes to two chains takes both locks
first, lowest chain first (``lock_chains``), so two such transactions never deadlock.

Entries written when the instance had one chain form the start of the instance's chain:
it hashes as that single chain did, so they verify unchanged, and so does a head recorded
then.
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
#: The chain of the instance: events that belong to no fund.
INSTANCE = 0
#: Arbitrary constant naming the audit append locks on PostgreSQL (with the chain).
PG_LOCK_ID = 0x48524446
#: ``record`` called without ``fund=``: the chain follows from the object or the actor.
_FROM_EVENT = object()


def _key():
    return current_app.extensions["hrdfund_audit_key"]


def key_id(key=None):
    """Short public name of the audit key."""
    return hashlib.sha256(b"hrdfund-audit-key:" + (key or _key())).hexdigest()[:8]


def canonical(data):
    """Canonical JSON: sorted keys, no spaces, Decimals and dates as strings."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def chain_of(fund):
    """The chain of ``fund``: a Fund or a fund's id; None is the instance's chain."""
    if fund is None:
        return INSTANCE
    chain = getattr(fund, "id", fund)
    if type(chain) is not int or chain < 0:
        raise ValueError(f"no audit chain for {fund!r}: a fund (flushed), its id, or None")
    return chain


def _entry_hash(key, chain, prev_hash, seq, at, actor, action, object_type, object_id, payload):
    # The instance's chain hashes as the single chain before it did; a fund's names itself
    # first, so its entries verify in no other chain.
    named = [f"chain {chain}"] if chain != INSTANCE else []
    message = "\x1f".join(
        [
            *named,
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


def _lock_chain(chain):
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:k, :c)"), {"k": PG_LOCK_ID, "c": chain}
        )


def lock_chains(*funds):
    """Take the append locks of the chains of ``funds`` (see ``chain_of``), lowest first,
    before writing to more than one chain in a transaction: two transactions writing to
    the same two chains then never wait on each other in a circle."""
    for chain in sorted({chain_of(fund) for fund in funds}):
        _lock_chain(chain)


def _chain_for(obj, actor, fund):
    if fund is not _FROM_EVENT:
        return chain_of(fund)
    if obj is not None:
        if not hasattr(obj, "fund_id"):
            raise TypeError(
                f"a {obj.__tablename__} row carries no fund: record it with fund= the fund "
                "of its case, grant or pool (None for the instance's chain)"
            )
        if obj.fund_id is not None:
            return obj.fund_id
    if actor is not None and actor.fund_id is not None:
        return actor.fund_id
    return INSTANCE


def _last(chain):
    return db.session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()


def record(
    action, obj=None, actor=None, object_type=None, object_id=None, fund=_FROM_EVENT, **payload
):
    """Append an audit entry for ``action`` on ``obj`` by ``actor`` (a User or None) to the
    chain of ``fund`` when given (None: the instance's), else of the object or the actor
    (see the module's rule)."""
    chain = _chain_for(obj, actor, fund)
    if obj is not None:
        object_type = object_type or obj.__tablename__
        object_id = object_id or getattr(obj, "uid", None) or str(obj.id)
    actor_name = actor.pseudonym if actor is not None else "system"
    key = _key()
    body = canonical({k: (str(v) if isinstance(v, Decimal) else v) for k, v in payload.items()})
    _lock_chain(chain)
    last = _last(chain)
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = utcnow().replace(microsecond=0)
    event = AuditEvent(
        chain=chain,
        seq=seq,
        at=at,
        actor=actor_name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        payload=body,
        key_id=key_id(key),
        prev_hash=prev_hash,
        hash=_entry_hash(
            key, chain, prev_hash, seq, at, actor_name, action, object_type, object_id, body
        ),
    )
    db.session.add(event)
    db.session.flush()
    return event


def verify(*, fund=None, head=None):
    """Walk the chain of ``fund`` (None: the instance's) in order; return a list naming
    the first break, or an empty list.

    ``head`` is an optional (seq, hash) of that chain recorded outside the server: it also
    detects a chain cut at its tail.
    """
    chain = chain_of(fund)
    key = _key()
    expected_seq, prev_hash = 1, GENESIS
    rows = db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    ).scalars()
    for event in rows.yield_per(2000):
        if event.seq != expected_seq:
            return [f"audit entry {expected_seq} is missing (next entry is {event.seq})"]
        if event.prev_hash != prev_hash:
            return [
                f"audit entry {event.seq} does not follow entry {event.seq - 1} "
                "(deleted, reordered or moved from another chain)"
            ]
        digest = _entry_hash(
            key,
            chain,
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
        at_head = db.session.execute(
            sa.select(AuditEvent.hash).where(AuditEvent.chain == chain, AuditEvent.seq == head_seq)
        ).scalar()
        if head_seq > 0 and at_head != head_hash:  # 0: recorded while the chain was empty
            return [f"audit entry {head_seq} differs from the recorded head"]
    return []


def head(fund=None):
    """The last (seq, hash) of the chain of ``fund`` (None: the instance's), to be recorded
    outside the server; (0, GENESIS) while it is empty."""
    last = _last(chain_of(fund))
    return (last.seq, last.hash) if last else (0, GENESIS)


def heads():
    """The last (seq, hash) of every chain holding entries, by chain."""
    last = (
        sa.select(AuditEvent.chain, sa.func.max(AuditEvent.seq).label("seq"))
        .group_by(AuditEvent.chain)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(AuditEvent.chain, AuditEvent.seq, AuditEvent.hash)
        .join(last, sa.and_(AuditEvent.chain == last.c.chain, AuditEvent.seq == last.c.seq))
        .order_by(AuditEvent.chain)
    )
    return {row.chain: (row.seq, row.hash) for row in rows}


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
