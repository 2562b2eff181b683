"""Documents: accepted by content, cleaned of metadata, encrypted at rest, shown only to
those who may see the case."""

import base64
import binascii
import io
import logging
import os
import shutil
import stat
import struct
import warnings
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image, ImageFile, ImageOps, PngImagePlugin
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from hrdfund.audit.models import AuditEvent
from hrdfund.cases import cleaning, documents, pdfs
from hrdfund.cases.documents import read_document
from hrdfund.cases.models import Document, DocumentChunk
from hrdfund.core.crypto import DecryptionError
from hrdfund.core.extensions import db
from tests.conftest import (
    audit_actions,
    jpeg_with_gps,
    login,
    payment_data,
    refused_page,
    start_application,
)
from tests.pdfs import make_pdf, xmp_packet

PDF = make_pdf("canary-quote-text-7781")
PHOTO_NOTE = "canary-camera-note-6612"


@pytest.fixture
def case_uid(client, make_user, fund):
    login(client, make_user("applicant"))
    return start_application(client, "medical")


def _upload(client, uid, data, name="quote.pdf", kind="quote"):
    return client.post(
        f"/applications/{uid}/documents",
        content_type="multipart/form-data",
        data={"kind": kind, "file": (io.BytesIO(data), name)},
    )


def _only_document():
    db.session.expire_all()
    return db.session.execute(sa.select(Document)).scalar_one()


def _in_database(app):
    """Where the suite's app keeps documents: the database on PostgreSQL, the folder on
    SQLite."""
    return db.engine.dialect.name == "postgresql"


def _chunks(document):
    return db.session.scalars(
        sa.select(DocumentChunk.data)
        .where(DocumentChunk.document_id == document.id)
        .order_by(DocumentChunk.seq)
    ).all()


def _pages(data):
    """The text of each page of a PDF, read strictly by a library that did not write it."""
    return [page.extract_text() for page in PdfReader(io.BytesIO(data), strict=True).pages]


def test_a_pdf_is_stored_encrypted_and_comes_back_with_its_pages(app, client, case_uid):
    response = _upload(client, case_uid, PDF)
    assert response.status_code == 302
    document = _only_document()
    stored = os.path.join(app.instance_path, "documents", document.storage_name)
    if _in_database(app):
        assert not os.path.exists(stored)
        chunks = _chunks(document)
        assert chunks and all(b"canary-quote" not in chunk for chunk in chunks)
    else:
        assert b"canary-quote" not in Path(stored).read_bytes()
        assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    download = client.get(f"/applications/{case_uid}/documents/{document.uid}")
    assert _pages(download.get_data()) == ["canary-quote-text-7781 (page 1)"]
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "quote.pdf" in client.get(f"/applications/{case_uid}").get_data(as_text=True)


