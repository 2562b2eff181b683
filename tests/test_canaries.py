"""Canary strings typed into every sensitive field never reach the logs, the cookies, the
raw database file or another applicant's pages."""

import io
import logging
import os
from pathlib import Path

import pytest

from tests.conftest import login, start_application
from tests.pdfs import make_pdf

CANARIES = {
    "defender_name": "canary-name-9101",
    "defender_work": "canary-work-9102",
    "threat": "canary-threat-9103",
    "urgency_reason": "canary-urgency-9104",
    "other_funders": "canary-funders-9105",
    "details-stay_plan": "canary-stay-9106",
    "details-security_plan": "canary-security-9107",
    "details-exit_plan": "canary-exit-9108",
    "details-host_organisation": "canary-host-9109",
    "budget-0-description": "canary-budget-9110",
    "dependants-0-relation": "canary-dep-9111",
    "references-0-name": "canary-ref-name-9112",
    "references-0-organisation": "canary-org-9113",
    "references-0-contact": "canary-ref-contact-9114",
}


@pytest.mark.parametrize("backend", ["sqlite"])  # reads the SQLite file and its WAL
def test_canaries_stay_inside_their_encrypted_fields(
    app, client, make_user, make_fund, fund, backend, caplog
):
    caplog.set_level(logging.DEBUG)
    owner = make_user("applicant")
    login(client, owner)
    client.post("/register")  # a signed-in visitor is sent home; nothing to log
    uid = start_application(client, "relocation")
    data = {
        **CANARIES,
        "budget-0-amount": "100",
        "country": "KE",
        "urgency": "urgent",
        "details-scope": "region",
        "details-destination_country": "UG",
        "details-people": "2",
        "details-months": "3",
        "references-1-name": "R2",
        "references-1-contact": "Signal",
        "save": "1",
    }
    assert client.post(f"/applications/{uid}/edit", data=data).status_code == 302
    sent = client.post(f"/applications/{uid}/edit", data={**data, "submit": "1"})
    assert sent.location == f"/applications/{uid}", sent.get_data(as_text=True)[-800:]
    client.post(f"/applications/{uid}", data={"body": "canary-message-9115"})
    client.post(
        f"/applications/{uid}/documents",
        content_type="multipart/form-data",
        data={
            "kind": "quote",
            "file": (io.BytesIO(make_pdf("canary-file-9116")), "canary-fn-9117.pdf"),
        },
    )
    page = client.get(f"/applications/{uid}/edit").get_data(as_text=True) + client.get(
        f"/applications/{uid}"
    ).get_data(as_text=True)
    assert "canary-message-9115" in page, "the owner reads their own words back"

    everything = list(CANARIES.values()) + [
        "canary-message-9115",
        "canary-file-9116",
        "canary-fn-9117",
    ]
    logs = caplog.text
    cookies = " ".join(f"{c.key}={c.value}" for c in client._cookies.values())
    database = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    raw = b"".join(Path(p).read_bytes() for p in (database, database + "-wal") if os.path.exists(p))
    documents = Path(app.instance_path, "documents")
    stored = b"".join(p.read_bytes() for p in documents.iterdir())
    stranger = app.test_client()
    login(stranger, make_user("applicant"))
    other_pages = "".join(
        stranger.get(p).get_data(as_text=True) for p in ("/my", f"/applications/{uid}", "/apply")
    )
    # Other roles outside the case: a partner that did not refer it, a donor of the fund,
    # staff of another fund. Their pages, and the 404s they get for the case, hold nothing.
    other_fund = make_fund("Other Fund")
    for role, paths in (
        ("partner", ("/referrals", f"/applications/{uid}", f"/applications/{uid}/edit")),
        ("donor", ("/donor", f"/applications/{uid}", "/pools")),
        ("manager", ("/cases", f"/applications/{uid}", "/reports/internal")),
    ):
        visitor = app.test_client()
        fields = {"fund_id": other_fund.id} if role == "manager" else {}
        login(visitor, make_user(role, **fields))
        for path in paths:
            response = visitor.get(path)
            assert response.status_code in (200, 302, 403, 404), (role, path)
            other_pages += response.get_data(as_text=True)
    for canary in everything:
        assert canary not in logs, canary
        assert canary not in cookies, canary
        assert canary.encode() not in raw, canary
        assert canary.encode() not in stored, canary
        assert canary not in other_pages, canary
