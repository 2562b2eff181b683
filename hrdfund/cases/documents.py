"""Stored documents: a cleaned upload (``cleaning.clean_upload``) encrypted at rest,
readable only through the case's access rule, re-encrypted when keys rotate and deleted
when retention removes it.

Where they are kept (``HRDFUND_DOCUMENT_STORAGE``, unset: by the database's dialect):

- ``database`` (PostgreSQL's default): in ``document_chunks``, the document cut in pieces
  of ``CHUNK_BYTES``, each piece its own AES-GCM message whose associated data binds the
  document's uid, the piece's number and whether it is the last. Every app server on the
  database serves every document, and no step holds more than one piece in memory: the
  pieces are written one statement each, and a download reads one piece per statement,
  each on a connection taken from the pool and given back at once (no transaction or
  lock is held while the browser takes its time).
- ``folder`` (SQLite's default): one encrypted file per document under a random name in
  the instance's ``documents`` folder, as one machine serves it.

A document is read from the database when it has pieces there, from the folder otherwise:
files written before the switch keep being served until ``flask hrdfund move-documents``
moves them in.
"""

import io
import os
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, send_file

from .. import audit
from ..core.columns import cipher
from ..core.crypto import DecryptionError
from ..core.extensions import db, read_by_default, restore_mode
from .models import Document, DocumentChunk

#: Plain bytes in one stored piece of a document kept in the database.
CHUNK_BYTES = 64 * 1024
STORAGES = ("database", "folder")


class DocumentError(ValueError):
    """A file the fund cannot accept; the message tells the user why in plain words."""


class DocumentDamaged(Exception):  # noqa: N818 (what the person is told: it is damaged)
    """What is stored of a document does not read back whole: a piece or the file damaged,
    swapped, cut off or missing. Found before anything of it is sent."""

    def __init__(self, uid, reason):
        super().__init__(uid)
        #: The document's uid, and why it does not read, in words with nothing of its own
        #: (a missing key, not a damaged piece, asks for the key to be configured again).
        self.uid, self.reason = uid, reason


@dataclass(frozen=True)
class CleanUpload:
    """An upload checked and cleaned, ready to store: its bytes, type and display name."""

    data: bytes
    content_type: str
    filename: str


def max_bytes():
    return current_app.config["HRDFUND_MAX_DOCUMENT_BYTES"]


def check_config(config):
    """Stop the start on a HRDFUND_DOCUMENT_STORAGE that names no storage."""
    setting = config.get("HRDFUND_DOCUMENT_STORAGE")
    if setting is not None and setting not in STORAGES:
        raise ValueError(f"HRDFUND_DOCUMENT_STORAGE is {setting!r}: set database or folder")


def in_database():
    """Whether new documents are kept in the database (``HRDFUND_DOCUMENT_STORAGE``; unset,
    on PostgreSQL only)."""
    setting = current_app.config.get("HRDFUND_DOCUMENT_STORAGE")
    if setting is None:
        return db.engine.dialect.name == "postgresql"
    return setting == "database"


