"""Moving stored documents from the instance's folder into the database, so that every app
server on one PostgreSQL serves them (``flask hrdfund move-documents``).

Each file is decrypted (which checks it), written into the database as encrypted pieces
and committed; the pieces are then read back and compared with the file before the file
is overwritten with zeros and removed. Stopped at any point, a run leaves each document
either in its file, or in the database with its file still there (the next run checks
it again and removes the file), or in the database alone: run it again to finish.
"""

import hashlib
import os
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from .. import audit
from ..cases import documents
from ..cases.models import Document
from ..core.columns import cipher
from ..core.crypto import DecryptionError
from ..core.extensions import db

BATCH = 200


class MoveError(Exception):
    """The documents cannot be moved; the message says why in plain words."""


@dataclass
class MoveResult:
    #: Files written into the database and removed.
    moved: int = 0
    #: Files already in the database (an earlier run stopped), checked and removed.
    finished: int = 0
    #: Files that did not decrypt, or whose copy in the database differs: left as they are.
    unreadable: int = 0
    #: Documents with no file left in the folder.
    in_database: int = 0


def move_documents():
    """Move every document file of the folder into the database; return the counts."""
    if not documents.in_database():
        raise MoveError(
            "documents are kept in the folder with this database: set "
            "HRDFUND_DOCUMENT_STORAGE=database (PostgreSQL keeps them there unset)"
        )
    folder = os.path.join(current_app.instance_path, "documents")
    result = MoveResult()
    last_id = 0
    while True:
        batch = db.session.scalars(
            sa.select(Document).where(Document.id > last_id).order_by(Document.id).limit(BATCH)
        ).all()
        if not batch:
            break
        last_id = batch[-1].id
        for document in batch:
            _move_one(document, os.path.join(folder, document.storage_name), result)
        db.session.expunge_all()
    audit.record(
        "documents.moved",
        object_type="documents",
        object_id="database",
        moved=result.moved,
        finished=result.finished,
        unreadable=result.unreadable,
    )
    db.session.commit()
    return result


def _move_one(document, path, result):
    if not os.path.isfile(path):
        result.in_database += 1
        db.session.rollback()
        return
    with open(path, "rb") as fh:
        blob = fh.read()
    try:
        plain = cipher().decrypt_bytes(blob, documents.file_aad(document))
    except DecryptionError:
        result.unreadable += 1
        db.session.rollback()
        return
    del blob
    already = documents.has_chunks(document)
    if not already:
        documents.write_chunks(document, documents.pieces(plain))
        db.session.commit()
    digest = hashlib.sha256(plain).digest()
    del plain
    try:
        stored = hashlib.sha256()
        for piece in documents.iter_document(document):
            stored.update(piece)
        same = stored.digest() == digest
    except DecryptionError:
        same = False
    db.session.rollback()
    if not same:
        result.unreadable += 1
        return
    documents.wipe_file(path)
    if already:
        result.finished += 1
    else:
        result.moved += 1
