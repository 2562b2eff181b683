"""Backup and restore: one tar archive holding the database and the stored documents, with
a manifest that a restore is checked against.

No key goes into the archive. Its fields and documents are encrypted under
HRDFUND_ENCRYPTION_KEY and its audit chain is keyed with HRDFUND_AUDIT_KEY, both kept
outside the database: without them nobody can read the archive, the fund included, so the
keys must be kept apart from it, as carefully.

The archive is one snapshot while the app runs. On SQLite the session's write transaction
(BEGIN IMMEDIATE) holds other writers off while the online backup API copies the file; on
PostgreSQL the manifest is counted in a repeatable-read transaction whose snapshot
`pg_dump --snapshot` then dumps. The document files the snapshot names are copied after
that, with writers going on: a file is only ever added, replaced whole by one rename (key
rotation), or wiped and deleted (retention: a file gone is left out and counted; a purge
running at the same time could leave a wiped copy, so run the two at different times).
"""

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..cases.models import Document
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


@dataclass
class BackupResult:
    path: str
    size: int
    manifest: dict
    #: Document rows without a file: proofs of payment emptied by retention.
    without_file: int = 0


@dataclass
class RestoreResult:
    manifest: dict
    #: How the restored data differs from the manifest; empty when all is well.
    problems: list = field(default_factory=list)
    #: What does not make the restore wrong but needs doing, such as setting other keys.
    warnings: list = field(default_factory=list)


# --- backup -------------------------------------------------------------------------------


