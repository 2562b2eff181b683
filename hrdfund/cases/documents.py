"""Uploaded documents: checked by content, cleaned of metadata (images re-encoded, PDFs
rewritten without their document information, XMP, private application data, article
threads, web capture sources, layer names, scripts and attached files), encrypted at rest
under random names, readable only through the case's access rule.

Cleaning is slow work on untrusted input, so it is bounded (bytes, pixels, pages, objects,
values, bytes decoded), done one file at a time in each process, and done with no
transaction open: a view reads what it needs inside ``reading()``, cleans the upload with
:func:`clean_upload`, then stores it with :func:`store_document` in its write transaction.
"""

import base64
import binascii
import io
import os
import re
import secrets
import threading
import unicodedata
import warnings
import zlib
from dataclasses import dataclass

import pikepdf
from flask import current_app
from flask_babel import lazy_gettext as _l
from pikepdf.sanitize import Sanitizer
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import audit
from ..core.columns import cipher
from ..core.extensions import db
from .models import Document

#: Content types accepted, recognised by their first bytes, never by name.
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
NAME_MAX = 120
#: Most objects a PDF may hold: a long report has tens of thousands; each costs time to
#: clean (about 5 microseconds), and a few megabytes of compressed objects could otherwise
#: hold millions.
MAX_PDF_OBJECTS = 100_000
#: Most values (of dictionaries and arrays, at any depth) the cleaning walks in a PDF: a
#: report has about a hundred a page; each costs about a quarter of a microsecond, and a
#: compressed file of a hundred kilobytes can hold millions.
MAX_PDF_VALUES = 2_000_000

#: One upload is cleaned at a time in each process, so a burst of uploads cannot take
#: every core or gigabytes of memory; the others wait their turn.
_CLEANING = threading.Lock()

#: What a PDF may do or carry besides its pages: scripts, actions that reach the network
#: or the disk (a file that tells someone when staff open it), attached files (which keep
#: their own metadata), and editors' private data (which can keep text removed from the
#: page).
_SANITIZER = (
    Sanitizer()
    .remove_javascript()
    .remove_external_access()
    .remove_attachments()
    .remove_private_app_data()
)


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
                clean = ImageOps.exif_transpose(image)
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
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if isinstance(exc, DocumentError):
            raise
        raise DocumentError(
            _l("This image could not be read. Please send a PDF, PNG or JPEG file.")
        ) from exc


def _unreadable_pdf():
    return DocumentError(
        _l("This PDF could not be read. Please send it again, or as a photo or scan.")
    )


def _clean_pdf(data):
    """Rewrite a PDF with its pages only: no document information, no XMP metadata and no
    editor's private data in any object or any dictionary written inside one, no EXIF or
    other metadata in its JPEG images (under any filters that end in DCTDecode), no author
    on its comments, no article threads, no web capture source, no names of layers, no
    notes on output intents, no scripts, no actions that reach the network or the disk, no
    attached files. The rewrite keeps only what the pages reach, so older revisions go
    too."""
    try:
        with warnings.catch_warnings():
            # Warnings about the file's own defects: it is rewritten whole either way.
            warnings.simplefilter("ignore", pikepdf.PikepdfWarning)
            with pikepdf.open(io.BytesIO(data)) as pdf:
                _strip_pdf(pdf, _checked_objects(pdf))
                out = io.BytesIO()
                # Streams are copied as they are, never decoded: a few kilobytes of
                # compressed data cannot become gigabytes here.
                pdf.save(
                    out,
                    stream_decode_level=pikepdf.StreamDecodeLevel.none,
                    fix_metadata_version=False,
                    preserve_pdfa=False,
                )
                return out.getvalue()
    except pikepdf.PasswordError as exc:
        raise DocumentError(
            _l("This PDF is protected by a password. Please send it without the password.")
        ) from exc
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001  (any failure on a hostile file is a refusal)
        raise _unreadable_pdf() from exc


def _checked_objects(pdf):
    """Every object of a PDF; refused when it has too many objects, no page or too many
    pages, before any cleaning."""
    # The declared count bounds a cross-reference stream and costs nothing to read.
    declared = pdf.trailer.get("/Size")
    if isinstance(declared, int) and declared > MAX_PDF_OBJECTS:
        raise _too_complex_pdf()
    objects = pdf.objects
    if len(objects) > MAX_PDF_OBJECTS:
        raise _too_complex_pdf()
    pages = len(pdf.pages)
    if pages == 0:
        raise _unreadable_pdf()
    if pages > current_app.config["HRDFUND_MAX_PDF_PAGES"]:
        raise DocumentError(
            _l(
                "This PDF has more than %(pages)d pages. Please send the pages that matter.",
                pages=current_app.config["HRDFUND_MAX_PDF_PAGES"],
            )
        )
    return objects


