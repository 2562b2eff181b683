"""Promises 20 to 26: encrypted columns, key rotation, uploads, no address or browser kept,
the private SQLite file, purge, and consent before a case is shared.

One test per promise of SECURITY.md, named after its number; docs/security.md maps each
to its test here and to the thorough tests (sweeps over every route, field and output)
elsewhere in the suite.
"""

import base64
import io
import logging
import os
import re
import stat
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image
from pypdf import PdfReader
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from hrdfund import SECRET_NAMES, create_app
from hrdfund.auth.models import User
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    Consent,
    ConsentKind,
    Document,
    Story,
)
from hrdfund.core.columns import utcnow
from hrdfund.core.crypto import DecryptionError, key_id
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.disbursements.services import reverse_disbursement
from hrdfund.reports import anonymise
from tests.clock import Clock
from tests.conftest import (
    PASSWORD,
    MoneyWorld,
    count_rows,
    jpeg_with_gps,
    login,
    pay,
    refused_page,
    session_contents,
    sign_up,
    signed_in,
    start_application,
    stored_bytes,
)
from tests.pdfs import make_pdf, xmp_packet
from tests.test_models import inventory_gaps

from .common import (
    PDF,
    RELOCATION,
    all_values,
    get_closed,
    read_pdf,
    relocation_case,
    upload_document,
)


def test_promise_20_sensitive_columns_are_aes_gcm_bound_to_their_row_keys_outside(
    app, app_config, fund, make_user, make_donor
):
    """Every column is classed and sensitive or financial ones hold ciphertext: AES-GCM
    under the configured key, with table, column and row as associated data, so a value
    moved elsewhere does not read; text in clear says why it is not free text; no key is
    ever written to the database."""
    assert inventory_gaps() == ([], [], [])
    applicant = make_user("applicant")
    first = relocation_case(fund, applicant, threat="canary-threat-2020")
    second = relocation_case(fund, applicant, threat="another threat")
    blob = db.session.execute(
        sa.text("SELECT threat FROM applications WHERE id = :i"), {"i": first.id}
    ).scalar()
    blob = bytes(blob)
    assert b"canary-threat" not in blob
    key = base64.b64decode(app_config["HRDFUND_ENCRYPTION_KEY"])
    assert blob[1:5] == key_id(key)
    aad = f"applications\x1fthreat\x1f{first.uid}".encode()
    assert AESGCM(key).decrypt(blob[5:17], blob[17:], aad) == b"canary-threat-2020"
    db.session.execute(
        sa.update(Application)
        .where(Application.id == second.id)
        .values(_threat=blob, _defender_work=blob)
    )
    db.session.commit()
    db.session.expire_all()
    moved = db.session.get(Application, second.id)
    for attribute in ("threat", "defender_work"):
        with pytest.raises(DecryptionError):
            getattr(moved, attribute)
    # What finance types about a payment is ciphertext too: a reversal's reason can name
    # the defender or the place; the reference is matched through a keyed index.
    world = MoneyWorld(fund, make_user, make_donor)
    payment = pay(world, world.grant("500"), "200", instalment=None, reference="TRF-2020")
    reverse_disbursement(payment, world.finance, "canary-reason-2020, back in Mombasa")
    db.session.commit()
    uid, reason, reference = db.session.execute(
        sa.text("SELECT uid, reason, reference FROM disbursements WHERE reversal_of_id = :p"),
        {"p": payment.id},
    ).one()
    for column, stored, typed in (
        ("reason", reason, b"canary-reason-2020, back in Mombasa"),
        ("reference", reference, b"TRF-2020"),
    ):
        stored = bytes(stored)
        assert typed not in stored and stored[1:5] == key_id(key)
        aad = f"disbursements\x1f{column}\x1f{uid}".encode()
        assert AESGCM(key).decrypt(stored[5:17], stored[17:], aad) == typed
    everything = all_values()
    for name in SECRET_NAMES:
        value = app_config[name]
        assert value not in everything, name
        assert base64.b64decode(value).decode("latin-1") not in everything, name