def test_the_case_lists_each_document_with_what_it_is_and_when_it_came(client, case_uid):
    """Beside each file's name: what the sender said it is, the day it was added, its size
    (a small file is 1 KB, not 0)."""
    _upload(client, case_uid, PDF, name="scan-0042.pdf", kind="medical_report")
    document = _only_document()
    page = client.get(f"/applications/{case_uid}").get_data(as_text=True)
    item = page.split("scan-0042.pdf</a>")[1].split("</li>")[0]
    size = -(-document.size_bytes // 1024)
    added = f"{document.created_at.day} {document.created_at:%B %Y}"
    assert f"A medical report, added on {added}, {size} KB" in item, item


def test_a_damaged_document_sends_nothing_and_says_so(app, client, case_uid, caplog):
    """What is stored of a document damaged (a piece in the database, the file in the
    folder): the download answers with a page saying so, not a file cut off or a blank
    error; no download is recorded, the log names the document for an administrator, and
    the case's page still opens."""
    caplog.set_level(logging.WARNING)
    assert _upload(client, case_uid, PDF).status_code == 302
    document = _only_document()
    if _in_database(app):
        (blob,) = _chunks(document)
        db.session.execute(
            sa.update(DocumentChunk)
            .where(DocumentChunk.document_id == document.id)
            .values(data=blob[:-1] + bytes([blob[-1] ^ 1]))
        )
        db.session.commit()
    else:
        stored = Path(app.instance_path, "documents", document.storage_name)
        blob = stored.read_bytes()
        stored.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    before = audit_actions().count("document.downloaded")

    response = client.get(f"/applications/{case_uid}/documents/{document.uid}")
    assert response.status_code == 500
    assert "Content-Disposition" not in response.headers
    page = response.get_data(as_text=True)
    assert "This document cannot be opened" in page
    assert "damaged or incomplete, so nothing of it was sent" in page
    assert audit_actions().count("document.downloaded") == before
    assert (
        f"stored document {document.uid} does not read back whole: ciphertext does not verify"
        in caplog.text
    )
    assert "unhandled" not in caplog.text
    assert client.get(f"/applications/{case_uid}").status_code == 200


def test_photos_lose_their_location_and_camera_data(client, case_uid):
    original = jpeg_with_gps(PHOTO_NOTE)
    assert b"canary-camera-note" in original
    assert _upload(client, case_uid, original, "photo.jpg", "evidence").status_code == 302
    document = _only_document()
    cleaned = client.get(f"/applications/{case_uid}/documents/{document.uid}").get_data()
    assert b"canary-camera-note" not in cleaned
    with Image.open(io.BytesIO(cleaned)) as image:
        assert image.size == (32, 24)
        exif = image.getexif()
        assert 0x8825 not in exif and 0x010E not in exif


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00" + b"\x00" * 100,
        b"\x7fELF\x02\x01\x01" * 10,
        b"<html><script>alert(1)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg"></svg>',
    ],
)
def test_files_that_are_not_documents_are_refused_whatever_their_name(client, case_uid, data):
    """Named as a document or not, the file is refused; named as one, the page says that
    renaming a file does not make it a PDF, so the person knows what to do instead."""
    for name, words in [
        ("quote.pdf", "The name of this file ends in .pdf, but the file itself is not a PDF"),
        ("scan.JPEG", "The name of this file ends in .jpeg, but the file itself is not a PDF"),
        ("quote.docx", "Only PDF, PNG and JPEG files are accepted."),
        ("quote", "Only PDF, PNG and JPEG files are accepted."),
    ]:
        response = _upload(client, case_uid, data, name)
        response = refused_page(client, response, f"/applications/{case_uid}#documents")
        assert words in response.get_data(as_text=True), name
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0


def test_a_file_over_the_limit_is_refused_clearly(app, client, case_uid):
    app.config["HRDFUND_MAX_DOCUMENT_BYTES"] = 1000
    response = _upload(client, case_uid, PDF + b"0" * 1000)
    response = refused_page(client, response, f"/applications/{case_uid}#documents")
    assert "larger than" in response.get_data(as_text=True)


def test_a_twenty_megabyte_upload_gets_the_too_large_page(client, case_uid):
    # Encoded in memory: the test client would spool it to a file it never closes.
    boundary, body = encode_multipart(
        {
            "kind": "quote",
            "file": FileStorage(io.BytesIO(PDF + b"0" * (20 * 1024 * 1024)), "big.pdf"),
        }
    )
    response = client.post(
        f"/applications/{case_uid}/documents",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 413
    assert "File too large" in response.get_data(as_text=True)
    assert "larger than the 8 MB the fund accepts" in response.get_data(as_text=True)
    # The limit is said before the file is chosen, where a file is sent.
    page = client.get(f"/applications/{case_uid}").get_data(as_text=True)
    assert "At most 8 MB." in page


def test_hostile_file_names_become_harmless(client, case_uid):
    _upload(client, case_uid, PDF, '../../etc/passwd\x00<script>x</script>"q.exe')
    name = _only_document().filename
    assert "/" not in name and "\x00" not in name and "<" not in name
    assert name.endswith(".pdf")


def test_audit_names_no_file(client, case_uid):
    _upload(client, case_uid, PDF, "my-secret-name.pdf")
    payloads = db.session.execute(sa.select(AuditEvent.payload)).scalars().all()
    assert not any("my-secret-name" in p for p in payloads)


def test_another_applicant_gets_404_for_the_document(app, client, case_uid, make_user):
    _upload(client, case_uid, PDF)
    document = _only_document()
    stranger = app.test_client()
    login(stranger, make_user("applicant"))
    assert stranger.get(f"/applications/{case_uid}/documents/{document.uid}").status_code == 404
    assert _upload(stranger, case_uid, PDF).status_code == 404


def test_photo_comments_and_png_metadata_are_dropped_too(client, case_uid):
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(jpeg, "JPEG", comment=b"canary-jpeg-comment-4410")
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "canary-png-text-9023")
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, "PNG", pnginfo=info, exif=exif)
    _upload(client, case_uid, jpeg.getvalue(), "a.jpg", "evidence")
    _upload(client, case_uid, png.getvalue(), "b.png", "evidence")
    for document in db.session.execute(sa.select(Document)).scalars():
        cleaned = read_document(document)
        assert b"canary-" not in cleaned
        with Image.open(io.BytesIO(cleaned)) as image:
            assert 0x8825 not in image.getexif()


