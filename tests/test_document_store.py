"""Documents kept in the database (PostgreSQL's default; set here on SQLite too): stored in
encrypted pieces that read back only whole and in order, streamed a piece at a time,
re-encrypted piece by piece when keys rotate, deleted by retention, moved in from the
folder by `flask hrdfund move-documents`, carried by a backup and brought back by restore.
"""

import hashlib
import json
import os
import tracemalloc
from pathlib import Path

import pytest
import sqlalchemy as sa

from hrdfund import create_app
from hrdfund.audit.models import AuditEvent
from hrdfund.cases import documents
from hrdfund.cases.documents import (
    CHUNK_BYTES,
    CleanUpload,
    delete_document_file,
    read_document,
    send_document,
    store_document,
)
from hrdfund.cases.models import Document, DocumentChunk, DocumentKind
from hrdfund.core.columns import cipher
from hrdfund.core.crypto import DecryptionError, generate_key
from hrdfund.core.extensions import db
from hrdfund.ops.rotation import left_under_old_keys
from tests.conftest import other_app


@pytest.fixture
def app_config(app_config):
    """Documents in the database, whatever the backend."""
    return {**app_config, "HRDFUND_DOCUMENT_STORAGE": "database"}


def _content(size, seed=b"proof"):
    """``size`` bytes that differ all along (a piece swapped or dropped shows)."""
    out, block = bytearray(), seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


def _store(user, data, name="proof.pdf"):
    document = store_document(
        CleanUpload(data, "application/pdf", name), None, DocumentKind.PROOF_OF_PAYMENT, user
    )
    db.session.commit()
    return document


def _chunks(document_id):
    return db.session.execute(
        sa.select(DocumentChunk.seq, DocumentChunk.data)
        .where(DocumentChunk.document_id == document_id)
        .order_by(DocumentChunk.seq)
    ).all()


def _set_chunk(document_id, seq, data):
    db.session.execute(
        sa.update(DocumentChunk)
        .where(DocumentChunk.document_id == document_id, DocumentChunk.seq == seq)
        .values(data=data)
    )
    db.session.commit()


