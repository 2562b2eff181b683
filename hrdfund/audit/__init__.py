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
PostgreSQL by an advisory lock per chain, held to the commit, so one fund's appends never
wait on another's; on SQLite by the database's write lock, which serialises every write
anyway.

``record`` does not append at once: it queues the entry, with its time, content and chain,
in the transaction. Just before the commit (``append``, from the session's
``before_commit``) everything else the transaction wrote is flushed, then the chains of
the queued entries are locked (lowest chain first, so two transactions never wait on each
other in a circle), the last entry of each is read once, and the queued entries are
hashed in the order they were recorded and inserted together. So a chain's lock is held
for the append and the commit only, not for the rest of the transaction, and it is the
last lock a transaction takes. A rollback drops the queued entries with everything else
(a savepoint's, the entries queued since it). A read of the audit entries through the
session appends what is queued first, so a transaction sees its own entries.

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
from ..core.extensions import AUDIT_QUEUE, db
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


def _entry_hash(key, event):
    """The keyed hash of ``event`` (an entry with its chain, place and previous hash set)."""
    # The instance's chain hashes as the single chain before it did; a fund's names itself
    # first, so its entries verify in no other chain.
    named = [f"chain {event.chain}"] if event.chain != INSTANCE else []
    message = "\x1f".join(
        [
            *named,
            event.prev_hash,
            str(event.seq),
            event.at.isoformat(),
            event.actor,
            event.action,
            event.object_type or "",
            event.object_id or "",
            event.payload,
        ]
    )
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def lock_chains(*funds):
    """Take the append locks of the chains of ``funds`` (see ``chain_of``), lowest first,
    held to the commit (PostgreSQL; on SQLite the write lock serialises appends): what
    ``append`` does before it reads the chains' last entries."""
    chains = sorted({chain_of(fund) for fund in funds})
    if chains and db.session.get_bind().dialect.name == "postgresql":
        for chain in chains:
            db.session.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k, :c)"), {"k": PG_LOCK_ID, "c": chain}
            )


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


def _last(chain, session=None):
    return (
        (session or db.session)
        .execute(
            sa.select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.chain == chain)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        )
        .first()
    )


#: Where a session keeps its queued entries: (entry, the object it is about, savepoint).
_QUEUE = AUDIT_QUEUE


def record(
    action, obj=None, actor=None, object_type=None, object_id=None, fund=_FROM_EVENT, **payload
):
    """Queue an audit entry for ``action`` on ``obj`` by ``actor`` (a User or None) in the
    chain of ``fund`` when given (None: the instance's), else of the object or the actor
    (see the module's rule). It is appended to its chain just before the transaction
    commits; the entry returned has its sequence number and hash from then on."""
    session = db.session()
    # What the entry names is read as the objects hold it: an object read again (after
    # a commit) does not write the changes waiting in the session before their time.
    with session.no_autoflush:
        chain = _chain_for(obj, actor, fund)
        if obj is not None:
            object_type = object_type or obj.__tablename__
            object_id = object_id or getattr(obj, "uid", None)
            if object_id is None and obj.id is not None:
                object_id = str(obj.id)
        actor_name = actor.pseudonym if actor is not None else "system"
    body = canonical({k: (str(v) if isinstance(v, Decimal) else v) for k, v in payload.items()})
    event = AuditEvent(
        chain=chain,
        at=utcnow().replace(microsecond=0),
        actor=actor_name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        payload=body,
    )
    # A new row has its id once flushed: the entry names it then.
    about = obj if object_id is None and obj is not None else None
    session.info.setdefault(_QUEUE, []).append((event, about, session.get_nested_transaction()))
    return event


def queued(session=None):
    """The entries recorded in the open transaction and not appended yet, in order."""
    session = session or db.session()
    return [event for event, _about, _savepoint in session.info.get(_QUEUE, ())]


def append(session=None):
    """Append the entries queued in the transaction to their chains now: one lock of each
    chain (lowest first), one read of its last entry, one insert of them all. Runs by
    itself just before every commit; call it only where a transaction must hold its
    entries' places before then."""
    session = session or db.session()
    entries = session.info.pop(_QUEUE, None)
    if not entries:
        return []
    # Every other row first: the chain's lock is the last a transaction takes, and a row
    # written after it would hold it longer.
    session.flush()
    key = _key()
    kid = key_id(key)
    chains = sorted({event.chain for event, _about, _savepoint in entries})
    lock_chains(*chains)
    last = {chain: _last(chain, session) for chain in chains}
    events = []
    for event, about, _savepoint in entries:
        if event.object_id is None and about is not None:
            event.object_id = getattr(about, "uid", None) or str(about.id)
        found = last[event.chain]
        seq, prev_hash = (found[0] + 1, found[1]) if found else (1, GENESIS)
        event.seq, event.prev_hash, event.key_id = seq, prev_hash, kid
        event.hash = _entry_hash(key, event)
        last[event.chain] = (seq, event.hash)
        events.append(event)
    columns = ("chain", "seq", "at", "actor", "action", "object_type", "object_id")
    columns += ("payload", "key_id", "prev_hash", "hash")
    session.execute(
        sa.insert(AuditEvent.__table__),
        [{name: getattr(e, name) for name in columns} for e in events],
    )
    return events


def _before_commit(session):
    append(session)


def _after_soft_rollback(session, previous_transaction):
    entries = session.info.get(_QUEUE)
    if not entries:
        return
    if not previous_transaction.nested:
        session.info.pop(_QUEUE, None)
        return

    def inside(savepoint):
        while savepoint is not None:
            if savepoint is previous_transaction:
                return True
            savepoint = savepoint.parent
        return False

    entries[:] = [entry for entry in entries if not inside(entry[2])]


def _after_transaction_end(session, transaction):
    if transaction.parent is None:  # the transaction ended, however: nothing stays queued
        session.info.pop(_QUEUE, None)


def _before_reading(orm_execute_state):
    session = orm_execute_state.session
    if session.info.get(_QUEUE) and orm_execute_state.is_select:
        if any(mapper.class_ is AuditEvent for mapper in orm_execute_state.all_mappers):
            append(session)


def install():
    """Append queued entries before each commit, drop them with a rollback, and append
    them before a read of the entries. Calling it again changes nothing."""
    if sa.event.contains(sa.orm.Session, "before_commit", _before_commit):
        return
    sa.event.listen(sa.orm.Session, "before_commit", _before_commit)
    sa.event.listen(sa.orm.Session, "after_soft_rollback", _after_soft_rollback)
    sa.event.listen(sa.orm.Session, "after_transaction_end", _after_transaction_end)
    sa.event.listen(sa.orm.Session, "do_orm_execute", _before_reading)


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
        digest = _entry_hash(key, event)
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