def _jpeg_with_damaged_exif():
    """A phone photo whose EXIF is damaged (two bytes of its GPS directory changed) in a
    way on which Pillow's turning of the picture by its orientation fails."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turned
    exif[0x010F] = "Cam"  # Make (a longer one moves the bytes changed below)
    exif[0x8825] = {1: "N", 2: (1.0, 2.0, 3.0)}  # GPSInfo
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(out, "JPEG", exif=exif.tobytes())
    data = bytearray(out.getvalue())
    data[0x51], data[0x85] = 0x36, 0x09
    return bytes(data)


def test_a_photo_with_damaged_exif_is_kept_without_it(client, case_uid):
    """Some phones write EXIF Pillow cannot turn the picture by: the photo is stored as it
    was taken, its metadata dropped all the same (it answered 500)."""
    original = _jpeg_with_damaged_exif()
    with warnings.catch_warnings(), Image.open(io.BytesIO(original)) as image:
        warnings.simplefilter("ignore")  # Pillow warns of the damage first
        with pytest.raises(TypeError):
            ImageOps.exif_transpose(image)  # the damage this test is about
    assert _upload(client, case_uid, original, "photo.jpg", "evidence").status_code == 302
    document = _only_document()
    cleaned = client.get(f"/applications/{case_uid}/documents/{document.uid}").get_data()
    with Image.open(io.BytesIO(cleaned)) as image:
        assert image.size == (40, 30)
        assert not image.getexif()


def test_any_failure_reading_an_image_is_a_refusal_in_words(client, case_uid, monkeypatch):
    """Pillow fails on hostile files in more ways than its documented errors (a TypeError,
    a struct.error...): each is the file's refusal, never a server error."""

    def fails(self, *args, **kwargs):
        raise struct.error("unpack requires a buffer of 4 bytes")

    photo = jpeg_with_gps(PHOTO_NOTE)
    monkeypatch.setattr(Image.Image, "save", fails)
    response = _upload(client, case_uid, photo, "photo.jpg", "evidence")
    response = refused_page(client, response, f"/applications/{case_uid}#documents")
    assert "This image could not be read." in response.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0


def _png_header(width, height):
    """A valid PNG header for a huge picture with no pixel data behind it."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _never_decoded(monkeypatch):
    """Fail the test if any picture's pixels are decoded."""

    def load(self):
        raise AssertionError("the picture was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize("size", [(8000, 6000), (6000, 5000)])
def test_an_image_over_the_pixel_bound_is_refused_before_decoding(
    client, case_uid, monkeypatch, size
):
    """A PNG's header tells its size: 48 or 30 million pixels are refused from it, with
    the bound in words, before a pixel is decoded."""
    _never_decoded(monkeypatch)
    response = _upload(client, case_uid, _png_header(*size), "big.png", "evidence")
    response = refused_page(client, response, f"/applications/{case_uid}#documents")
    assert "more than 25 million pixels" in response.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0


def test_pillows_own_bound_holds_if_the_header_check_is_passed(client, case_uid, monkeypatch):
    """Pillow's decompression-bomb bound is set at the same number, so a size the header
    check did not see is refused too, still before decoding."""
    monkeypatch.setattr(cleaning, "_check_pixels", lambda image: None)
    _never_decoded(monkeypatch)
    response = _upload(client, case_uid, _png_header(6000, 5000), "big.png", "evidence")
    response = refused_page(client, response, f"/applications/{case_uid}#documents")
    assert "more than 25 million pixels" in response.get_data(as_text=True)


def test_the_pixel_bound_is_a_setting(app, client, case_uid):
    app.config["HRDFUND_MAX_IMAGE_PIXELS"] = 2_000_000
    small, large = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (1600, 1200), "red").save(small, "JPEG")
    Image.new("RGB", (1700, 1200), "red").save(large, "JPEG")
    assert _upload(client, case_uid, small.getvalue(), "a.jpg", "evidence").status_code == 302
    refused = _upload(client, case_uid, large.getvalue(), "b.jpg", "evidence")
    refused = refused_page(client, refused, f"/applications/{case_uid}#documents")
    assert "more than 2 million pixels" in refused.get_data(as_text=True)


