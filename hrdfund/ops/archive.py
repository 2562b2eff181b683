"""The backup archive's format, and what writing one (``backup``) and restoring one
(``restore``) share: the figures a manifest holds, the keys' names, the documents folder, a
hashed copy, and the PostgreSQL client tools run without the password on their command
line."""

import hashlib
import os
import re
import shutil

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..core.columns import cipher
from ..core.extensions import db

FORMAT = "hrdfund-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE_MEMBERS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
DIALECT_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
DOCUMENTS = "documents"
#: Tables describing the schema, not the fund's data: a database just migrated holds a row
#: there and still counts as empty.
SCHEMA_TABLES = frozenset({"alembic_version"})
#: A stored document's file name (random hex); an archive naming anything else is refused.
STORAGE_NAME = re.compile(r"[0-9A-Za-z_-][0-9A-Za-z._-]{0,63}")
#: libpq settings never put on a command line, where other users of the machine see them.
SECRET_SETTINGS = frozenset({"password", "sslpassword"})
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why in plain words."""


def configured_dialect():
    """The configured database's dialect: sqlite or postgresql; refused otherwise."""
    name = db.engine.dialect.name
    if name not in DATABASE_MEMBERS:
        raise BackupError(f"backup and restore support SQLite and PostgreSQL, not {name}")
    return name


def figures():
    """Every table's row count, the schema revision and the head of every audit chain, as
    the session's transaction sees them."""
    inspector = sa.inspect(db.session.connection())
    names = sorted(inspector.get_table_names())
    count = sa.select(sa.func.count())
    tables = {name: db.session.scalar(count.select_from(sa.table(name))) for name in names}
    revision = None
    if "alembic_version" in names:
        versions = db.session.scalars(sa.text("SELECT version_num FROM alembic_version"))
        revision = ",".join(sorted(versions)) or None
    heads = {}
    if "audit_events" in names:
        columns = {column["name"] for column in inspector.get_columns("audit_events")}
        # A database restored from before the chains were per fund has one: the instance's.
        heads = audit.heads() if "chain" in columns else _single_chain_head()
    return tables, revision, heads


def _single_chain_head():
    last = db.session.execute(
        sa.text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
    ).first()
    return {audit.INSTANCE: (last.seq, last.hash)} if last else {}


def heads_entry(heads):
    """Audit heads by chain as a manifest holds them: {"chain": {"seq": .., "hash": ..}}."""
    return {str(chain): {"seq": seq, "hash": digest} for chain, (seq, digest) in heads.items()}


def listed_heads(manifest):
    """The audit heads a manifest lists, by chain; an archive written when there was one
    chain lists its head alone, the instance's chain's now."""
    if "audit_heads" not in manifest:
        head = manifest["audit_head"]
        return {audit.INSTANCE: (head["seq"], head["hash"])} if head["seq"] else {}
    return {int(chain): (h["seq"], h["hash"]) for chain, h in manifest["audit_heads"].items()}


def heads_arguments(heads):
    """The heads as `flask hrdfund check` takes them: --head CHAIN:SEQ:HASH for each."""
    return " ".join(f"--head {chain}:{seq}:{digest}" for chain, (seq, digest) in heads.items())


def key_ids():
    """The public names of the keys in use: what every ciphertext and seal carries."""
    return {"encryption": cipher().current_id.hex(), "audit": audit.key_id()}


def documents_folder():
    """The instance's documents folder, made (0700) when missing."""
    path = os.path.join(current_app.instance_path, DOCUMENTS)
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def copy_hashing(source, path):
    """Copy the file object ``source`` to a new file ``path`` (0600); its SHA-256."""
    digest = hashlib.sha256()
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def pg_tool(name):
    """The path of the PostgreSQL client tool ``name``; refused when not installed."""
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} was not found: install the PostgreSQL client tools of the server's "
            "version (on Debian: apt-get install postgresql-client) and put them on PATH"
        )
    return path


def libpq_connection():
    """The configured database as a libpq connection string without its password, and an
    environment passing the password in PGPASSWORD."""
    url = db.engine.url
    settings = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    for name, value in url.query.items():
        if name not in SECRET_SETTINGS:
            settings.setdefault(name, value if isinstance(value, str) else value[-1])
    quoted = {
        name: "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
        for name, value in settings.items()
        if value not in (None, "")
    }
    env = dict(os.environ)
    if url.password or url.query.get("password"):
        env["PGPASSWORD"] = str(url.password or url.query["password"])
    return " ".join(f"{name}={value}" for name, value in quoted.items()), env


def check_tool(done, tool, after=""):
    """Raise with the tool's last words when it failed; they name tables and settings,
    never the password, which it was not given."""
    if done.returncode != 0:
        detail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        ending = f"; {after}" if after else ""
        raise BackupError(f"{tool} failed (exit {done.returncode}): {detail}{ending}")