def test_promise_21_key_rotation(app, app_config, make_user):
    """Every ciphertext names its key; `flask hrdfund rotate-keys` writes every value again
    under the new key, after which the old key can go and everything still reads."""
    old = app_config["HRDFUND_ENCRYPTION_KEY"]
    new = base64.b64encode(os.urandom(32)).decode()
    user = make_user("applicant", contact="Signal canary-contact-2121")

    def stored():
        return bytes(db.session.scalar(sa.select(User._contact).where(User.id == user.id)))

    assert stored()[1:5] == key_id(base64.b64decode(old))
    db.session.remove()
    for keys, command in (({"HRDFUND_ENCRYPTION_OLD_KEYS": old}, "rotate-keys"), ({}, None)):
        other = create_app(dict(app_config, HRDFUND_ENCRYPTION_KEY=new, **keys))
        with other.app_context():
            try:
                if command:
                    result = other.test_cli_runner().invoke(args=["hrdfund", command])
                    assert result.exit_code == 0, result.output
                else:  # the old key is gone
                    assert stored()[1:5] == key_id(base64.b64decode(new))
                    assert db.session.get(User, user.id).contact == "Signal canary-contact-2121"
            finally:
                db.session.remove()
                db.engine.dispose()


def test_promise_22_uploads_are_checked_cleaned_encrypted_and_served_as_attachments(
    app, client, make_user, fund
):
    """A web page named .pdf is refused; a photo named .pdf is taken for what it is, stored
    encrypted under a random name, and comes back as an attachment without its GPS and
    camera data; a PDF comes back without its author, title, producer and XMP; a picture
    past the pixel bound is refused; a body past the cap gets 413."""
    login(client, make_user("applicant"))
    uid = start_application(client, "medical")
    refused = upload_document(client, uid, b"<html><script>alert(1)</script></html>", "quote.pdf")
    refused = refused_page(client, refused, f"/applications/{uid}#documents")
    assert "but the file itself is not a PDF, PNG or JPEG" in refused.get_data(as_text=True)
    photo = jpeg_with_gps("canary-camera-note-2222")
    assert (
        upload_document(client, uid, photo, "IMG_0001 near home.pdf", "evidence").status_code == 302
    )
    document = db.session.execute(sa.select(Document)).scalar_one()
    assert document.content_type == "image/jpeg" and document.filename == "IMG_0001 near home.jpg"
    assert re.fullmatch(r"[0-9a-f]{32}", document.storage_name)
    folder = Path(app.instance_path, "documents")
    stored = stored_bytes(app, document.id)
    assert stored and not stored.startswith(b"\xff\xd8\xff") and b"canary-camera" not in stored
    if db.engine.dialect.name == "sqlite":  # PostgreSQL keeps documents in the database
        assert os.listdir(folder) == [document.storage_name]
        assert stat.S_IMODE((folder / document.storage_name).stat().st_mode) == 0o600
    else:
        assert not folder.exists() or not os.listdir(folder)
    download = client.get(f"/applications/{uid}/documents/{document.uid}")
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert b"canary-camera" not in download.data
    with Image.open(io.BytesIO(download.data)) as image:
        assert image.size == (32, 24)
        assert 0x8825 not in image.getexif() and 0x010E not in image.getexif()
    boundary, body = encode_multipart(
        {
            "kind": "quote",
            "file": FileStorage(
                io.BytesIO(PDF + b"0" * app.config["MAX_CONTENT_LENGTH"]), "big.pdf"
            ),
        }
    )
    too_big = client.post(
        f"/applications/{uid}/documents",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert too_big.status_code == 413 and "File too large" in too_big.get_data(as_text=True)
    assert count_rows(Document) == 1

    signed = make_pdf(
        "canary-pdf-text-4417",
        info={"Author": "Canary Author 5531", "Title": "Canary Title", "Producer": "Word"},
        xmp=xmp_packet("Canary Author 5531"),
    )
    assert upload_document(client, uid, signed, "letter.pdf").status_code == 302
    pdf = db.session.execute(
        sa.select(Document).where(Document.content_type == "application/pdf")
    ).scalar_one()
    body = client.get(f"/applications/{uid}/documents/{pdf.uid}").data
    text, metadata = read_pdf(body)
    assert "canary-pdf-text-4417" in text, "the page is kept"
    assert not metadata and PdfReader(io.BytesIO(body)).xmp_metadata is None
    assert b"Canary Author" not in body and b"Canary Title" not in body

    huge = io.BytesIO()
    Image.new("1", (6000, 5000)).save(huge, "PNG")  # 30 million pixels, a few kilobytes
    refused = upload_document(client, uid, huge.getvalue(), "scan.png", "evidence")
    refused = refused_page(client, refused, f"/applications/{uid}#documents")
    assert "too large" in refused.get_data(as_text=True)
    assert count_rows(Document) == 2


def test_promise_23_no_address_or_browser_of_an_applicant_is_kept(
    app, client, make_user, fund, caplog
):
    """A defender signs up, applies, writes and uploads from a known address and browser:
    neither is in any table, the logs or the cookie, and no column could hold them or a
    precise place."""
    caplog.set_level(logging.DEBUG, logger="hrdfund")
    address, forwarded, agent = "198.51.100.77", "203.0.113.88", "CanaryBrowser/7.7 ua-2323"
    client.environ_base.update(
        {"REMOTE_ADDR": address, "HTTP_USER_AGENT": agent, "HTTP_X_FORWARDED_FOR": forwarded}
    )
    client.post("/login", data={"login": "river-23", "password": "a wrong password"})
    signed_up, made = sign_up(client)
    assert signed_up.location
    uid = start_application(client)
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "submit": "1"})
    assert client.post(f"/applications/{uid}", data={"body": "Hello"}).status_code == 302
    assert upload_document(client, uid, PDF).status_code == 302
    client.post("/logout")
    assert client.post("/login", data={"login": made, "password": PASSWORD}).location
    stored = all_values()
    assert made in stored, "the scan sees plain columns"
    for trace in (address, forwarded, "CanaryBrowser", "ua-2323"):
        assert trace not in stored, trace
        assert trace not in caplog.text, trace
    assert "_id" not in session_contents(app, client), "no hash of address and browser"
    precise = re.compile(
        r"(^|_)(ip|ip_address|remote_addr|user_agent|agent|browser|latitude|longitude|lat|lng"
        r"|gps|street|address|postcode|zip|city)($|_)"
    )
    columns = [f"{t.name}.{c.name}" for t in db.metadata.sorted_tables for c in t.columns]
    assert [name for name in columns if precise.search(name.split(".")[1])] == []
    assert Application.__table__.c.country.type.length == 2


