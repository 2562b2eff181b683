"""Stored documents: a cleaned upload (``cleaning.clean_upload``) encrypted at rest under a
random name, readable only through the case's access rule, re-encrypted when keys rotate
and overwritten when retention deletes it.
"""

import io
import os
import secrets
from dataclasses import dataclass

from flask import current_app, send_file

from .. import audit
from ..core.columns import cipher
from ..core.extensions import db
from .models import Document


class DocumentError(ValueError):
    """A file the fund cannot accept; the message tells the user why in plain words."""


@dataclass(frozen=True)
class CleanUpload:
    """An upload checked and cleaned, ready to store: its bytes, type and display name."""

    data: bytes
    content_type: str
    filename: str


def max_bytes():
    return current_app.config["HRDFUND_MAX_DOCUMENT_BYTES"]


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
    path = os.path.join(_folder(), document.storage_name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # A partial file (disk full) or a failed insert must not leave ciphertext behind.
        with os.fdopen(fd, "wb") as fh:
            fh.write(cipher().encrypt_bytes(upload.data, _aad(document)))
        db.session.add(document)
        db.session.flush()
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
    except Exception:
        os.unlink(path)
        raise
    return document


def _aad(document):
    return f"documents\x1fcontent\x1f{document.uid}".encode()


def read_document(document):
    """The decrypted bytes of a stored document."""
    with open(os.path.join(_folder(), document.storage_name), "rb") as fh:
        return cipher().decrypt_bytes(fh.read(), _aad(document))


def send_document(document):
    """The response that hands a stored document over as an attachment, by its content
    type and its stored name."""
    return send_file(
        io.BytesIO(read_document(document)),
        mimetype=document.content_type,
        as_attachment=True,
        download_name=document.filename,
    )


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
    fresh = cipher().reencrypt_bytes(blob, _aad(document))
    temporary = path + ".rotating"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(fresh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temporary, path)
    return True


def delete_document_file(document):
    """Overwrite a stored file with zeros, then remove it (retention)."""
    path = os.path.join(_folder(), document.storage_name)
    if os.path.exists(path):
        size = os.path.getsize(path)
        with open(path, "r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
        os.unlink(path)
