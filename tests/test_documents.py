"""Documents: accepted by content, cleaned of metadata, encrypted at rest, shown only to
those who may see the case."""

import io
import os
import shutil
import stat
import struct
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image, PngImagePlugin
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from hrdfund.applications import documents
from hrdfund.applications.documents import read_document
from hrdfund.applications.models import Document
from hrdfund.audit.models import AuditEvent
from hrdfund.crypto import DecryptionError
from hrdfund.extensions import db
from tests.conftest import login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n(canary-quote-text-7781)\ntrailer<<>>\n%%EOF\n"


def _jpeg_with_gps():
    image = Image.new("RGB", (32, 24), "red")
    exif = Image.Exif()
    exif[0x010E] = "canary-camera-note-6612"  # ImageDescription
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture
def case_uid(client, make_user, fund):
    login(client, make_user("applicant"))
    return client.post("/apply", data={"category": "medical"}).location.split("/")[2]


def _upload(client, uid, data, name="quote.pdf", kind="quote"):
    return client.post(
        f"/applications/{uid}/documents",
        content_type="multipart/form-data",
        data={"kind": kind, "file": (io.BytesIO(data), name)},
    )


def _only_document():
    db.session.expire_all()
    return db.session.execute(sa.select(Document)).scalar_one()


def test_a_pdf_is_stored_encrypted_and_comes_back_whole(app, client, case_uid):
    response = _upload(client, case_uid, PDF)
    assert response.status_code == 302
    document = _only_document()
    stored = os.path.join(app.instance_path, "documents", document.storage_name)
    assert b"canary-quote" not in Path(stored).read_bytes()
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    download = client.get(f"/applications/{case_uid}/documents/{document.uid}")
    assert download.get_data() == PDF
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "quote.pdf" in client.get(f"/applications/{case_uid}").get_data(as_text=True)


def test_photos_lose_their_location_and_camera_data(client, case_uid):
    original = _jpeg_with_gps()
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
    response = _upload(client, case_uid, data, "quote.pdf")
    assert response.status_code == 400
    assert "Only PDF, PNG and JPEG files are accepted." in response.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0


def test_a_file_over_the_limit_is_refused_clearly(app, client, case_uid):
    app.config["HRDFUND_MAX_DOCUMENT_BYTES"] = 1000
    response = _upload(client, case_uid, PDF + b"0" * 1000)
    assert response.status_code == 400
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


def test_an_image_over_forty_megapixels_is_refused_before_decoding(client, case_uid):
    response = _upload(client, case_uid, _png_header(8000, 6000), "big.png", "evidence")
    assert response.status_code == 400
    assert "too large" in response.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0


def test_invisible_and_c1_control_characters_leave_the_name(client, case_uid):
    _upload(client, case_uid, PDF, "invoice\u202egnp\u200b\x85\x9f.exe")
    assert _only_document().filename == "invoicegnp.pdf"


def test_a_ciphertext_moved_to_another_document_does_not_decrypt(app, client, case_uid):
    _upload(client, case_uid, PDF, "a.pdf")
    _upload(client, case_uid, PDF, "b.pdf")
    first, second = db.session.execute(sa.select(Document).order_by(Document.id)).scalars()
    folder = Path(app.instance_path, "documents")
    shutil.copyfile(folder / first.storage_name, folder / second.storage_name)
    assert read_document(first) == PDF
    with pytest.raises(DecryptionError):
        read_document(second)


def test_a_failed_write_leaves_no_file_behind(app, client, case_uid, monkeypatch):
    class FailingCipher:
        def encrypt_bytes(self, data, aad):
            raise OSError("disk full")

    monkeypatch.setattr(documents, "cipher", FailingCipher)
    assert _upload(client, case_uid, PDF).status_code == 500
    assert list(Path(app.instance_path, "documents").iterdir()) == []
    assert db.session.execute(sa.select(sa.func.count(Document.id))).scalar() == 0