def test_invisible_and_c1_control_characters_leave_the_name(client, case_uid):
    _upload(client, case_uid, PDF, "invoice\u202egnp\u200b\x85\x9f.exe")
    assert _only_document().filename == "invoicegnp.pdf"


def test_a_ciphertext_moved_to_another_document_does_not_decrypt(app, client, case_uid):
    _upload(client, case_uid, PDF, "a.pdf")
    _upload(client, case_uid, PDF, "b.pdf")
    first, second = db.session.execute(sa.select(Document).order_by(Document.id)).scalars()
    if _in_database(app):
        db.session.execute(
            sa.update(DocumentChunk)
            .where(DocumentChunk.document_id == second.id, DocumentChunk.seq == 0)
            .values(data=_chunks(first)[0])
        )
        db.session.commit()
    else:
        folder = Path(app.instance_path, "documents")
        shutil.copyfile(folder / first.storage_name, folder / second.storage_name)
    assert _pages(read_document(first)) == ["canary-quote-text-7781 (page 1)"]
    with pytest.raises(DecryptionError):
        read_document(second)


def test_a_failed_write_leaves_no_file_behind(app, client, case_uid, monkeypatch):
    class FailingCipher:
        def encrypt_bytes(self, data, aad):
            raise OSError("disk full")

    monkeypatch.setattr(documents, "cipher", FailingCipher)
    assert _upload(client, case_uid, PDF).status_code == 500
    folder = Path(app.instance_path, "documents")
    assert not folder.exists() or list(folder.iterdir()) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DocumentChunk)) == 0
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0


NAME = "Amina Canary-Okafor"
ORIGINAL_ID = "0123456789abcdef0123456789abcdef"  # what make_pdf writes


def _with_everything_but_pages():
    """Three pages, and a name in the document information, the XMP of the document and of
    its first page, and a comment's author."""
    return make_pdf(
        "canary-quote-text-7781",
        pages=3,
        info={"Author": NAME, "Title": f"Quote for {NAME}", "Creator": "Word", "Producer": "Mac"},
        xmp=xmp_packet(NAME),
        comment_by=NAME,
    )


def _assert_only_pages(data):
    """The PDF opens, keeps its three pages, and carries nothing else of its sender."""
    assert _pages(data) == [f"canary-quote-text-7781 (page {n})" for n in (1, 2, 3)]
    reader = PdfReader(io.BytesIO(data), strict=True)
    assert not reader.metadata
    assert reader.xmp_metadata is None
    # The file's identifier is new, so it cannot be matched to the sender's copy.
    first = reader.trailer["/ID"][0]
    first = first.get_original_bytes() if hasattr(first, "get_original_bytes") else bytes(first)
    assert first != bytes.fromhex(ORIGINAL_ID)
    numbers = set(reader.xref_objStm)
    for table in reader.xref.values():
        numbers |= set(table)
    assert len(numbers) > 5
    for number in numbers:
        obj = reader.get_object(number)
        if hasattr(obj, "keys"):
            assert "/Metadata" not in obj and "/Author" not in obj, number
        if hasattr(obj, "get_data"):
            assert NAME.encode() not in obj.get_data(), number
    annotation = reader.pages[0]["/Annots"][0].get_object()
    assert annotation["/Contents"] == "Check this" and "/T" not in annotation
    assert NAME.encode() not in data


