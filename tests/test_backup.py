"""`flask hrdfund backup` and `flask hrdfund restore`: one archive holding the database and
the stored documents, restored only into an empty database and instance, and checked
against its manifest; on SQLite and PostgreSQL."""

import base64
import copy
import io
import itertools
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tarfile

import flask_migrate
import pytest
import sqlalchemy as sa

from hrdfund import audit
from hrdfund.auth.models import Role, User
from hrdfund.cases.documents import (
    CleanUpload,
    delete_document_file,
    read_document,
    store_document,
)
from hrdfund.cases.models import Application, Document, DocumentKind
from hrdfund.core.extensions import db
from hrdfund.ledger.seals import FINAL_TABLES
from hrdfund.ops import backup
from tests.conftest import (
    SESSION_KEYS,
    empty_schema,
    make_config,
    missing_infrastructure,
    other_app,
    pg_database_beside,
)
from tests.pdfs import make_pdf
from tests.single_chain import BEFORE_CHAINS, write_one_chain

PDF = make_pdf("A lawyer's letter about the detention")


def _upload(name):
    """The PDF as an upload cleaned and ready to store."""
    return CleanUpload(PDF, "application/pdf", name)


@pytest.fixture
def pg_tools(backend):
    """pg_dump and pg_restore, which a PostgreSQL backup needs."""
    if backend == "postgresql":
        for tool in ("pg_dump", "pg_restore"):
            if shutil.which(tool) is None:
                missing_infrastructure(f"{tool} is not installed (apt-get install postgresql)")


@pytest.fixture
def stamped(app, backend):
    """The source database carries an Alembic revision, as a migrated one does."""
    flask_migrate.stamp()
    yield next(iter(db.session.scalars(sa.text("SELECT version_num FROM alembic_version"))))
    if backend == "postgresql":
        db.session.remove()
        with db.engine.begin() as conn:  # the app fixture empties the models' tables only
            conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
def world(app, runner, stamped, pg_tools):
    """The demo world at a small scale (more than a thousand rows), with one stored document."""
    result = runner.invoke(args=["hrdfund", "demo-data", "--scale", "50"])
    assert result.exit_code == 0, result.output
    manager = db.session.scalars(sa.select(User).where(User.role == Role.MANAGER)).first()
    case = db.session.scalars(sa.select(Application).order_by(Application.id)).first()
    document = store_document(_upload("letter.pdf"), case, DocumentKind.EVIDENCE, manager)
    db.session.commit()
    return {"document": document.id, "revision": stamped}


@pytest.fixture
def small_world(app, runner, make_user, pg_tools):
    """A fund, a few accounts and one stored document: enough for the refusals."""
    finance = make_user("finance")
    store_document(_upload("proof.pdf"), None, DocumentKind.PROOF_OF_PAYMENT, finance)
    db.session.commit()


@pytest.fixture
def empty_target(backend, tmp_path):
    """A factory of restore targets: the config of an app on an empty database of the
    backend's dialect, with an instance folder of its own and the same keys. On PostgreSQL
    every call empties the one restore database (the test database's name with `_restore`
    added) again, and it is left empty afterwards: dropping a database waits for a
    checkpoint, which costs minutes on a busy machine."""
    counter = itertools.count(1)
    state = {}

    def make():
        number = next(counter)
        instance = tmp_path / f"restored-{number}"
        if backend == "sqlite":
            return make_config(f"sqlite:///{tmp_path / f'restored-{number}.sqlite3'}", instance)
        if "url" not in state:
            state["url"], _created = pg_database_beside("_restore")
        empty_schema(state["url"])
        return make_config(state["url"].render_as_string(hide_password=False), instance)

    yield make
    if "url" in state:
        empty_schema(state["url"])


def _every_row():
    """Every table of the current app's database, every column, ordered by primary key."""
    db.session.remove()
    rows = {}
    with db.engine.connect() as conn:
        inspector = sa.inspect(conn)
        quote = conn.dialect.identifier_preparer.quote
        for name in inspector.get_table_names():
            order = inspector.get_pk_constraint(name)["constrained_columns"] or [
                column["name"] for column in inspector.get_columns(name)
            ]
            query = f"SELECT * FROM {quote(name)} ORDER BY {', '.join(map(quote, order))}"
            rows[name] = [tuple(row) for row in conn.execute(sa.text(query))]
    return rows