def test_the_largest_document_streams_back_a_piece_at_a_time(app, make_user):
    size = app.config["HRDFUND_MAX_DOCUMENT_BYTES"]
    data = _content(size)
    document = _store(make_user("finance"), data)
    chunks = _chunks(document.id)
    assert len(chunks) == -(-size // CHUNK_BYTES)
    assert not Path(app.instance_path, "documents", document.storage_name).exists()
    assert all(b"proof" not in blob for _seq, blob in chunks)
    del chunks
    digest = hashlib.sha256()
    with app.test_request_context():
        tracemalloc.start()
        try:
            response = send_document(db.session.get(Document, document.id))
            assert response.content_length == size
            assert response.headers["Content-Disposition"] == "attachment; filename=proof.pdf"
            for piece in response.response:
                digest.update(piece)
            response.close()
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert digest.digest() == hashlib.sha256(data).digest()
    # The whole document is 8 MiB; a download holds a few pieces of 64 KiB at most.
    assert peak < 1024 * 1024, f"a download held {peak} bytes"


def test_pieces_reordered_swapped_dropped_or_cut_off_do_not_read(app, make_user):
    user = make_user("finance")
    first = _store(user, _content(3 * CHUNK_BYTES + 10, b"a"))
    second = _store(user, _content(3 * CHUNK_BYTES + 10, b"b"), "other.pdf")
    assert read_document(first) == _content(3 * CHUNK_BYTES + 10, b"a")
    a, b = _chunks(first.id), _chunks(second.id)

    def unreadable():
        with pytest.raises(DecryptionError):
            read_document(db.session.get(Document, first.id))

    # Reordered: the first two pieces change places.
    _set_chunk(first.id, 0, a[1].data)
    _set_chunk(first.id, 1, a[0].data)
    unreadable()
    _set_chunk(first.id, 0, a[0].data)
    _set_chunk(first.id, 1, a[1].data)
    # Swapped in from another document, at the same place.
    _set_chunk(first.id, 2, b[2].data)
    unreadable()
    _set_chunk(first.id, 2, a[2].data)
    # Cut off: the last piece gone, so the one before it ends the document.
    db.session.execute(
        sa.delete(DocumentChunk).where(
            DocumentChunk.document_id == first.id, DocumentChunk.seq == 3
        )
    )
    db.session.commit()
    unreadable()
    # A piece dropped from the middle.
    db.session.execute(sa.insert(DocumentChunk).values(document_id=first.id, seq=3, data=a[3].data))
    db.session.execute(
        sa.delete(DocumentChunk).where(
            DocumentChunk.document_id == first.id, DocumentChunk.seq == 1
        )
    )
    db.session.commit()
    unreadable()
    assert read_document(db.session.get(Document, second.id)) == _content(
        3 * CHUNK_BYTES + 10, b"b"
    )


def test_a_download_checks_every_piece_before_it_sends_or_records_anything(app, make_user):
    """A piece past the first damaged: the download stops before its first byte, and
    before its audit entry, rather than sending the pieces before and then breaking off."""
    data = _content(3 * CHUNK_BYTES + 10)
    document = _store(make_user("finance"), data)
    blob = bytes(_chunks(document.id)[2].data)
    _set_chunk(document.id, 2, blob[:-1] + bytes([blob[-1] ^ 1]))
    recorded = []
    with app.test_request_context():
        with pytest.raises(documents.DocumentDamaged):
            send_document(db.session.get(Document, document.id), record=lambda: recorded.append(1))
    assert recorded == []
    _set_chunk(document.id, 2, blob)
    with app.test_request_context():
        response = send_document(
            db.session.get(Document, document.id), record=lambda: recorded.append(1)
        )
        assert b"".join(response.response) == data
        response.close()
    assert recorded == [1]


def test_rotation_re_encrypts_every_piece_under_the_new_key(app, app_config, make_user):
    data = _content(2 * CHUNK_BYTES + 1)
    document_id = _store(make_user("finance"), data).id
    old, new = app_config["HRDFUND_ENCRYPTION_KEY"], generate_key()
    db.session.remove()
    with other_app(
        dict(app_config, HRDFUND_ENCRYPTION_KEY=new, HRDFUND_ENCRYPTION_OLD_KEYS=old)
    ) as rotating:
        assert left_under_old_keys() >= 3
        out = rotating.test_cli_runner().invoke(args=["hrdfund", "rotate-keys"])
        assert out.exit_code == 0, out.output
        assert "Documents: 1 re-encrypted" in out.output
    with other_app(dict(app_config, HRDFUND_ENCRYPTION_KEY=new)):
        chunks = _chunks(document_id)
        assert len(chunks) == 3
        assert {bytes(blob)[1:5] for _seq, blob in chunks} == {cipher().current_id}
        assert read_document(db.session.get(Document, document_id)) == data
        assert left_under_old_keys() == 0


def test_retention_deletes_the_pieces(app, make_user):
    document = _store(make_user("finance"), _content(CHUNK_BYTES + 1))
    delete_document_file(document)
    db.session.commit()
    assert _chunks(document.id) == []
    with pytest.raises(FileNotFoundError):
        read_document(document)


def test_files_move_into_the_database_checked_once_and_safely_again(app, app_config, make_user):
    user = make_user("finance")
    folder = Path(app.instance_path, "documents")
    app.config["HRDFUND_DOCUMENT_STORAGE"] = "folder"
    contents = [_content(CHUNK_BYTES * n + 7, bytes([n])) for n in range(4)]
    stored = [_store(user, data, f"f{n}.pdf") for n, data in enumerate(contents)]
    ids = [document.id for document in stored]
    names = [document.storage_name for document in stored]
    assert sorted(p.name for p in folder.iterdir()) == sorted(d.storage_name for d in stored)
    assert _chunks(ids[0]) == []
    # An earlier run stopped after the second document was written in, before its file
    # was removed; the fourth file was damaged on disk.
    app.config["HRDFUND_DOCUMENT_STORAGE"] = "database"
    documents.write_chunks(stored[1], documents.pieces(contents[1]))
    db.session.commit()
    damaged = folder / stored[3].storage_name
    kept = damaged.read_bytes()
    damaged.write_bytes(kept[:-1] + bytes([kept[-1] ^ 0xFF]))  # its last byte, whatever it was
    runner = app.test_cli_runner()

    out = runner.invoke(args=["hrdfund", "move-documents"])
    assert out.exit_code == 1, out.output
    assert "Moved into the database: 2 documents; finished from an earlier run: 1" in out.output
    assert "UNREADABLE: 1 files" in out.output
    assert [p.name for p in folder.iterdir()] == [names[3]]
    assert _chunks(ids[3]) == []
    for document_id, data in zip(ids[:3], contents[:3], strict=True):
        assert read_document(db.session.get(Document, document_id)) == data

    again = runner.invoke(args=["hrdfund", "move-documents"])
    assert "Moved into the database: 0 documents; finished from an earlier run: 0; " in (
        again.output
    )
    assert "already without a file: 3" in again.output
    assert again.exit_code == 1  # the damaged file is still there, and said so
    entries = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "documents.moved").order_by(AuditEvent.id)
    ).all()
    assert [json.loads(e.payload) for e in entries] == [
        {"moved": 2, "finished": 1, "unreadable": 1},
        {"moved": 0, "finished": 0, "unreadable": 1},
    ]


def test_moving_is_refused_where_documents_stay_in_the_folder(app):
    app.config["HRDFUND_DOCUMENT_STORAGE"] = "folder"
    out = app.test_cli_runner().invoke(args=["hrdfund", "move-documents"])
    assert out.exit_code == 1
    assert "documents are kept in the folder" in out.output


def test_a_download_reads_no_file_once_documents_moved(app, make_user):
    """The folder may be gone (another server's machine): documents still read."""
    document = _store(make_user("finance"), _content(100))
    os.makedirs(Path(app.instance_path, "documents"), exist_ok=True)
    os.rmdir(Path(app.instance_path, "documents"))
    assert read_document(db.session.get(Document, document.id)) == _content(100)


def test_a_storage_setting_that_names_none_stops_the_start(app_config):
    with pytest.raises(ValueError, match="HRDFUND_DOCUMENT_STORAGE"):
        create_app({**app_config, "HRDFUND_DOCUMENT_STORAGE": "s3"})