def test_a_pdf_loses_its_author_title_producer_and_xmp(client, case_uid):
    original = _with_everything_but_pages()
    assert PdfReader(io.BytesIO(original)).metadata["/Author"] == NAME
    assert _upload(client, case_uid, original).status_code == 302
    _assert_only_pages(read_document(_only_document()))


def test_a_photo_inside_a_pdf_loses_its_location_and_camera_data(client, case_uid):
    """A phone's scan to PDF can carry the photo's EXIF along: the picture stays, to the
    byte of its coded data, and the GPS and camera note go."""
    photo = jpeg_with_gps(PHOTO_NOTE)
    assert _upload(client, case_uid, make_pdf(jpeg=photo)).status_code == 302
    cleaned = read_document(_only_document())
    assert b"canary-camera-note" not in cleaned
    (image,) = PdfReader(io.BytesIO(cleaned), strict=True).pages[0].images
    with Image.open(io.BytesIO(image.data)) as kept, Image.open(io.BytesIO(photo)) as sent:
        assert kept.size == (32, 24) and not kept.getexif()
        assert kept.tobytes() == sent.tobytes()


def _everything_in(data):
    """Every object of a PDF as a library that did not write it reads it: dictionaries (and
    what is written inside them) and the decoded data of streams, to search."""
    reader = PdfReader(io.BytesIO(data), strict=True)
    numbers = set(reader.xref_objStm)
    for table in reader.xref.values():
        numbers |= set(table)
    found = []
    for number in numbers:
        obj = reader.get_object(number)
        found.append(repr(obj).encode())
        if hasattr(obj, "get_data"):
            found.append(obj.get_data())
    return b"\n".join(found)


_N = NAME.encode()
#: Where a PDF can carry a name besides its document information and XMP: what each
#: case writes into the catalog and the first page, and the objects it adds.
_NAMED_ELSEWHERE = {
    "an article thread's information": {
        "catalog": b"/Threads [@0]",
        "page": b"/B [@1]",
        "extra": [
            b"<< /Type /Thread /I << /Title (Safe house) /Author (" + _N + b") >> /F @1 >>",
            b"<< /Type /Bead /T @0 /N @1 /V @1 /P @P /R [0 0 100 100] >>",
        ],
    },
    "an action opening an article by its title": {
        "catalog": b"/OpenAction << /S /Thread /D (Notes of " + _N + b") >>",
    },
    "editors' private data inside a dictionary of the page": {
        "page": b"/Group << /S /Transparency /CS /DeviceRGB /PieceInfo << /Word << /Private ("
        + _N
        + b") /LastModified (D:20260101) >> >> >>",
    },
    "XMP referred to from inside a dictionary of the page": {
        "page": b"/Group << /S /Transparency /CS /DeviceRGB /Metadata @0 >>",
        "extra": [(b"<< /Type /Metadata /Subtype /XML >>", xmp_packet(NAME))],
    },
    "the source of a web capture": {
        "catalog": b"/SpiderInfo << /V 1.0 /Author (" + _N + b") >>",
    },
    "a web capture's pages by address": {
        "catalog": b"/Names << /URLS << /Names [(https://example.org/" + _N + b") @0] >> >>",
        "extra": [
            b"<< /Type /SpiderContentSet /S /SPS /ID <0a0b> /O [@P] /SI << /AU (https://"
            + _N
            + b") /TS (D:20260101) >> >>"
        ],
    },
    "an output intent's notes": {
        "catalog": b"/OutputIntents [<< /Type /OutputIntent /S /GTS_PDFA1 "
        b"/OutputConditionIdentifier (sRGB) /Info (Proof for " + _N + b") "
        b"/OutputCondition (Printer of " + _N + b") >>]",
    },
    "a layer's name and its configuration": {
        "catalog": b"/OCProperties << /OCGs [@0] /D << /Name (Layers of " + _N + b") "
        b"/Creator (" + _N + b") /Order [(Notes of " + _N + b") @0] >> >>",
        "extra": [
            b"<< /Type /OCG /Name (Notes of " + _N + b") /Usage << /User << /Type /Ind "
            b"/Name (" + _N + b") >> /CreatorInfo << /Creator (" + _N + b") "
            b"/Subtype /Artwork >> >> >>"
        ],
    },
    "a portfolio's fields": {
        "catalog": b"/Collection << /Schema << /A << /Subtype /S /N (" + _N + b") >> >> >>",
    },
}