def _listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _invoke(application, *args):
    return application.test_cli_runner().invoke(args=["hrdfund", *args])


def _edited(archive, out, edit_manifest=None, edit_member=None):
    """A copy of ``archive`` with its manifest, or one member's bytes, edited."""
    with tarfile.open(archive) as source, tarfile.open(out, "w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == backup.MANIFEST and edit_manifest:
                manifest = json.loads(data)
                edit_manifest(manifest)
                data = json.dumps(manifest).encode()
            elif edit_member and edit_member[0] == member.name:
                data = edit_member[1](data)
            info = copy.copy(member)
            info.size = len(data)
            target.addfile(info, io.BytesIO(data))
    return out


def test_backup_then_restore_gives_back_every_row_and_document(
    app, runner, world, backend, tmp_path, empty_target
):
    source_rows = _every_row()
    assert len(source_rows) == len(db.metadata.tables) + 1  # and alembic_version
    assert sum(map(len, source_rows.values())) > 1000
    assert source_rows["disbursements"] and source_rows["documents"]
    heads = audit.heads()
    assert len(heads) >= 2, "the demo fund's chain and the instance's"
    recorded = [f"--head {chain}:{seq}:{digest}" for chain, (seq, digest) in heads.items()]

    archive = tmp_path / "backups" / "hrdfund.tar"
    archive.parent.mkdir()
    result = runner.invoke(args=["hrdfund", "backup", "--out", str(archive)])
    assert result.exit_code == 0, result.output
    assert "The keys are not in the backup" in result.output
    assert f"{len(heads)} audit chains" in result.output
    assert f"Audit heads: {' '.join(recorded)}" in result.output
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert _listing(archive.parent) == ["hrdfund.tar"], "no temporary file is left behind"

    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest["format_version"] == 1 and manifest["dialect"] == backend
    assert manifest["alembic_revision"] == world["revision"]
    assert manifest["tables"] == {name: len(rows) for name, rows in source_rows.items()}
    assert manifest["audit_heads"] == {
        str(chain): {"seq": seq, "hash": digest} for chain, (seq, digest) in heads.items()
    }
    assert manifest["created_at"]
    stored = db.session.get(Document, world["document"]).storage_name
    # PostgreSQL keeps documents in the database: they travel in its dump.
    files = [stored] if backend == "sqlite" else []
    assert list(manifest["documents"]) == files
    assert manifest["documents_in_database"] == (0 if files else 1)
    assert sorted(names) == sorted(
        ["manifest.json", backup.DATABASE_MEMBERS[backend], *(f"documents/{f}" for f in files)]
    )
    body = archive.read_bytes()
    for key in SESSION_KEYS.values():
        assert key.encode() not in body and base64.b64decode(key) not in body, "no key inside"

    target = empty_target()
    with other_app(target) as restored:
        db.create_all()  # a database with tables but no rows counts as empty
        db.session.remove()
        result = _invoke(restored, "restore", str(archive))
        assert result.exit_code == 0, result.output
        assert "OK: every table's row count and every audit chain's head match" in result.output
        assert f"flask hrdfund check {' '.join(recorded)}`" in result.output

        assert _every_row() == source_rows
        document = db.session.get(Document, world["document"])
        assert read_document(document) == PDF
        folder = os.path.join(restored.instance_path, "documents")
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert _listing(folder) == files
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) == 0o600

        check = _invoke(restored, "check", *" ".join(recorded).split())
        assert check.exit_code == 0, check.output
        if backend == "postgresql":
            _final_rows_are_enforced()
        # The restored database takes new rows: its sequences and chain go on.
        assert _invoke(restored, "create-fund", "After the restore").exit_code == 0
        assert _invoke(restored, "check").exit_code == 0


def _final_rows_are_enforced():
    triggers = set(db.session.scalars(sa.text("SELECT tgname FROM pg_trigger")))
    assert {f"{table}_rows_are_final" for table in FINAL_TABLES} <= triggers
    for statement in (
        "UPDATE disbursements SET paid_on = paid_on + 1 "
        "WHERE id = (SELECT min(id) FROM disbursements)",
        "DELETE FROM allocations WHERE id = (SELECT min(id) FROM allocations)",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="never edited or deleted"):
            db.session.execute(sa.text(statement))
        db.session.rollback()