def _too_complex_pdf():
    return DocumentError(
        _l("This PDF is too complex to accept. Please print it to a new PDF, or scan it.")
    )


def _strip_pdf(pdf, objects):
    """Remove, in place, everything of a PDF that is not its pages (see _clean_pdf)."""
    info = pdf.trailer.get("/Info")
    if isinstance(info, pikepdf.Dictionary):
        for key in list(info.keys()):  # emptied too, in case something else points to it
            del info[key]
    # The first part of /ID is kept by a rewrite and can match the file on the sender's
    # computer; without it a new one is made.
    for key in ("/Info", "/ID"):
        if key in pdf.trailer:
            del pdf.trailer[key]
    _SANITIZER.apply(pdf)
    _strip_catalog(pdf.Root)
    layers = _Layers(pdf.Root)
    budget = _Budget(4 * max_bytes())
    for obj in objects:
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            for part, keys in _dictionaries(obj, budget):
                _strip_dictionary(part, keys, layers)
        if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image":
            _strip_jpeg_stream(obj, budget)
    for page in pdf.pages:
        # An article's beads: its thread's information names its author.
        if "/B" in page.obj:
            del page.obj["/B"]
        for annotation in page.obj.get("/Annots", ()):
            # /T is a comment's author; on a form field it is the field's name.
            if (
                isinstance(annotation, pikepdf.Dictionary)
                and annotation.get("/Subtype") != "/Widget"
                and "/T" in annotation
            ):
                del annotation["/T"]


#: What the catalog may carry that is no part of the pages: article threads (their
#: information names an author), the source of a web capture (addresses of the pages
#: captured), and a portfolio's layout (its fields' names).
_CATALOG_EXTRAS = ("/Threads", "/SpiderInfo", "/Collection")


def _strip_catalog(root):
    for key in _CATALOG_EXTRAS:
        if key in root:
            del root[key]
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary):
        for key in ("/IDS", "/URLS"):  # a web capture's content sets, by id and address
            if key in names:
                del names[key]


class _Layers:
    """Optional content (layers): each group named "Layer 1", "Layer 2"... in the order
    the document lists them; a configuration loses its name, its creator and the labels
    of its list of layers. The layers and what they show stay."""

    def __init__(self, root):
        self.count, self.renamed = 0, set()
        properties = root.get("/OCProperties")
        if not isinstance(properties, pikepdf.Dictionary):
            return
        for group in properties.get("/OCGs", ()):
            if isinstance(group, pikepdf.Dictionary):
                self.rename(group)
        configs = [properties.get("/D"), *properties.get("/Configs", ())]
        for config in configs:
            if isinstance(config, pikepdf.Dictionary):
                for key in ("/Name", "/Creator"):
                    if key in config:
                        del config[key]
                if "/Order" in config:
                    config["/Order"] = _unlabelled(config["/Order"])

    def rename(self, group):
        """Name a group by its number only, once, and drop who made it or is meant to
        see it."""
        if group.is_indirect:
            if group.objgen in self.renamed:
                return
            self.renamed.add(group.objgen)
        self.count += 1
        group["/Name"] = pikepdf.String(f"Layer {self.count}")
        usage = group.get("/Usage")
        if isinstance(usage, pikepdf.Dictionary):
            for key in ("/CreatorInfo", "/User"):
                if key in usage:
                    del usage[key]


def _unlabelled(order):
    """A configuration's list of layers without its text labels (which name the layers),
    the groups themselves kept in place."""
    if not isinstance(order, pikepdf.Array):
        return order
    return pikepdf.Array(
        [_unlabelled(item) for item in order if not isinstance(item, pikepdf.String)]
    )


class _Budget:
    """What cleaning a PDF may spend: values walked, and bytes decoded from the filters
    wrapped around its JPEG images. Past either the file is refused as too complex."""

    def __init__(self, decoded_bytes):
        self.values, self.decoded = MAX_PDF_VALUES, decoded_bytes

    def walk(self, count):
        self.values -= count
        if self.values < 0:
            raise _too_complex_pdf()

    def decode(self, size):
        self.decoded -= size
        if self.decoded < 0:
            raise _too_complex_pdf()


def _dictionaries(obj, budget):
    """``obj`` and every dictionary written inside it (in its dictionaries and arrays, at
    any depth), each with its keys; objects it refers to are not followed, they are
    objects of their own."""
    stack = [obj]
    while stack:
        current = stack.pop()
        if isinstance(current, pikepdf.Array):
            values = list(current)
        else:
            items = dict(current.items())
            yield current, items.keys()
            values = items.values()
        budget.walk(len(values))
        for value in values:
            if isinstance(value, pikepdf.Dictionary | pikepdf.Array) and not value.is_indirect:
                stack.append(value)