@pytest.mark.parametrize("where", list(_NAMED_ELSEWHERE))
def test_a_name_anywhere_else_in_a_pdf_leaves_it_too(client, case_uid, where):
    original = make_pdf("canary-quote-text-7781", **_NAMED_ELSEWHERE[where])
    assert _N in _everything_in(original)
    assert _upload(client, case_uid, original).status_code == 302
    cleaned = read_document(_only_document())
    assert _N not in _everything_in(cleaned) and _N not in cleaned
    assert _pages(cleaned) == ["canary-quote-text-7781 (page 1)"]


def test_layers_and_output_intents_stay_without_their_names(client, case_uid):
    """What the pages need of them is kept: the layers, numbered, in their order, and the
    output intent's condition."""
    layers = _NAMED_ELSEWHERE["a layer's name and its configuration"]
    intent = _NAMED_ELSEWHERE["an output intent's notes"]
    original = (
        make_pdf(
            "canary-quote-text-7781",
            catalog=layers["catalog"] + b" " + intent["catalog"],
            extra=layers["extra"] + [b"<< /Type /OCG /Name (Second) >>"],
        )
        .replace(b"/OCGs [", b"/OCGs [@1 ")
        .replace(b"@1 ", b"")
    )  # one layer listed
    assert _upload(client, case_uid, original).status_code == 302
    root = PdfReader(io.BytesIO(read_document(_only_document())), strict=True).trailer["/Root"]
    (layer,) = root["/OCProperties"]["/OCGs"]
    assert layer.get_object()["/Name"] == "Layer 1"
    assert "/Usage" not in layer.get_object() or not layer.get_object()["/Usage"].get("/User")
    config = root["/OCProperties"]["/D"]
    assert "/Name" not in config and "/Creator" not in config
    assert [item.get_object() for item in config["/Order"]] == [layer.get_object()]
    (kept,) = root["/OutputIntents"]
    assert kept["/S"] == "/GTS_PDFA1" and kept["/OutputConditionIdentifier"] == "sRGB"
    assert "/Info" not in kept and "/OutputCondition" not in kept


def _wrapped(photo, chain):
    """The photo encoded by the filters of ``chain`` before DCTDecode, and the chain."""
    data = photo
    for name in reversed(chain):
        if name == "FlateDecode":
            data = zlib.compress(data)
        elif name == "ASCIIHexDecode":
            data = binascii.hexlify(data) + b">"
        elif name == "ASCII85Decode":
            data = base64.a85encode(data) + b"~>"
    names = b" ".join(b"/" + name.encode() for name in (*chain, "DCTDecode"))
    return b"[" + names + b"]", data


@pytest.mark.parametrize(
    "chain",
    [("FlateDecode",), ("ASCIIHexDecode",), ("ASCII85Decode", "FlateDecode")],
    ids=lambda chain: "+".join(chain),
)
def test_a_photo_wrapped_in_other_filters_loses_its_camera_data(client, case_uid, chain):
    """A JPEG stored compressed again (``[/FlateDecode /DCTDecode]``), or as text, keeps
    its EXIF where no plain search finds it; it is unwrapped, cleaned and stored again."""
    photo = jpeg_with_gps(PHOTO_NOTE)
    original = make_pdf("canary-quote-text-7781", image=_wrapped(photo, chain))
    assert b"canary-camera-note" in _everything_in(original)
    assert _upload(client, case_uid, original).status_code == 302
    cleaned = read_document(_only_document())
    assert b"canary-camera-note" not in _everything_in(cleaned)
    (image,) = PdfReader(io.BytesIO(cleaned), strict=True).pages[0].images
    with Image.open(io.BytesIO(photo)) as sent:
        assert image.image.size == (32, 24) and not image.image.getexif()
        assert image.image.tobytes() == sent.tobytes()
    assert [text.strip() for text in _pages(cleaned)] == ["canary-quote-text-7781 (page 1)"]