@pytest.mark.parametrize("backend", ["sqlite"])  # SQLite's own file and pragmas
def test_promise_24_the_sqlite_file_is_private_and_deleted_data_is_overwritten(
    app, backend, make_user, make_fund
):
    """The database, its WAL and shared memory are 0600; every connection enforces foreign
    keys and secure delete: a deleted value is gone from the file, not just unlinked."""
    doomed = "canary-fund-to-delete-2424"
    fund_id = make_fund(doomed).id
    make_user("applicant")
    path = db.engine.url.database
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            assert stat.S_IMODE(os.stat(path + suffix).st_mode) == 0o600, suffix
    for _ in range(2):
        db.engine.dispose()
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(sa.text("PRAGMA secure_delete")).scalar() == 1
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.insert(Application.__table__).values(
                uid="promise24orphan00000",
                fund_id=fund_id + 999,
                category="legal",
                status="draft",
                urgency="normal",
                currency="EUR",
                dependants_count=0,
                created_at=datetime(2026, 1, 1),
            )
        )
    db.session.rollback()

    def file_bytes():
        db.session.remove()
        connection = db.engine.raw_connection()
        try:
            connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
        return b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if os.path.exists(p))

    assert b"canary-fund-to-delete" in file_bytes(), "the scan sees the file"
    db.session.execute(sa.text("DELETE FROM funds WHERE name = :n"), {"n": doomed})
    db.session.commit()
    assert b"canary-fund-to-delete" not in file_bytes()


