"""PDF uploads rewritten clean: the document information, XMP, private application data,
article threads, web capture sources, layer names, scripts and attached files removed, and
JPEG streams inside stripped of their metadata, within bounds of objects, values and bytes
decoded so a hostile file costs little."""

import base64
import binascii
import io
import re
import warnings
import zlib

import pikepdf
from flask import current_app
from flask_babel import lazy_gettext as _l
from pikepdf.sanitize import Sanitizer

from .documents import DocumentError, max_bytes

#: Most objects a PDF may hold: a long report has tens of thousands; each costs time to
#: clean (about 5 microseconds), and a few megabytes of compressed objects could otherwise
#: hold millions.
MAX_PDF_OBJECTS = 100_000


#: Most values (of dictionaries and arrays, at any depth) the cleaning walks in a PDF: a
#: report has about a hundred a page; each costs about a quarter of a microsecond, and a
#: compressed file of a hundred kilobytes can hold millions.
MAX_PDF_VALUES = 2_000_000


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


def _unreadable_pdf():
    return DocumentError(
        _l("This PDF could not be read. Please send it again, or as a photo or scan.")
    )


def clean_pdf(data):
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