@pytest.mark.parametrize(
    "image",
    [
        # A few kilobytes that would inflate to 64 MB around a photo.
        (b"[/FlateDecode /DCTDecode]", zlib.compress(b"\xff\xd8" + bytes(64 * 2**20), 9)),
        (b"[/LZWDecode /DCTDecode]", b"\x80\x0b\x60\x50\x22\x0c\x0c\x85\x01"),
        (b"[/FlateDecode /DCTDecode] /DecodeParms [<< /Predictor 12 /Columns 4 >> null]", b"x"),
    ],
    ids=["inflating", "lzw", "predictor"],
)
def test_a_wrapped_photo_that_cannot_be_unwrapped_within_bounds_is_refused(client, case_uid, image):
    refused = _upload(client, case_uid, make_pdf(image=image))
    refused = refused_page(client, refused, f"/applications/{case_uid}#documents")
    assert "too complex" in refused.get_data(as_text=True)


def test_a_pdf_of_too_many_values_is_refused(client, case_uid, monkeypatch):
    monkeypatch.setattr(pdfs, "MAX_PDF_VALUES", 20)
    refused = _upload(client, case_uid, make_pdf(pages=3))
    refused = refused_page(client, refused, f"/applications/{case_uid}#documents")
    assert "too complex" in refused.get_data(as_text=True)


@pytest.fixture
def finance_case(app, money_world):
    """A case with a grant to pay, and finance signed in: (client, case code, form data)."""
    world = money_world
    grant = world.grant("2000", pool=world.usd)
    world.plan(grant, count=2)
    finance = app.test_client()
    login(finance, world.finance)
    return finance, grant.application.uid, payment_data(grant)