def test_promise_25_purge(app, runner, fund, make_user):
    """`flask hrdfund purge --dry-run` changes nothing; `purge` reduces a case closed longer
    ago than the retention period to its figures; the audit chain still verifies."""
    app.config["RETENTION_DAYS"] = 30
    applicant = make_user("applicant")
    case = relocation_case(
        fund, applicant, defender_name="canary-name-2525", threat="canary-threat-2525"
    )
    closed = utcnow() - timedelta(days=31)
    case.status, case.closed_at = ApplicationStatus.WITHDRAWN, closed
    recent = relocation_case(fund, applicant, defender_name="canary-name-2526")
    db.session.commit()
    dry = runner.invoke(args=["hrdfund", "purge", "--dry-run"])
    assert "1 cases to reduce" in dry.output and "nothing changed" in dry.output
    db.session.expire_all()
    assert db.session.get(Application, case.id).defender_name == "canary-name-2525"
    result = runner.invoke(args=["hrdfund", "purge", "--yes"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    kept = db.session.get(Application, case.id)
    assert kept.defender_name is None and kept.threat is None and kept.purged_at
    assert kept.category == Category.RELOCATION and kept.region == "East Africa"
    assert db.session.get(Application, recent.id).defender_name == "canary-name-2526"
    check = runner.invoke(args=["hrdfund", "check"])
    assert check.exit_code == 0, check.output


def test_promise_26_sharing_a_case_needs_the_defenders_recorded_consent(
    app, client, make_user, make_donor, fund
):
    """A partner cannot refer a defender without recording consent; a donor's report lists
    a funded case, and shows its story, only while the defender's consent stands."""
    login(client, make_user("partner"))
    refused = client.get(
        "/apply/new", query_string={"category": "medical", "consent_method": "phone"}
    )
    assert "needs the defender&#39;s consent" in refused.get_data(as_text=True)
    assert count_rows(Application) == 0
    referred = start_application(client, "medical", consent="y", consent_method="phone")
    recorded = db.session.execute(sa.select(Consent)).scalar_one()
    assert recorded.kind == ConsentKind.PARTNER_SUBMISSION and recorded.method == "phone"
    assert (
        recorded.application_id
        == db.session.execute(
            sa.select(Application.id).where(Application.uid == referred)
        ).scalar_one()
    )

    world = MoneyWorld(fund, make_user, make_donor)
    with Clock().on(datetime(2026, 2, 3, 10)):
        grant = world.grant("1000")
        pay(world, grant, "400", instalment=None, paid_on=date(2026, 2, 3))
    donor = signed_in(app, make_user("donor", donor_id=world.donor.id))
    code = anonymise.donor_code(world.donor.id, grant.uid, 2026)
    story_text = "A journalist kept reporting from a safe town"

    def outputs(period, day):
        url = f"/donor/pools/{world.eur.uid}/report?period={period}&format="
        with Clock().on(day):
            csv_text = get_closed(donor, url + "csv").get_data(as_text=True)
            pdf_text, _metadata = read_pdf(get_closed(donor, url + "pdf").get_data())
        return csv_text, " ".join(pdf_text.split())

    # February's report, issued in March: no consent, so not listed.
    csv_text, pdf_text = outputs("2026-02", datetime(2026, 3, 10, 9))
    assert code not in csv_text and "Not listed" in csv_text
    with Clock().on(datetime(2026, 4, 11, 9)):
        consent = Consent(
            application_id=grant.application_id,
            kind=ConsentKind.STORY,
            donor_id=world.donor.id,
            method="form",
            given_at=utcnow(),
        )
        db.session.add(consent)
        db.session.flush()
        story = Story(
            application_id=grant.application_id,
            donor_id=world.donor.id,
            consent_id=consent.id,
            written_by_id=world.m1.id,
            approved_by_id=world.m2.id,
            approved_at=utcnow(),
        )
        story.text = story_text
        db.session.add(story)
        db.session.commit()
        pay(world, grant, "300", instalment=None, paid_on=date(2026, 4, 11))
    # April's report (another quarter: the first one's lists no line, February's one grant
    # not listed), issued once April ended: the consent stands, so listed, with the story.
    csv_text, pdf_text = outputs("2026-04", datetime(2026, 5, 2, 9))
    assert code in csv_text and story_text in pdf_text
    with Clock().on(datetime(2026, 5, 3, 9)):
        consent.withdrawn_at = utcnow()
        db.session.commit()
    # Withdrawn: neither the line nor the story in any report downloaded afterwards.
    csv_text, pdf_text = outputs("2026-04", datetime(2026, 5, 4, 9))
    assert code not in csv_text and story_text not in pdf_text
    assert "Not listed" in csv_text
