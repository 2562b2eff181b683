"""Backup and restore: one tar archive holding the database and the stored documents, with
a manifest that a restore is checked against.

No key goes into the archive. Its fields and documents are encrypted under
HRDFUND_ENCRYPTION_KEY and its audit chains are keyed with HRDFUND_AUDIT_KEY, both kept
outside the database: without them nobody can read the archive, the fund included, so the
keys must be kept apart from it, as carefully.

The archive is one snapshot while the app runs. On SQLite the session's write transaction
(BEGIN IMMEDIATE) holds other writers off while the online backup API copies the file; on
PostgreSQL the manifest is counted in a repeatable-read transaction whose snapshot
`pg_dump --snapshot` then dumps. Documents kept in the database (PostgreSQL's default) are
in that dump, their encrypted pieces as stored, streamed by pg_dump. The document files
the snapshot names are copied after that, with writers going on: a file is only ever
added, replaced whole by one rename (key rotation), or wiped and deleted (retention: a file
gone is left out and counted; a purge running at the same time could leave a wiped copy,
so run the two at different times).
"""

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ..cases.models import Document, DocumentChunk
from ..core.extensions import db
from .archive import (
    DATABASE_MEMBERS,
    DOCUMENTS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    STORAGE_NAME,
    BackupError,
    check_tool,
    configured_dialect,
    copy_hashing,
    documents_folder,
    figures,
    heads_entry,
    key_ids,
    libpq_connection,
    pg_tool,
)


@dataclass
class BackupResult:
    path: str
    size: int
    manifest: dict
    #: Document rows without a file: proofs of payment emptied by retention.
    without_file: int = 0


def write_backup(out):
    """Write the database and the stored documents to the archive ``out``: a temporary file
    beside it (0600), renamed to ``out`` once complete."""
    dialect = configured_dialect()
    out = os.path.abspath(out)
    if not os.path.isdir(os.path.dirname(out)):
        raise BackupError(f"the folder {os.path.dirname(out)} does not exist")
    tool = pg_tool("pg_dump") if dialect == "postgresql" else None
    staging = tempfile.mkdtemp(prefix=".hrdfund-backup-", dir=os.path.dirname(out))
    try:
        dump = os.path.join(staging, DATABASE_MEMBERS[dialect])
        db.session.close()  # the snapshot is a transaction of its own, begun here
        try:
            if dialect == "sqlite":
                db.session.connection()  # BEGIN IMMEDIATE: writers wait until the copy ends
                tables, revision, heads = figures()
                _copy_sqlite(dump)
            else:
                snapshot = _begin_postgresql_snapshot()
                tables, revision, heads = figures()
                _pg_dump(tool, snapshot, dump)
            names = _document_names()
            in_database = _documents_in_database()
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
            "audit_heads": heads_entry(heads),
            "database": {"file": DATABASE_MEMBERS[dialect], "sha256": digest},
            "documents": documents,
            # Documents whose encrypted pieces are in the database's dump.
            "documents_in_database": in_database,
            # The keys' public names, as every ciphertext carries them; never the keys.
            "key_ids": key_ids(),
        }
        size = _write_archive(out, manifest, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BackupResult(out, size, manifest, without_file)


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
    conninfo, env = libpq_connection()
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
    check_tool(done, "pg_dump")
    os.chmod(dump, 0o600)


def _has_chunks_table():
    """Whether the database has the table of documents' pieces (a database restored from
    before it was added has not)."""
    return sa.inspect(db.session.connection()).has_table(DocumentChunk.__tablename__)


def _documents_in_database():
    if not _has_chunks_table():
        return 0
    return db.session.scalar(sa.select(sa.func.count(sa.distinct(DocumentChunk.document_id))))


def _document_names():
    """The storage names of the documents in the snapshot kept in the folder: those with
    no pieces in the database."""
    query = sa.select(Document.storage_name).order_by(Document.id)
    if _has_chunks_table():
        in_database = sa.select(DocumentChunk.document_id).where(
            DocumentChunk.document_id == Document.id
        )
        query = query.where(~in_database.exists())
    names = db.session.scalars(query).all()
    for name in names:
        if not STORAGE_NAME.fullmatch(name):
            raise BackupError(f"a document has an unexpected storage name: {name[:40]!r}")
    return names


def _copy_documents(names, target):
    """Copy the files of the documents named, hashing them on the way. A rotation replaces
    a file in one rename, so each copy is one version whole."""
    os.mkdir(target, 0o700)
    folder = documents_folder()
    copied, without_file = {}, 0
    for name in names:
        try:
            source = open(os.path.join(folder, name), "rb")
        except FileNotFoundError:
            without_file += 1
            continue
        with source:
            copied[name] = copy_hashing(source, os.path.join(target, name))
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
