"""Key rotation: every encrypted field and stored document, encrypted again under the
current key (SECURITY.md, promise 21).

To rotate: put a new key in ``HRDFUND_ENCRYPTION_KEY``, move the old one to
``HRDFUND_ENCRYPTION_OLD_KEYS``, run ``flask hrdfund rotate-keys``, then remove the old key
once the command reports nothing left under it. The command works in batches, each
committed, and rewrites only what an older key wrote: run again after an interruption, it
picks up where it stopped. Blind indexes (defender matching, recovery codes, donors' grant
codes) are keyed apart from the encryption key and stay as they are.
"""

from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import audit
from ..cases.documents import reencrypt_chunk, reencrypt_document_file
from ..cases.models import Document, DocumentChunk
from ..core.columns import Encrypted, cipher
from ..core.crypto import DecryptionError, field_aad
from ..core.extensions import db

BATCH = 500
#: Stored pieces of documents (64 KiB each) re-encrypted per transaction.
CHUNK_BATCH = 64


@dataclass
class RotationResult:
    """What a rotation rewrote, per table and column, and what it could not read."""

    values: dict = field(default_factory=dict)
    documents: int = 0
    unreadable: dict = field(default_factory=dict)

    @property
    def total(self):
        return sum(self.values.values())


def encrypted_attributes():
    """(model, attribute) for every :class:`Encrypted` attribute of every mapped model,
    in a stable order."""
    found = []
    for mapper in db.Model.registry.mappers:
        model = mapper.class_
        for attribute in vars(model).values():
            if isinstance(attribute, Encrypted):
                found.append((model, attribute))
    return sorted(found, key=lambda pair: (pair[0].__tablename__, pair[1].name))


def _rotate_column(model, attribute, result):
    table = model.__table__
    storage = table.c[attribute.name]
    where = f"{model.__tablename__}.{attribute.name}"
    last_id = 0
    while True:
        rows = db.session.execute(
            sa.select(table.c.id, table.c.uid, storage)
            .where(table.c.id > last_id, storage.is_not(None))
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row_id, uid, blob in rows:
            if not cipher().needs_rotation(blob):
                continue
            aad = field_aad(model.__tablename__, attribute.name, uid)
            try:
                fresh = cipher().reencrypt_bytes(blob, aad)
            except DecryptionError:
                result.unreadable[where] = result.unreadable.get(where, 0) + 1
                continue
            # A Core UPDATE of the one column: ledger rows refuse ORM updates, and the
            # database lets a final row's encrypted columns change, nothing else.
            db.session.execute(
                sa.update(table).where(table.c.id == row_id).values({storage: fresh})
            )
            result.values[where] = result.values.get(where, 0) + 1
        db.session.commit()
        last_id = rows[-1][0]


def _rotate_documents(result):
    last_id = 0
    while True:
        documents = db.session.scalars(
            sa.select(Document).where(Document.id > last_id).order_by(Document.id).limit(BATCH)
        ).all()
        if not documents:
            return
        for document in documents:
            try:
                if reencrypt_document_file(document):
                    result.documents += 1
            except DecryptionError:
                result.unreadable["documents (files)"] = (
                    result.unreadable.get("documents (files)", 0) + 1
                )
        last_id = documents[-1].id
        db.session.expunge_all()


def _old_chunks():
    """The stored pieces an older key wrote: the key id is bytes 2 to 5 of a ciphertext."""
    return sa.func.substr(DocumentChunk.data, 2, 4) != cipher().current_id


def _rotate_chunks(result):
    """Documents kept in the database, a piece at a time, a batch of pieces per
    transaction; only the pieces' keys are listed up front, each piece read when its turn
    comes."""
    after = sa.tuple_(sa.literal(0), sa.literal(-1))
    rotated = set()
    while True:
        batch = db.session.execute(
            sa.select(DocumentChunk.document_id, DocumentChunk.seq, Document.uid)
            .join(Document, Document.id == DocumentChunk.document_id)
            .where(sa.tuple_(DocumentChunk.document_id, DocumentChunk.seq) > after, _old_chunks())
            .order_by(DocumentChunk.document_id, DocumentChunk.seq)
            .limit(CHUNK_BATCH)
        ).all()
        if not batch:
            break
        for document_id, seq, uid in batch:
            try:
                if reencrypt_chunk(document_id, uid, seq):
                    rotated.add(document_id)
            except DecryptionError:
                where = "documents (in the database)"
                result.unreadable[where] = result.unreadable.get(where, 0) + 1
        db.session.commit()
        after = sa.tuple_(sa.literal(batch[-1][0]), sa.literal(batch[-1][1]))
    result.documents += len(rotated)


def rotate_keys():
    """Encrypt again under the current key everything an older key wrote; return counts."""
    result = RotationResult()
    for model, attribute in encrypted_attributes():
        _rotate_column(model, attribute, result)
    _rotate_documents(result)
    _rotate_chunks(result)
    audit.record(
        "keys.rotated",
        object_type="keys",
        object_id=cipher().current_id.hex(),
        values=result.total,
        documents=result.documents,
        unreadable=sum(result.unreadable.values()),
    )
    db.session.commit()
    return result


def left_under_old_keys():
    """How many stored values and pieces of documents in the database are not under the
    current key."""
    left = db.session.scalar(
        sa.select(sa.func.count()).select_from(DocumentChunk).where(_old_chunks())
    )
    for model, attribute in encrypted_attributes():
        storage = model.__table__.c[attribute.name]
        blobs = db.session.scalars(sa.select(storage).where(storage.is_not(None)))
        left += sum(1 for blob in blobs if cipher().needs_rotation(blob))
    return left