def _pay(finance_case, data, name="receipt.pdf"):
    client, uid, form = finance_case
    return client.post(
        f"/applications/{uid}/payments",
        data={**form, "pay-proof": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_a_proof_of_payment_is_cleaned_the_same_way(finance_case):
    assert _pay(finance_case, _with_everything_but_pages()).status_code == 302
    _assert_only_pages(read_document(_only_document()))


def test_scripts_actions_and_attached_files_leave_a_pdf(client, case_uid):
    """A file staff open does nothing by itself: no script, no address it calls, and no
    attached file (which would keep its own metadata)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(PDF)))
    writer.add_attachment("notes.docx", b"canary-attachment-5521 by " + NAME.encode())
    writer.add_uri(0, "https://canary-tracker.example/5522", [0, 0, 100, 100])
    script = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("app.alert('canary-script-5520');"),
        }
    )
    writer._root_object["/Names"][NameObject("/JavaScript")] = DictionaryObject(
        {
            NameObject("/Names"): ArrayObject(
                [TextStringObject("greeting"), writer._add_object(script)]
            )
        }
    )
    writer._root_object[NameObject("/OpenAction")] = DictionaryObject(
        {
            NameObject("/S"): NameObject("/URI"),
            NameObject("/URI"): TextStringObject("https://canary-tracker.example/5523"),
        }
    )
    out = io.BytesIO()
    writer.write(out)
    assert _upload(client, case_uid, out.getvalue()).status_code == 302
    cleaned = read_document(_only_document())
    reader = PdfReader(io.BytesIO(cleaned), strict=True)
    assert _pages(cleaned) == ["canary-quote-text-7781 (page 1)"]
    assert not reader.attachments
    assert "/OpenAction" not in reader.trailer["/Root"]
    assert "/Names" not in reader.trailer["/Root"] or not reader.trailer["/Root"]["/Names"].get(
        "/JavaScript"
    )
    for annotation in reader.pages[0].get("/Annots", []):
        assert "/A" not in annotation.get_object()
    assert b"canary-" not in cleaned.replace(b"canary-quote", b"")


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        b"%PDF-1.7\n" + os.urandom(2000),
        b"%PDF-1.4\n%%EOF\n",
    ],
)
def test_a_pdf_that_cannot_be_read_is_refused_not_stored(app, client, case_uid, data):
    response = _upload(client, case_uid, data)
    response = refused_page(client, response, f"/applications/{case_uid}#documents")
    assert "This PDF could not be read." in response.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0
    assert not Path(app.instance_path, "documents").exists() or not list(
        Path(app.instance_path, "documents").iterdir()
    )


def test_a_pdf_behind_a_password_is_refused_in_words(client, case_uid):
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(PDF)))
    writer.encrypt("open sesame", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    response = _upload(client, case_uid, out.getvalue())
    response = refused_page(client, response, f"/applications/{case_uid}#documents")
    assert "protected by a password" in response.get_data(as_text=True)


def test_a_pdf_past_the_page_bound_is_refused(app, client, case_uid):
    app.config["HRDFUND_MAX_PDF_PAGES"] = 3
    assert _upload(client, case_uid, make_pdf(pages=3)).status_code == 302
    refused = _upload(client, case_uid, make_pdf(pages=4))
    refused = refused_page(client, refused, f"/applications/{case_uid}#documents")
    assert "more than 3 pages" in refused.get_data(as_text=True)


def test_a_pdf_of_too_many_objects_is_refused(client, case_uid, monkeypatch):
    monkeypatch.setattr(pdfs, "MAX_PDF_OBJECTS", 5)
    refused = _upload(client, case_uid, make_pdf(pages=3))
    refused = refused_page(client, refused, f"/applications/{case_uid}#documents")
    assert "too complex" in refused.get_data(as_text=True)


def _observe_cleaning(monkeypatch, seen):
    """Record, while each file is cleaned, whether the request holds a transaction and
    whether another connection could take SQLite's write lock at that moment."""
    from tests.test_models import _another_writer_gets_the_lock

    def watch(original):
        def watched(*args):
            seen.append(
                {
                    "transaction open": db.session().in_transaction(),
                    "lock free": db.engine.dialect.name != "sqlite"
                    or _another_writer_gets_the_lock(),
                }
            )
            return original(*args)

        return watched

    monkeypatch.setattr(cleaning, "clean_pdf", watch(cleaning.clean_pdf))
    monkeypatch.setattr(cleaning, "_strip_image", watch(cleaning._strip_image))


def test_a_file_is_cleaned_while_no_write_lock_is_held(client, case_uid, monkeypatch, finance_case):
    """While an upload is cleaned the request holds no transaction, so on SQLite another
    writer takes the lock at once; the document is stored after, in its own transaction."""
    seen = []
    _observe_cleaning(monkeypatch, seen)
    assert _upload(client, case_uid, PDF).status_code == 302
    assert (
        _upload(client, case_uid, jpeg_with_gps(PHOTO_NOTE), "a.jpg", "evidence").status_code == 302
    )
    assert _pay(finance_case, PDF).status_code == 302
    assert seen == [{"transaction open": False, "lock free": True}] * 3
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 3


def test_a_case_closed_while_its_file_was_cleaned_takes_no_document(
    app, client, case_uid, monkeypatch
):
    """What the first read decided (the case is open to documents) is checked again where
    the document is stored."""
    from hrdfund.cases.models import Application, ApplicationStatus

    def close_meanwhile(data):
        with app.app_context():
            other = db.session.execute(sa.select(Application)).scalar_one()
            other.status = ApplicationStatus.WITHDRAWN
            db.session.commit()
        return data

    monkeypatch.setattr(cleaning, "clean_pdf", close_meanwhile)
    assert _upload(client, case_uid, PDF).status_code == 404
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0
    assert not list(Path(app.instance_path, "documents").glob("*"))


def test_uploads_are_cleaned_one_at_a_time(app, make_user, fund, monkeypatch):
    """Four uploads at once, from four people: each waits for the one before to finish, so a
    burst cannot take every core and the memory of four decodes."""
    import threading
    import time

    running, most = [0], [0]
    guard = threading.Lock()
    original = cleaning._strip_image

    def slow(*args):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.2)
        with guard:
            running[0] -= 1
        return original(*args)

    monkeypatch.setattr(cleaning, "_strip_image", slow)
    clients = []
    for _ in range(4):
        client = app.test_client()
        login(client, make_user("applicant"))
        uid = start_application(client, "medical")
        clients.append((client, uid))
    photo = jpeg_with_gps(PHOTO_NOTE)
    answers = []
    db.session.rollback()  # the test's own reads leave SQLite's write lock to the uploads

    def send(client, uid):
        with app.app_context():
            answers.append(_upload(client, uid, photo, "a.jpg", "evidence").status_code)

    threads = [threading.Thread(target=send, args=pair) for pair in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [302] * 4
    assert most[0] == 1
