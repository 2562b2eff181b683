"""Limits on guessing at a login name (SECURITY.md, promises 8 and 9).

Failed passwords and codes are counted per login name, never per account row nor per
address, so a login without an account counts, locks and answers like one with an account:

- per login and client: ``LOGIN_MAX_FAILURES`` failures within ``LOGIN_LOCK_MINUTES`` lock
  that login for that client for ``LOGIN_LOCK_MINUTES``. A client is a browser, named by the
  random token of its cookie; a request without one is given a new one.
- per login, for new clients: ``LOGIN_MAX_NEW_CLIENT_FAILURES`` failures within the same
  window from clients that never completed a sign-in to that login (password and second
  factor) lock it for every such client. A client that did is known to that login for
  ``KNOWN_CLIENT_DAYS``: exempt from this limit, never from its own. The token only exempts;
  it never signs anyone in.

Each counter is a row named by a keyed hash of the normalised login (and the token). An
attempt is charged before its password is hashed and refunded when the password turns out
right, so attempts sent at once are held to the limits as if sent one after another: on
PostgreSQL the counters' rows are locked while they are charged or settled, on SQLite the
write transaction serialises them.
"""

import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from ..core.columns import cipher, utcnow
from ..core.extensions import db
from .models import SignInLimit

#: What a client token looks like: 32 random bytes, URL-safe base64.
CLIENT_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: Expired counters deleted by each charge, at most: cleaning never holds a lock for long.
FORGET_BATCH = 50


def new_client_token():
    """A random token naming a browser; it carries nothing about anyone."""
    return secrets.token_urlsafe(32)


def valid_client_token(value):
    """``value`` when it looks like a client token, else None."""
    return value if value and CLIENT_TOKEN_PATTERN.match(value) else None


def check_config(config):
    """Refuse to start with a limit on new clients below the limit per client."""
    if config["LOGIN_MAX_NEW_CLIENT_FAILURES"] < config["LOGIN_MAX_FAILURES"]:
        raise RuntimeError(
            "HRDFUND_LOGIN_NEW_CLIENT_FAILURES must be at least "
            f"{config['LOGIN_MAX_FAILURES']} (the limit per login and browser)"
        )
    if config["KNOWN_CLIENT_DAYS"] < 1 or config["LOGIN_LOCK_MINUTES"] < 1:
        raise RuntimeError("HRDFUND_KNOWN_CLIENT_DAYS and HRDFUND_LOGIN_LOCK_MINUTES must be > 0")


@dataclass
class Charge:
    """One attempt at a login, counted before it is checked."""

    login: str
    token: str | None
    client_key: str
    new_clients_key: str
    #: The client completed a sign-in to this login: the limit on new clients spares it.
    known: bool = False
    #: Counter key -> when its window began, for each counter this attempt was charged to.
    charged: dict = field(default_factory=dict)
    #: This attempt brought a counter to its limit: if it fails, that counter is locked.
    reached: bool = False
    #: Set when the attempt was refused without being charged: minutes to wait.
    wait_minutes: int | None = None
    #: The transaction that locked the attempt's counters, and the rows: a later step of
    #: the same transaction works on them without asking for them again.
    held: tuple | None = field(default=None, repr=False)

    @property
    def refused(self):
        return self.wait_minutes is not None

    @property
    def keys(self):
        return tuple(sorted((self.client_key, self.new_clients_key)))


def _window():
    return timedelta(minutes=current_app.config["LOGIN_LOCK_MINUTES"])


def _limit(charge, key):
    cfg = current_app.config
    if key == charge.client_key:
        return cfg["LOGIN_MAX_FAILURES"]
    return cfg["LOGIN_MAX_NEW_CLIENT_FAILURES"]


def counter_keys(login, token):
    """The keyed hashes naming the counters of ``login`` (normalised) for this client and
    for every new client."""
    index = cipher().blind_index
    return index(f"sign-in|client|{login}|{token or ''}"), index(f"sign-in|new|{login}")


def knows(login, token, now=None):
    """Whether the client with ``token`` is known to ``login`` (normalised): it completed
    a sign-in to it lately. Only reads."""
    client_key, _new = counter_keys(login, token)
    until = db.session.execute(
        sa.select(SignInLimit.known_until).where(SignInLimit.key == client_key)
    ).scalar_one_or_none()
    return until is not None and until > (now or utcnow())


def _postgresql():
    return db.session.get_bind().dialect.name == "postgresql"


def _forget_expired(now, but):
    """Delete a few counters that say nothing any more, not those named by ``but`` (this
    attempt's own, locked already). On PostgreSQL rows another attempt has locked are
    skipped, and as it runs once this attempt's own counters are locked, it waits for no
    one while holding them: another attempt that wanted a row deleted here waits for this
    one instead, never in a circle."""
    expired = (
        sa.select(SignInLimit.id)
        .where(SignInLimit.expires_at < now, SignInLimit.key.not_in(list(but)))
        .order_by(SignInLimit.expires_at)
        .limit(FORGET_BATCH)
    )
    if _postgresql():
        expired = expired.with_for_update(skip_locked=True)
    db.session.execute(sa.delete(SignInLimit).where(SignInLimit.id.in_(expired)))


