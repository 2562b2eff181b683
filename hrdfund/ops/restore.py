"""Restore: a backup archive (see ``backup``) checked whole, then written into an empty
database and an instance without documents, and the result compared with the archive's
manifest: every table's row count and the head of every audit chain.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app

from ..core.extensions import db
from .archive import (
    DATABASE_MEMBERS,
    DIALECT_NAMES,
    DOCUMENTS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SCHEMA_TABLES,
    STORAGE_NAME,
    BackupError,
    check_tool,
    configured_dialect,
    copy_hashing,
    documents_folder,
    figures,
    key_ids,
    libpq_connection,
    listed_heads,
    pg_tool,
)


@dataclass
class RestoreResult:
    manifest: dict
    #: How the restored data differs from the manifest; empty when all is well.
    problems: list = field(default_factory=list)
    #: What does not make the restore wrong but needs doing, such as setting other keys.
    warnings: list = field(default_factory=list)


def restore_backup(path):
    """Restore the archive at ``path`` into the configured database, which must be empty,
    and the instance's documents folder, which must hold nothing; then compare the result
    with the manifest. The archive is checked whole before anything changes."""
    dialect = configured_dialect()
    tool = pg_tool("pg_restore") if dialect == "postgresql" else None
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
            folder = documents_folder()
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
            and all(
                type(seq) is int and isinstance(digest, str)
                for seq, digest in listed_heads(manifest).values()
            )
            and all(STORAGE_NAME.fullmatch(name) for name in manifest["documents"])
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
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
        digest = copy_hashing(source, path)
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
    conninfo, env = libpq_connection()
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
    check_tool(done, "pg_restore", f"nothing was changed{hint}")


def _compare(manifest):
    """Each table's row count and each audit chain's head, against the manifest."""
    try:
        tables, _revision, heads = figures()
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
    listed = listed_heads(manifest)
    for chain in sorted(set(heads) | set(listed)):
        if heads.get(chain) != listed.get(chain):
            found, said = (
                ":".join(map(str, h)) if h else "no entry"
                for h in (heads.get(chain), listed.get(chain))
            )
            problems.append(f"audit head of chain {chain} is {found}, the manifest says {said}")
    return problems


def _key_warnings(manifest):
    """Other keys than the backup's leave the restore right, but its data unreadable."""
    configured, recorded = key_ids(), manifest.get("key_ids") or {}
    warnings = []
    if recorded.get("encryption") not in (None, configured["encryption"]):
        warnings.append(
            f"the backup was written under encryption key {recorded['encryption']}, and "
            f"HRDFUND_ENCRYPTION_KEY is key {configured['encryption']}: fields and documents "
            "read only if the backup's key is in HRDFUND_ENCRYPTION_OLD_KEYS"
        )
    if recorded.get("audit") not in (None, configured["audit"]):
        warnings.append(
            f"the backup's audit chains are keyed with audit key {recorded['audit']}, and "
            f"HRDFUND_AUDIT_KEY is key {configured['audit']}: `flask hrdfund check` will fail"
        )
    return warnings