def _strip_dictionary(part, keys, layers):
    """Remove from one dictionary (``keys``: its keys, read once) what it may carry
    besides the page: XMP, editors' private data, an article's information, a layer's
    name, an output intent's notes."""
    for key in ("/Metadata", "/PieceInfo"):
        if key in keys:
            del part[key]
    kind = part["/Type"] if "/Type" in keys else None
    if kind == "/Thread" and "/I" in keys:
        del part["/I"]
    elif kind == "/OCG":
        layers.rename(part)
    elif kind == "/OutputIntent":
        for key in ("/Info", "/OutputCondition"):
            if key in keys:
                del part[key]
    if "/S" in keys and part["/S"] == "/Thread":
        # An action that opens an article: its thread, or the thread's title.
        target = part.get("/D")
        if isinstance(target, pikepdf.Dictionary) and "/I" in target:
            del target["/I"]
        elif isinstance(target, pikepdf.String):
            part["/D"] = 0


#: Segments of a JPEG inside a PDF that are part of the picture: JFIF, the colour profile
#: and Adobe's colour transform. The other application segments (EXIF with GPS and camera,
#: XMP, IPTC) and comments are metadata a phone's scan to PDF can carry along.
_JPEG_PICTURE_SEGMENTS = frozenset({0xE0, 0xE2, 0xEE})


def _strip_jpeg(data):
    """A JPEG's bytes without its metadata segments, its picture untouched (the coded data
    from the first scan on is copied as it is); None when the segments before the picture
    do not read as JPEG."""
    if not data.startswith(b"\xff\xd8"):
        return None
    out, pos = bytearray(b"\xff\xd8"), 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the rest is the picture
            return bytes(out + data[pos:])
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end < pos + 4 or end > len(data):
            return None
        metadata = marker == 0xFE or (0xE0 <= marker <= 0xEF)
        if not metadata or marker in _JPEG_PICTURE_SEGMENTS:
            out += data[pos:end]
        pos = end
    return None


def _strip_jpeg_stream(image, budget):
    """Remove the metadata segments of a JPEG image stream of a PDF, in place. A JPEG
    wrapped in other filters (``[/FlateDecode /DCTDecode]``) is unwrapped, within the
    budget, cleaned and stored compressed again."""
    filters = image.get("/Filter")
    filters = list(filters) if isinstance(filters, pikepdf.Array) else [filters]
    if not filters or filters[-1] not in ("/DCTDecode", "/DCT"):
        return
    parms = image.get("/DecodeParms")
    parms = list(parms) if isinstance(parms, pikepdf.Array) else [parms]
    parms = (parms + [None] * len(filters))[: len(filters)]
    raw = image.read_raw_bytes()
    jpeg = _unwrapped(raw, filters[:-1], parms[:-1], budget) if len(filters) > 1 else raw
    stripped = _strip_jpeg(jpeg)
    if stripped is None or stripped == jpeg:
        return
    if len(filters) == 1:
        image.write(stripped, filter=image.Filter, decode_parms=image.get("/DecodeParms"))
        return
    image.write(
        zlib.compress(stripped),
        filter=pikepdf.Array([pikepdf.Name.FlateDecode, pikepdf.Name.DCTDecode]),
        decode_parms=None if parms[-1] is None else pikepdf.Array([None, parms[-1]]),
    )


def _unwrapped(data, filters, parms, budget):
    """``data`` decoded through ``filters`` (Flate, ASCIIHex or ASCII85, as PDF writers
    wrap a JPEG), never to more bytes than the budget has left; another filter, or a
    predictor, makes the file too complex to clean."""
    for name, parm in zip(filters, parms, strict=True):
        if isinstance(parm, pikepdf.Dictionary) and parm.get("/Predictor", 1) != 1:
            raise _too_complex_pdf()
        if name in ("/FlateDecode", "/Fl"):
            inflate = zlib.decompressobj()
            data = inflate.decompress(data, max(budget.decoded, 0) + 1)
        elif name in ("/ASCIIHexDecode", "/AHx"):
            digits = re.sub(rb"\s", b"", data.split(b">", 1)[0])
            data = binascii.unhexlify(digits + b"0" * (len(digits) % 2))
        elif name in ("/ASCII85Decode", "/A85"):
            text = data.split(b"~>", 1)[0].strip()
            text = text[2:] if text.startswith(b"<~") else text
            data = base64.a85decode(text, ignorechars=b" \t\n\r\v\f\0")
        else:
            raise _too_complex_pdf()
        budget.decode(len(data))
    return data


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
        raise DocumentError(_l("Only PDF, PNG and JPEG files are accepted."))
    with _CLEANING:
        if content_type == "application/pdf":
            data = _clean_pdf(data)
        else:
            data = _strip_image(data, content_type)
    return CleanUpload(data, content_type, display_name(filename, content_type))


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


def store_document(upload, application, kind, actor):
    """Encrypt and store a cleaned upload for ``application`` (None for a proof of
    payment, which belongs to the payment and is shown to finance only)."""
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
