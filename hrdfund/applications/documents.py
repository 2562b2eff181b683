"""Uploaded documents: checked by content, images stripped of metadata, encrypted at rest
under random names, readable only through the case's access rule."""

import io
import os
import re
import secrets
import unicodedata

from flask import current_app
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import audit
from ..columns import cipher
from ..extensions import db
from .models import Document

#: Content types accepted, recognised by their first bytes, never by name.
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
MAX_PIXELS = 40_000_000
NAME_MAX = 120


class DocumentError(ValueError):
    """A file the fund cannot accept; the message tells the user why in plain words."""


def max_bytes():
    return current_app.config["HRDFUND_MAX_DOCUMENT_BYTES"]


def _folder():
    path = os.path.join(current_app.instance_path, "documents")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def sniff(data):
    """The content type of ``data`` from its first bytes, or None when not accepted."""
    for signature, content_type in SIGNATURES:
        if data.startswith(signature):
            return content_type
    return None


def _strip_image(data, content_type):
    """Re-encode an image so EXIF, GPS and any other metadata are left behind."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise DocumentError(_l("This image is too large. Please send a smaller one."))
            clean = ImageOps.exif_transpose(image)
            if content_type == "image/jpeg" and clean.mode not in ("RGB", "L"):
                clean = clean.convert("RGB")
            # Pillow writes some of info back on save (a JPEG's comment, a PNG's ICC
            # profile); keep only transparency, which is part of the picture.
            clean.info = {k: v for k, v in clean.info.items() if k == "transparency"}
            out = io.BytesIO()
            clean.save(out, format="JPEG" if content_type == "image/jpeg" else "PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, ValueError) as exc:
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(
            _l("This image could not be read. Please send a PDF, PNG or JPEG file.")
        ) from exc


def display_name(filename, content_type):
    """A harmless name to show: no folders, no control characters, a fitting extension."""
    base = re.split(r"[\\/]", filename or "")[-1]
    # Category C covers C0/C1 controls and invisible format characters such as U+202E,
    # which can make a name read backwards; Z[lp] are line and paragraph separators.
    base = "".join(
        ch
        for ch in base
        if unicodedata.category(ch)[0] != "C" and unicodedata.category(ch) not in ("Zl", "Zp")
    )
    base = re.sub(r"[<>\"'`]", "", base).strip(" .")
    stem = os.path.splitext(base)[0][: NAME_MAX - 5] or "document"
    return stem + EXTENSIONS[content_type]


def store_document(stream, filename, application, kind, actor):
    """Check, clean, encrypt and store an upload for ``application`` (None for a proof of
    payment, which belongs to the payment and is shown to finance only)."""
    data = stream.read(max_bytes() + 1)
    if len(data) > max_bytes():
        raise DocumentError(
            _l(
                "This file is larger than %(mb)d MB. Please send a smaller file.",
                mb=max_bytes() // (1024 * 1024),
            )
        )
    if not data:
        raise DocumentError(_l("This file is empty."))
    content_type = sniff(data)
    if content_type is None:
        raise DocumentError(_l("Only PDF, PNG and JPEG files are accepted."))
    if content_type.startswith("image/"):
        data = _strip_image(data, content_type)
    document = Document(
        application_id=application.id if application is not None else None,
        kind=kind,
        content_type=content_type,
        size_bytes=len(data),
        uploaded_by_id=actor.id,
        storage_name=secrets.token_hex(16),
    )
    document.filename = display_name(filename, content_type)
    path = os.path.join(_folder(), document.storage_name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        # A partial file (disk full) or a failed insert must not leave ciphertext behind.
        with os.fdopen(fd, "wb") as fh:
            fh.write(cipher().encrypt_bytes(data, _aad(document)))
        db.session.add(document)
        db.session.flush()
        audit.record(
            "document.uploaded",
            document,
            actor=actor,
            case=application.uid if application is not None else None,
            kind=kind.value,
            size=len(data),
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