#: A counter created when missing, in each database's words; built once, as the same
#: statement whatever the keys (their values are its parameters).
_CREATE = {
    name: dialect.insert(SignInLimit.__table__).on_conflict_do_nothing(index_elements=["key"])
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
#: The counters named by the ``keys`` parameter, in one order (on PostgreSQL, locked).
_READ = (
    sa.select(SignInLimit)
    .where(SignInLimit.key.in_(sa.bindparam("keys", expanding=True)))
    .order_by(SignInLimit.key)
    .execution_options(populate_existing=True)
)
_LOCK = _READ.with_for_update()


def _counters(keys, now):
    """The counters named by ``keys``, created when missing; on PostgreSQL their rows stay
    locked until the transaction ends, taken in one order so that nobody deadlocks."""
    keys = sorted(keys)
    locking = _postgresql()
    db.session.execute(
        _CREATE["postgresql" if locking else "sqlite"],
        [{"key": key, "failures": 0, "expires_at": now} for key in keys],
    )
    rows = {
        row.key: row
        for row in db.session.execute(_LOCK if locking else _READ, {"keys": keys}).scalars()
    }
    missing = [key for key in keys if key not in rows]
    if missing:
        # Another attempt's cleaning deleted one between the insert and the lock (it had
        # expired): made again.
        rows.update(_counters(missing, now))
    return rows


def _set_expiry(row, now):
    ends = [now, row.locked_until, row.known_until]
    if row.failures and row.counting_since is not None:
        ends.append(row.counting_since + _window())
    row.expires_at = max(end for end in ends if end is not None)


def _minutes_left(until, now):
    return max(1, int((until - now).total_seconds() // 60) + 1)


def charge_attempt(login, token, now=None):
    """Count one attempt at ``login`` (normalised) from the client with ``token`` before
    it is checked; refuse it, charging nothing, while a counter that applies is locked."""
    now = now or utcnow()
    client_key, new_clients_key = counter_keys(login, token)
    charge = Charge(login, token, client_key, new_clients_key)
    rows = _held(charge, _counters(charge.keys, now))
    _forget_expired(now, but=charge.keys)
    client = rows[client_key]
    charge.known = client.known_until is not None and client.known_until > now
    applying = [client] if charge.known else [client, rows[new_clients_key]]
    locks = [r.locked_until for r in applying if r.locked_until and r.locked_until > now]
    if locks:
        charge.wait_minutes = _minutes_left(max(locks), now)
        return charge
    for row in applying:
        if row.counting_since is None or row.counting_since + _window() <= now:
            row.failures, row.counting_since, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= _limit(charge, row.key):
            row.locked_until = now + _window()
            charge.reached = True
        _set_expiry(row, now)
        charge.charged[row.key] = row.counting_since
    db.session.flush()
    return charge


def _held(charge, rows):
    charge.held = (db.session().get_transaction(), rows)
    return rows


def hold(charge, now=None):
    """Lock the attempt's counters again, so that the attempts of one login settle in turn
    (two sign-ups of one free login: the second sees the first). Within the transaction
    that locked them last, they are locked already: the rows read then are returned."""
    if charge.held is not None and charge.held[0] is db.session().get_transaction():
        return charge.held[1]
    return _held(charge, _counters(charge.keys, now or utcnow()))


def refund(charge, now=None):
    """Take the attempt back: it was no failure (a right password, a second step to come).
    Failures counted before it stay."""
    now = now or utcnow()
    rows = hold(charge, now)
    for key, since in charge.charged.items():
        row = rows[key]
        if row.counting_since != since or row.failures == 0:
            continue  # the window moved on meanwhile: nothing of this attempt is left
        row.failures -= 1
        if row.locked_until is not None and row.failures < _limit(charge, key):
            row.locked_until = None
        _set_expiry(row, now)
    db.session.flush()


def complete(charge, now=None, login=None):
    """A full sign-in (password and any second factor) from this client: the attempt is
    refunded, the client's own failures are forgotten and it becomes known to the login
    signed in to (``login``; a sign-up may end at another login than it was charged to).
    Returns the client's token to keep (a new one when the browser had none)."""
    now = now or utcnow()
    refund(charge, now)
    token = charge.token or new_client_token()
    client_key, _new = counter_keys(login or charge.login, token)
    held = hold(charge, now)
    if client_key not in held:  # a new token, or another login than the one charged
        held = {**held, **_counters({client_key}, now)}
    rows = {key: held[key] for key in (charge.client_key, client_key)}
    for row in rows.values():
        row.failures, row.counting_since, row.locked_until = 0, None, None
    rows[client_key].known_until = now + timedelta(days=current_app.config["KNOWN_CLIENT_DAYS"])
    for row in rows.values():
        _set_expiry(row, now)
    db.session.flush()
    return token
