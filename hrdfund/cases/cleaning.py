"""Uploads checked by content and cleaned of metadata before they are stored: images
re-encoded, PDFs rewritten without their document information, XMP, private application
data, article threads, web capture sources, layer names, scripts and attached files.

Cleaning is slow work on untrusted input, so it is bounded (bytes, pixels, pages, objects,
values, bytes decoded), done one file at a time in each process, and done with no
transaction open: a view reads what it needs inside ``reading()``, cleans the upload with
:func:`clean_upload`, then stores it with ``documents.store_document`` in its write
transaction.
"""

import io
import os
import re
import threading
import warnings

from flask import current_app
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps

from ..core.text import visible
from .documents import CleanUpload, DocumentError, max_bytes
from .pdfs import clean_pdf

#: Content types accepted, recognised by their first bytes, never by name.
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
#: The endings of the names of the files accepted, as people's files carry them.
NAMED_AS_ACCEPTED = (".pdf", ".png", ".jpg", ".jpeg")


NAME_MAX = 120


#: One upload is cleaned at a time in each process, so a burst of uploads cannot take
#: every core or gigabytes of memory; the others wait their turn.
_CLEANING = threading.Lock()


def sniff(data):
    """The content type of ``data`` from its first bytes, or None when not accepted."""
    for signature, content_type in SIGNATURES:
        if data.startswith(signature):
            return content_type
    return None


def _too_many_pixels():
    return DocumentError(
        _l(
            "This image is too large: it has more than %(mpx)d million pixels. "
            "Please send a smaller one.",
            mpx=current_app.config["HRDFUND_MAX_IMAGE_PIXELS"] // 1_000_000,
        )
    )


def _check_pixels(image):
    """Refuse a picture larger than the bound, from its header, before it is decoded."""
    if image.width * image.height > current_app.config["HRDFUND_MAX_IMAGE_PIXELS"]:
        raise _too_many_pixels()


def _strip_image(data, content_type):
    """Re-encode an image so EXIF, GPS and any other metadata are left behind."""
    # Pillow's own bound, at the same number: any size Pillow learns while decoding that
    # the header did not tell is refused too, and a warning past it is an error here.
    Image.MAX_IMAGE_PIXELS = current_app.config["HRDFUND_MAX_IMAGE_PIXELS"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                _check_pixels(image)
                clean = _upright(image)
                if content_type == "image/jpeg" and clean.mode not in ("RGB", "L"):
                    clean = clean.convert("RGB")
                # Pillow writes some of info back on save (a JPEG's comment, a PNG's ICC
                # profile); keep only transparency, which is part of the picture.
                clean.info = {k: v for k, v in clean.info.items() if k == "transparency"}
                out = io.BytesIO()
                clean.save(out, format="JPEG" if content_type == "image/jpeg" else "PNG")
                return out.getvalue()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels() from exc
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001  (any failure on a hostile file is a refusal)
        raise DocumentError(
            _l("This image could not be read. Please send a PDF, PNG or JPEG file.")
        ) from exc


def _upright(image):
    """The picture turned as its EXIF orientation says; as it was taken when that EXIF is
    damaged (as some phones write it): the picture is kept, its metadata is dropped either
    way."""
    try:
        return ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise
    except Exception:  # noqa: BLE001  (Pillow fails in many ways on damaged EXIF)
        return image


def clean_upload(stream, filename):
    """Read, check and clean an upload (bounded in bytes, pixels, pages and objects), one
    at a time in this process. Touches no database: call it with no transaction open."""
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
        raise DocumentError(_not_accepted(filename))
    with _CLEANING:
        if content_type == "application/pdf":
            data = clean_pdf(data)
        else:
            data = _strip_image(data, content_type)
    return CleanUpload(data, content_type, display_name(filename, content_type))


def _not_accepted(filename):
    """Why a file that is no PDF, PNG or JPEG is refused: one named as one of them (a
    document renamed to .pdf) is told that its name does not make it one."""
    extension = os.path.splitext(visible(filename or ""))[1].lower()
    if extension in NAMED_AS_ACCEPTED:
        return _l(
            "The name of this file ends in %(extension)s, but the file itself is not a PDF,"
            " PNG or JPEG: changing its name does not change it. Save or export the document"
            " as a PDF (or take a photo of it) and send that.",
            extension=extension,
        )
    return _l("Only PDF, PNG and JPEG files are accepted.")


def display_name(filename, content_type):
    """A harmless name to show: no folders, no control characters, a fitting extension."""
    # No controls, nor invisible characters such as U+202E, which can make a name read
    # backwards; the joiners a Persian name is spelt with stay.
    base = visible(re.split(r"[\\/]", filename or "")[-1])
    base = re.sub(r"[<>\"'`]", "", base).strip(" .")
    stem = os.path.splitext(base)[0][: NAME_MAX - 5] or "document"
    return stem + EXTENSIONS[content_type]
