"""Every route that names a case, a document or a payment answers an applicant or a partner
who does not own it as it answers an id that does not exist (404, or 403 for a staff-only
step): the ids of someone else's objects open nothing and reveal nothing."""

import io

import pytest
import sqlalchemy as sa

from hrdfund.cases.models import Document
from hrdfund.core.extensions import db
from hrdfund.ledger.models import Disbursement
from tests.conftest import login
from tests.pdfs import PDF
from tests.test_case_outcome import granted  # noqa: F401  (fixture)


@pytest.mark.parametrize("intruder", ["applicant", "partner"])
def test_someone_elses_ids_open_nothing(app, client, granted, make_user, intruder):  # noqa: F811
    """Owner's case with a document and a payment; the intruder tries every scoped route."""
    owner = granted["applicant"]
    case_uid = granted["case"].uid
    login(client, owner)
    client.post(
        f"/applications/{case_uid}/documents",
        content_type="multipart/form-data",
        data={"kind": "quote", "file": (io.BytesIO(PDF), "q.pdf")},
    )
    ids = {
        "uid": case_uid,
        "doc": db.session.execute(sa.select(Document.uid)).scalar_one(),
        "payment": granted["paid"].uid,
    }
    before = {
        "documents": db.session.execute(sa.select(sa.func.count(Document.id))).scalar(),
        "payments": db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar(),
    }
    stranger = app.test_client()
    login(stranger, make_user(intruder))
    scoped = [r for r in app.url_map.iter_rules() if r.arguments & {"uid", "doc"}]
    assert len(scoped) >= 5
    for rule in scoped:
        values = {"uid": ids["uid"], "doc": ids["doc"]}
        if rule.endpoint.startswith("disbursements"):
            values["uid"] = ids["payment"]
        path = rule.rule
        for name, value in values.items():
            path = path.replace(f"<{name}>", value)
        fake = path.replace(values["uid"], "0" * 20).replace(ids["doc"], "1" * 20)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            # An old address is followed to its new one (tests/test_moved_urls.py).
            response = stranger.open(
                path, method=method, data={"body": "x", "kind": "quote"}, follow_redirects=True
            )
            # A staff-only step refuses the role (403) whatever the id; anything else is a
            # 404, exactly as for an id that does not exist.
            unknown = stranger.open(
                fake, method=method, data={"body": "x", "kind": "quote"}, follow_redirects=True
            )
            assert response.status_code in (403, 404), (method, path, response.status_code)
            assert response.status_code == unknown.status_code, (method, path)
    after = {
        "documents": db.session.execute(sa.select(sa.func.count(Document.id))).scalar(),
        "payments": db.session.execute(sa.select(sa.func.count(Disbursement.id))).scalar(),
    }
    assert after == before