def _folder():
    path = os.path.join(current_app.instance_path, "documents")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def store_document(upload, application, kind, actor, fund=None):
    """Encrypt and store a cleaned upload for ``application`` (None for a proof of
    payment, which belongs to the payment and is shown to finance only). The audit entry
    goes to the case's fund, or to ``fund`` when given (a document that arrived in a
    packet from a fund on another server is recorded by the fund that imported it)."""
    document = Document(
        application_id=application.id if application is not None else None,
        kind=kind,
        content_type=upload.content_type,
        size_bytes=len(upload.data),
        uploaded_by_id=actor.id,
        storage_name=secrets.token_hex(16),
    )
    document.filename = upload.filename
    if in_database():
        db.session.add(document)
        db.session.flush()
        write_chunks(document, pieces(upload.data))
        _audit_upload(document, upload, application, kind, actor, fund)
        return document
    path = os.path.join(_folder(), document.storage_name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # A partial file (disk full) or a failed insert must not leave ciphertext behind.
        with os.fdopen(fd, "wb") as fh:
            fh.write(cipher().encrypt_bytes(upload.data, file_aad(document)))
        db.session.add(document)
        db.session.flush()
        _audit_upload(document, upload, application, kind, actor, fund)
    except Exception:
        os.unlink(path)
        raise
    return document


def _audit_upload(document, upload, application, kind, actor, fund):
    audit.record(
        "document.uploaded",
        document,
        actor=actor,
        # A proof of payment is the fund's of the finance person paying.
        fund=fund
        if fund is not None
        else (application.fund_id if application is not None else actor.fund_id),
        case=application.uid if application is not None else None,
        kind=kind.value,
        size=len(upload.data),
    )


def file_aad(document):
    """What a document file's ciphertext is bound to: its document."""
    return f"documents\x1fcontent\x1f{document.uid}".encode()


def chunk_aad(uid, seq, last):
    """What a stored piece's ciphertext is bound to: its document, its place, and whether
    the document ends with it."""
    return f"documents\x1fchunk\x1f{uid}\x1f{seq}\x1f{'last' if last else 'more'}".encode()


def pieces(data):
    view = memoryview(data)
    return (view[start : start + CHUNK_BYTES] for start in range(0, len(view), CHUNK_BYTES))


def write_chunks(document, pieces):
    """Encrypt ``pieces`` (bytes-like, in order) into the document's stored pieces, one
    INSERT each, in the session's transaction. An empty document is one empty piece."""
    table = DocumentChunk.__table__
    seq, held = 0, None
    for piece in pieces:
        if held is not None:
            _insert_chunk(table, document, seq, held, last=False)
            seq += 1
        held = piece
    _insert_chunk(table, document, seq, b"" if held is None else held, last=True)


def _insert_chunk(table, document, seq, piece, last):
    blob = cipher().encrypt_bytes(bytes(piece), chunk_aad(document.uid, seq, last))
    db.session.execute(sa.insert(table).values(document_id=document.id, seq=seq, data=blob))


def has_chunks(document):
    """Whether ``document`` is kept in the database."""
    return bool(
        db.session.scalar(
            sa.select(sa.literal(1)).where(DocumentChunk.document_id == document.id).limit(1)
        )
    )


class _ChunkReader(io.RawIOBase):
    """A stored document's plain bytes, read piece by piece: each piece fetched by one
    statement on a connection of its own, checked and decrypted. Built from the engine and
    the cipher, not the request, so it reads on after the view has returned."""

    def __init__(self, engine, field_cipher, document_id, uid):
        super().__init__()
        self._engine, self._cipher = engine, field_cipher
        self._document_id, self._uid = document_id, uid
        self._seq, self._ended = 0, False
        self._piece, self._offset = b"", 0

    def readable(self):
        return True

    def _next_piece(self):
        table = DocumentChunk.__table__
        following = (
            sa.select(sa.literal(1))
            .where(table.c.document_id == self._document_id, table.c.seq == self._seq + 1)
            .exists()
        )
        token = read_by_default()  # a read: on SQLite no write lock either
        try:
            with self._engine.connect() as connection:
                row = connection.execute(
                    sa.select(table.c.data, following).where(
                        table.c.document_id == self._document_id, table.c.seq == self._seq
                    )
                ).first()
                connection.commit()  # a read, ended as extensions.end_read ends one
        finally:
            restore_mode(token)
        if row is None:
            raise DecryptionError("a stored piece of the document is missing")
        blob, more = row
        self._piece = self._cipher.decrypt_bytes(blob, chunk_aad(self._uid, self._seq, not more))
        self._offset = 0
        self._seq += 1
        self._ended = not more

    def check(self):
        """Read and check every piece to the end, keeping none (DecryptionError at the
        first that does not read)."""
        while not self._ended:
            self._next_piece()
        self._piece = b""

    def readinto(self, buffer):
        while self._offset >= len(self._piece):
            if self._ended:
                return 0
            self._next_piece()
        count = min(len(buffer), len(self._piece) - self._offset)
        buffer[:count] = self._piece[self._offset : self._offset + count]
        self._offset += count
        return count


def open_document(document, chunked=None):
    """A binary file object reading the decrypted bytes of a stored document: piece by
    piece from the database, or the folder's file decrypted whole. ``chunked``: whether
    the document is kept in the database, when the caller knows."""
    if has_chunks(document) if chunked is None else chunked:
        reader = _ChunkReader(db.engine, cipher(), document.id, document.uid)
        return io.BufferedReader(reader, buffer_size=CHUNK_BYTES)
    with open(os.path.join(_folder(), document.storage_name), "rb") as fh:
        return io.BytesIO(cipher().decrypt_bytes(fh.read(), file_aad(document)))


def iter_document(document):
    """The decrypted bytes of a stored document, a piece at a time."""
    with open_document(document) as fh:
        while piece := fh.read(CHUNK_BYTES):
            yield piece


def read_document(document):
    """The decrypted bytes of a stored document, whole (a packet carries them so)."""
    with open_document(document) as fh:
        return fh.read()


def send_document(document, record=None):
    """The response that hands a stored document over as an attachment, by its content
    type and its stored name; from the database it streams, a piece at a time.

    What is stored is checked whole first: every piece read and checked once (none kept),
    or the folder's file decrypted. One that does not read, or is missing, raises
    :class:`DocumentDamaged` before ``record`` (the download's audit entry) is called and
    before a byte is sent: the person is told, rather than given a file cut off partway.
    The pieces are then read again, one at a time, as the browser takes them."""
    chunked = has_chunks(document)
    try:
        if chunked:
            _ChunkReader(db.engine, cipher(), document.id, document.uid).check()
        handle = open_document(document, chunked)
    except DecryptionError as exc:
        raise DocumentDamaged(document.uid, str(exc)) from exc
    except FileNotFoundError as exc:
        raise DocumentDamaged(document.uid, "its file is missing") from exc
    if record is not None:
        record()
    response = send_file(
        handle,
        mimetype=document.content_type,
        as_attachment=True,
        download_name=document.filename,
        conditional=False,
        etag=False,
    )
    response.content_length = document.size_bytes
    return response


def reencrypt_document_file(document):
    """Encrypt a stored file again under the current key, when an older key wrote it.

    The new ciphertext goes to a temporary file that replaces the old one in one rename, so
    a crash leaves either file whole. Returns True when the file was rewritten; False when
    it was already under the current key, or is gone (purged)."""
    path = os.path.join(_folder(), document.storage_name)
    if not os.path.exists(path):
        return False
    with open(path, "rb") as fh:
        blob = fh.read()
    if not cipher().needs_rotation(blob):
        return False
    fresh = cipher().reencrypt_bytes(blob, file_aad(document))
    temporary = path + ".rotating"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(fresh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temporary, path)
    return True


def reencrypt_chunk(document_id, uid, seq):
    """Encrypt one stored piece again under the current key, when an older key wrote it;
    in the session's transaction. Returns True when it was rewritten."""
    table = DocumentChunk.__table__
    where = sa.and_(table.c.document_id == document_id, table.c.seq == seq)
    following = (
        sa.select(sa.literal(1))
        .where(table.c.document_id == document_id, table.c.seq == seq + 1)
        .exists()
    )
    row = db.session.execute(sa.select(table.c.data, following).where(where)).first()
    if row is None or not cipher().needs_rotation(row[0]):
        return False
    fresh = cipher().reencrypt_bytes(row[0], chunk_aad(uid, seq, not row[1]))
    db.session.execute(sa.update(table).where(where).values(data=fresh))
    return True


def delete_document_file(document):
    """Delete a stored document's pieces in the database (in the session's transaction),
    and overwrite its file with zeros, then remove it (retention). A document whose row
    was rolled back has its pieces rolled back with it; only its file is left to remove."""
    if sa.inspect(document).persistent:
        db.session.execute(
            sa.delete(DocumentChunk.__table__).where(
                DocumentChunk.__table__.c.document_id == document.id
            )
        )
    wipe_file(os.path.join(_folder(), document.storage_name))


def wipe_file(path):
    """Overwrite the file at ``path`` with zeros, then remove it; nothing when it is gone."""
    if os.path.exists(path):
        size = os.path.getsize(path)
        with open(path, "r+b") as fh:
            for start in range(0, size, CHUNK_BYTES):
                fh.write(b"\0" * min(CHUNK_BYTES, size - start))
            fh.flush()
            os.fsync(fh.fileno())
        os.unlink(path)