def test_restore_refuses_anything_but_an_empty_target_and_changes_nothing(
    app, runner, small_world, backend, tmp_path, empty_target
):
    archive = tmp_path / "hrdfund.tar"
    assert runner.invoke(args=["hrdfund", "backup", "--out", str(archive)]).exit_code == 0
    documents = os.path.join(app.instance_path, "documents")
    before, files = _every_row(), _listing(documents)

    # Into the database the backup came from, which holds data.
    result = runner.invoke(args=["hrdfund", "restore", str(archive)])
    assert result.exit_code == 1
    assert "the configured database is not empty" in result.output
    assert "nothing was changed" in result.output
    assert _every_row() == before and _listing(documents) == files

    target = empty_target()
    other = "postgresql" if backend == "sqlite" else "sqlite"
    refusals = {
        # An instance that already holds documents.
        "already holds files": (archive, True),
        # An archive of the other dialect.
        "restore it into a": (
            _edited(archive, tmp_path / "other.tar", lambda m: m.update(dialect=other)),
            False,
        ),
        # A database file damaged or altered after the backup.
        "damaged or was altered": (
            _edited(
                archive,
                tmp_path / "damaged.tar",
                edit_member=(backup.DATABASE_MEMBERS[backend], lambda data: data[:-1] + b"!"),
            ),
            False,
        ),
    }
    with other_app(target) as restored:
        folder = os.path.join(restored.instance_path, "documents")
        for message, (path, with_document) in refusals.items():
            if with_document:
                os.makedirs(folder, mode=0o700)
                with open(os.path.join(folder, "left-over"), "wb") as fh:
                    fh.write(b"x")
            result = _invoke(restored, "restore", str(path))
            assert result.exit_code == 1, result.output
            assert message in result.output, result.output
            assert sa.inspect(db.engine).get_table_names() == [], "the database is untouched"
            assert _listing(folder) == (["left-over"] if with_document else [])
            assert _listing(restored.instance_path) == (["documents"] if with_document else [])
            shutil.rmtree(folder, ignore_errors=True)


def test_restore_reports_an_archive_that_differs_from_its_manifest(
    app, runner, small_world, tmp_path, empty_target
):
    archive = tmp_path / "hrdfund.tar"
    assert runner.invoke(args=["hrdfund", "backup", "--out", str(archive)]).exit_code == 0
    funds = db.session.scalar(sa.text("SELECT count(*) FROM funds"))

    def tamper(manifest):
        manifest["tables"]["funds"] += 1
        for head in manifest["audit_heads"].values():
            head["seq"] += 5

    tampered = _edited(archive, tmp_path / "tampered.tar", tamper)
    with other_app(empty_target()) as restored:
        result = _invoke(restored, "restore", str(tampered))
        assert result.exit_code == 1
        assert f"MISMATCH: table funds holds {funds} rows, the manifest says {funds + 1}" in (
            result.output
        )
        assert "MISMATCH: audit head of chain" in result.output
        assert "do not use it" in result.output
        assert "OK:" not in result.output


def test_an_archive_from_when_there_was_one_chain_restores_and_checks(
    empty_app, backend, pg_tools, tmp_path, empty_target
):
    """A backup of a database from before each fund had an audit chain, its manifest
    naming one head, restores; after `flask db upgrade` that head is the instance chain's,
    and `check` verifies the old entries against it."""
    flask_migrate.upgrade(revision=BEFORE_CHAINS)
    seq, digest = write_one_chain(empty_app.extensions["hrdfund_audit_key"], 3)
    archive = tmp_path / "before.tar"
    result = _invoke(empty_app, "backup", "--out", str(archive))
    assert result.exit_code == 0, result.output
    assert f"Audit heads: --head 0:{seq}:{digest}" in result.output

    def as_written_then(manifest):
        del manifest["audit_heads"]
        manifest["audit_head"] = {"seq": seq, "hash": digest}

    old = _edited(archive, tmp_path / "old.tar", as_written_then)
    with other_app(empty_target()) as restored:
        result = _invoke(restored, "restore", str(old))
        assert result.exit_code == 0, result.output
        assert f"`flask hrdfund check --head 0:{seq}:{digest}`" in result.output
        flask_migrate.upgrade()
        check = _invoke(restored, "check", "--head", f"0:{seq}:{digest}")
        assert check.exit_code == 0, check.output
        assert "The instance's audit chain: verified up to entry 3." in check.output
        db.session.remove()