def write_backup(out):
    """Write the database and the stored documents to the archive ``out``: a temporary file
    beside it (0600), renamed to ``out`` once complete."""
    dialect = _dialect()
    out = os.path.abspath(out)
    if not os.path.isdir(os.path.dirname(out)):
        raise BackupError(f"the folder {os.path.dirname(out)} does not exist")
    tool = _pg_tool("pg_dump") if dialect == "postgresql" else None
    staging = tempfile.mkdtemp(prefix=".hrdfund-backup-", dir=os.path.dirname(out))
    try:
        dump = os.path.join(staging, DATABASE_MEMBERS[dialect])
        db.session.close()  # the snapshot is a transaction of its own, begun here
        try:
            if dialect == "sqlite":
                db.session.connection()  # BEGIN IMMEDIATE: writers wait until the copy ends
                tables, revision, head = _figures()
                _copy_sqlite(dump)
            else:
                snapshot = _begin_postgresql_snapshot()
                tables, revision, head = _figures()
                _pg_dump(tool, snapshot, dump)
            names = _document_names()
        finally:
            db.session.close()  # writers go on; the files named are never rewritten in place
        documents, without_file = _copy_documents(names, os.path.join(staging, DOCUMENTS))
        with open(dump, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "dialect": dialect,
            "alembic_revision": revision,
            "tables": tables,
            "audit_head": {"seq": head[0], "hash": head[1]},
            "database": {"file": DATABASE_MEMBERS[dialect], "sha256": digest},
            "documents": documents,
            # The keys' public names, as every ciphertext carries them; never the keys.
            "key_ids": _key_ids(),
        }
        size = _write_archive(out, manifest, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(out, size, manifest, without_file)


def _dialect():
    name = db.engine.dialect.name
    if name not in DATABASE_MEMBERS:
        raise BackupError(f"backup and restore support SQLite and PostgreSQL, not {name}")
    return name


def _figures():
    """Every table's row count, the schema revision and the audit head, as the session's
    transaction sees them."""
    names = sorted(sa.inspect(db.session.connection()).get_table_names())
    count = sa.select(sa.func.count())
    tables = {name: db.session.scalar(count.select_from(sa.table(name))) for name in names}
    revision = None
    if "alembic_version" in names:
        versions = db.session.scalars(sa.text("SELECT version_num FROM alembic_version"))
        revision = ",".join(sorted(versions)) or None
    return tables, revision, audit.head()


def _key_ids():
    return {"encryption": cipher().current_id.hex(), "audit": audit.key_id()}


def _copy_sqlite(dump):
    """Copy the database with SQLite's online backup API, from a connection of its own: the
    session's, holding the write lock, cannot be the source."""
    os.close(os.open(dump, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = db.engine.raw_connection()
    target = sqlite3.connect(dump)
    try:
        source.driver_connection.backup(target)
    finally:
        target.close()
        source.close()


def _begin_postgresql_snapshot():
    """Begin a read-only repeatable-read transaction; export its snapshot for pg_dump."""
    db.session.connection(
        execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    )
    return db.session.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()


def _pg_dump(tool, snapshot, dump):
    conninfo, env = _libpq_connection()
    done = subprocess.run(  # noqa: S603 (path from shutil.which, arguments written here, no shell)
        [
            tool,
            "--format=custom",
            "--no-owner",
            f"--snapshot={snapshot}",
            f"--file={dump}",
            f"--dbname={conninfo}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    _check_tool(done, "pg_dump")
    os.chmod(dump, 0o600)


def _document_names():
    """The storage names of the documents in the snapshot."""
    names = db.session.scalars(sa.select(Document.storage_name).order_by(Document.id)).all()
    for name in names:
        if not STORAGE_NAME.fullmatch(name):
            raise BackupError(f"a document has an unexpected storage name: {name[:40]!r}")
    return names


def _copy_documents(names, target):
    """Copy the files of the documents named, hashing them on the way. A rotation replaces
    a file in one rename, so each copy is one version whole."""
    os.mkdir(target, 0o700)
    folder = _documents_folder()
    copied, without_file = {}, 0
    for name in names:
        try:
            source = open(os.path.join(folder, name), "rb")
        except FileNotFoundError:
            without_file += 1
            continue
        with source:
            copied[name] = _copy_hashing(source, os.path.join(target, name))
    return copied, without_file


def _write_archive(out, manifest, staging):
    """Write the tar under a temporary name (0600) beside ``out``, then rename it."""
    fd, partial = tempfile.mkstemp(suffix=".partial", dir=staging)
    try:
        with os.fdopen(fd, "wb") as fh:
            with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT) as tar:
                body = json.dumps(manifest, indent=2, sort_keys=True).encode()
                tar.addfile(_member(MANIFEST, len(body)), io.BytesIO(body))
                names = [manifest["database"]["file"]]
                names += [f"{DOCUMENTS}/{name}" for name in manifest["documents"]]
                for name in names:
                    path = os.path.join(staging, name)
                    with open(path, "rb") as source:
                        tar.addfile(_member(name, os.path.getsize(path)), source)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(partial, out)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return os.path.getsize(out)


def _member(name, size):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(datetime.now(UTC).timestamp())
    return info


# --- restore ------------------------------------------------------------------------------


def restore_backup(path):
    """Restore the archive at ``path`` into the configured database, which must be empty,
    and the instance's documents folder, which must hold nothing; then compare the result
    with the manifest. The archive is checked whole before anything changes."""
    dialect = _dialect()
    tool = _pg_tool("pg_restore") if dialect == "postgresql" else None
    if dialect == "sqlite" and db.engine.url.database in (None, "", ":memory:"):
        raise BackupError("restore needs a database file, not an in-memory database")
    try:
        tar = tarfile.open(path, mode="r:")
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{path} is not a readable backup archive: {exc}") from exc
    with tar:
        manifest, members = _read_manifest(tar, dialect)
        tables_before = _refuse_unless_empty()
        workdir = tempfile.mkdtemp(prefix=".restore-", dir=current_app.instance_path)
        try:
            dump = os.path.join(workdir, manifest["database"]["file"])
            _extract(tar, members[manifest["database"]["file"]], dump, manifest["database"])
            staged = os.path.join(workdir, DOCUMENTS)
            os.mkdir(staged, 0o700)
            for name, digest in manifest["documents"].items():
                member = members[f"{DOCUMENTS}/{name}"]
                _extract(tar, member, os.path.join(staged, name), {"sha256": digest})
            # Everything checked: from here on the database and the folder change.
            db.session.remove()
            db.engine.dispose()
            if dialect == "sqlite":
                _restore_sqlite(dump)
            else:
                _restore_postgresql(tool, dump, clean=bool(tables_before))
            db.engine.dispose()
            folder = _documents_folder()
            for name in os.listdir(staged):
                os.replace(os.path.join(staged, name), os.path.join(folder, name))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return RestoreResult(manifest, _compare(manifest), _key_warnings(manifest))


def _read_manifest(tar, dialect):
    """The manifest, checked, and the archive's members by name. An archive of another
    dialect is refused, as is anything in it the manifest does not list (another file, a
    link, a folder path)."""
    members = {}
    for member in tar.getmembers():
        if not member.isfile() or member.name in members:
            raise BackupError(f"unexpected entry in the archive: {member.name[:80]!r}")
        members[member.name] = member
    if MANIFEST not in members:
        raise BackupError("this is not an hrdfund backup: it has no manifest.json")
    try:
        manifest = json.load(tar.extractfile(members[MANIFEST]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupError("the archive's manifest.json cannot be read") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("this is not an hrdfund backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"backup format {manifest.get('format_version')!r} is not one this version of "
            f"hrdfund reads (it reads format {FORMAT_VERSION})"
        )
    if manifest.get("dialect") != dialect:
        archived = DIALECT_NAMES.get(manifest.get("dialect"), repr(manifest.get("dialect")))
        raise BackupError(
            f"this archive holds a {archived} database and the configured database is "
            f"{DIALECT_NAMES[dialect]}: restore it into a {archived} database; "
            "nothing was changed"
        )
    try:
        expected = {MANIFEST, DATABASE_MEMBERS[dialect]}
        expected |= {f"{DOCUMENTS}/{name}" for name in manifest["documents"]}
        well_formed = (
            manifest["database"]["file"] == DATABASE_MEMBERS[dialect]
            and isinstance(manifest["tables"], dict)
            and isinstance(manifest["audit_head"]["seq"], int)
            and all(STORAGE_NAME.fullmatch(name) for name in manifest["documents"])
        )
    except (KeyError, TypeError) as exc:
        raise BackupError("the archive's manifest is incomplete") from exc
    if not well_formed:
        raise BackupError("the archive's manifest is malformed")
    if set(members) != expected:
        differ = ", ".join(sorted(set(members) ^ expected)[:5])
        raise BackupError(f"the archive does not hold what its manifest lists: {differ}")
    return manifest, members


def _refuse_unless_empty():
    """The configured database's tables, to be replaced; refuses a database holding any
    row, or a documents folder holding any file."""
    names = sa.inspect(db.session.connection()).get_table_names()
    holding = [
        name
        for name in sorted(set(names) - SCHEMA_TABLES)
        if db.session.scalar(sa.select(sa.literal(1)).select_from(sa.table(name)).limit(1))
    ]
    db.session.close()
    if holding:
        raise BackupError(
            "refusing to restore: the configured database is not empty "
            f"({len(holding)} tables hold rows, among them {', '.join(holding[:3])}). "
            "Restore only into a new, empty database; nothing was changed."
        )
    folder = os.path.join(current_app.instance_path, DOCUMENTS)
    if os.path.isdir(folder) and os.listdir(folder):
        raise BackupError(
            f"refusing to restore: {folder} already holds files. Restore only into an "
            "instance without documents; nothing was changed."
        )
    return names


def _extract(tar, member, path, expected):
    """Write ``member`` to ``path`` (0600) and check its SHA-256 against the manifest."""
    with tar.extractfile(member) as source:
        digest = _copy_hashing(source, path)
    if digest != expected["sha256"]:
        raise BackupError(
            f"{member.name} in the archive is damaged or was altered (its SHA-256 differs "
            "from the manifest's); nothing was changed"
        )


def _restore_sqlite(dump):
    """Copy the archived database into the configured file with the online backup API."""
    source = sqlite3.connect(f"file:{dump}?mode=ro", uri=True)
    target = db.engine.raw_connection()
    try:
        source.backup(target.driver_connection)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite could not copy the database: {exc}") from exc
    finally:
        target.close()
        source.close()


def _restore_postgresql(tool, dump, clean):
    """pg_restore in one transaction, so all of it or nothing. Tables already there (empty,
    as checked) are dropped and created again as the archive has them."""
    conninfo, env = _libpq_connection()
    done = subprocess.run(  # noqa: S603 (path from shutil.which, arguments written here, no shell)
        [
            tool,
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            *(["--clean", "--if-exists"] if clean else []),
            f"--dbname={conninfo}",
            dump,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    hint = " (a new database without tables, from createdb, avoids clashes)" if clean else ""
    _check_tool(done, "pg_restore", f"nothing was changed{hint}")


def _compare(manifest):
    """Each table's row count and the audit head, against the manifest."""
    try:
        tables, _revision, head = _figures()
    finally:
        db.session.close()
    problems = []
    for name, count in sorted(manifest["tables"].items()):
        if name not in tables:
            problems.append(f"table {name} is missing (the manifest says {count} rows)")
        elif tables[name] != count:
            problems.append(f"table {name} holds {tables[name]} rows, the manifest says {count}")
    for name in sorted(set(tables) - set(manifest["tables"]) - SCHEMA_TABLES):
        if tables[name]:
            problems.append(f"table {name} holds {tables[name]} rows the manifest does not list")
    listed = manifest["audit_head"]
    if head != (listed["seq"], listed["hash"]):
        problems.append(
            f"audit head is {head[0]}:{head[1]}, the manifest says {listed['seq']}:{listed['hash']}"
        )
    return problems


def _key_warnings(manifest):
    """Other keys than the backup's leave the restore right, but its data unreadable."""
    configured, recorded = _key_ids(), manifest.get("key_ids") or {}
    warnings = []
    if recorded.get("encryption") not in (None, configured["encryption"]):
        warnings.append(
            f"the backup was written under encryption key {recorded['encryption']}, and "
            f"HRDFUND_ENCRYPTION_KEY is key {configured['encryption']}: fields and documents "
            "read only if the backup's key is in HRDFUND_ENCRYPTION_OLD_KEYS"
        )
    if recorded.get("audit") not in (None, configured["audit"]):
        warnings.append(
            f"the backup's audit chain is keyed with audit key {recorded['audit']}, and "
            f"HRDFUND_AUDIT_KEY is key {configured['audit']}: `flask hrdfund check` will fail"
        )
    return warnings


# --- shared -------------------------------------------------------------------------------


def _documents_folder():
    path = os.path.join(current_app.instance_path, DOCUMENTS)
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _copy_hashing(source, path):
    """Copy the file object ``source`` to a new file ``path`` (0600); its SHA-256."""
    digest = hashlib.sha256()
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _pg_tool(name):
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} was not found: install the PostgreSQL client tools of the server's "
            "version (on Debian: apt-get install postgresql-client) and put them on PATH"
        )
    return path


def _libpq_connection():
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


def _check_tool(done, tool, after=""):
    """Raise with the tool's last words when it failed; they name tables and settings,
    never the password, which it was not given."""
    if done.returncode != 0:
        detail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        ending = f"; {after}" if after else ""
        raise BackupError(f"{tool} failed (exit {done.returncode}): {detail}{ending}")