def test_a_document_emptied_by_retention_is_left_out(
    app, runner, small_world, tmp_path, empty_target
):
    """A proof of payment keeps its row after a purge, without its file: the backup says
    so and the restore is whole."""
    [(document_id, name)] = db.session.execute(sa.select(Document.id, Document.storage_name))
    # Emptied as retention empties it: its file, or its pieces in the database, gone.
    delete_document_file(db.session.get(Document, document_id))
    db.session.commit()
    archive = tmp_path / "hrdfund.tar"
    result = runner.invoke(args=["hrdfund", "backup", "--out", str(archive)])
    assert result.exit_code == 0, result.output
    assert "without a file to copy: 1." in result.output
    with other_app(empty_target()) as restored:
        result = _invoke(restored, "restore", str(archive))
        assert result.exit_code == 0, result.output
        assert db.session.scalar(sa.select(Document.storage_name)) == name


def test_a_write_during_the_backup_stays_out_of_it(
    app, runner, small_world, backend, tmp_path, monkeypatch, empty_target
):
    """The archive and its manifest are one snapshot while the app goes on: on SQLite no
    writer gets in while the file is copied; on PostgreSQL pg_dump dumps the snapshot the
    manifest was counted in, so a payment committed meanwhile is in neither."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    seen = []
    if backend == "sqlite":
        real = backup._copy_sqlite

        def during(*args):
            writer = sqlite3.connect(sa.engine.make_url(uri).database, timeout=0.2)
            writer.isolation_level = None
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                writer.execute("BEGIN IMMEDIATE")
            writer.close()
            seen.append("held off")
            return real(*args)

        monkeypatch.setattr(backup, "_copy_sqlite", during)
    else:
        real = backup._pg_dump

        def during(*args):
            engine = sa.create_engine(uri)
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO funds (uid, name, categories, countries, languages,"
                        " created_at) VALUES ('fundwrittenduring001', :name, '[]', '[]', '[]',"
                        " now())"
                    ),
                    {"name": "Written during the backup"},
                )
            engine.dispose()
            seen.append("committed")
            return real(*args)

        monkeypatch.setattr(backup, "_pg_dump", during)

    archive = tmp_path / "hrdfund.tar"
    result = runner.invoke(args=["hrdfund", "backup", "--out", str(archive)])
    assert result.exit_code == 0, result.output
    assert seen
    with other_app(empty_target()) as restored:
        result = _invoke(restored, "restore", str(archive))
        assert result.exit_code == 0, result.output
        names = set(db.session.scalars(sa.text("SELECT name FROM funds")))
        assert "Written during the backup" not in names and names


@pytest.mark.parametrize("backend", ["postgresql"])
def test_pg_tools_get_the_password_in_the_environment_only(
    app, runner, backend, tmp_path, monkeypatch, pg_tools
):
    calls = []
    real_run = subprocess.run

    def spy(command, **kwargs):
        calls.append((command, kwargs["env"]))
        return real_run(command, **kwargs)

    monkeypatch.setattr(backup.subprocess, "run", spy)
    archive = tmp_path / "hrdfund.tar"
    result = runner.invoke(args=["hrdfund", "backup", "--out", str(archive)])
    assert result.exit_code == 0, result.output
    password = sa.engine.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).password
    [(command, env)] = calls
    assert os.path.basename(command[0]) == "pg_dump"
    assert "--no-owner" in command and "--format=custom" in command
    [conninfo] = [part for part in command if part.startswith("--dbname=")]
    assert "password" not in conninfo and f":{password}@" not in conninfo
    assert env["PGPASSWORD"] == password

    # Without pg_dump the command says what to install.
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    result = runner.invoke(args=["hrdfund", "backup", "--out", str(tmp_path / "again.tar")])
    assert result.exit_code == 1
    assert "pg_dump was not found" in result.output
    assert not (tmp_path / "again.tar").exists()
