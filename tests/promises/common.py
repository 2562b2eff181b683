"""What several promise tests share: the repository's folder, a PDF and a complete
relocation application to send, what a framework's debug page would show, and small
helpers."""

import io
import re
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from flask import request
from pypdf import PdfReader

from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from tests.pdfs import make_pdf

ROOT = Path(__file__).resolve().parent.parent.parent


PDF = make_pdf("canary-pdf-text-4417")


#: A complete relocation application, as a defender types it.
RELOCATION = {
    "country": "KE",
    "gender": "woman",
    "urgency": "normal",
    "defender_work": "Documents evictions for land defenders",
    "threat": "Death threats after a radio interview",
    "details-scope": "region",
    "details-destination_country": "UG",
    "details-people": "2",
    "details-months": "6",
    "details-stay_plan": "Visa on arrival, then a permit",
    "details-security_plan": "Travel with a partner escort",
    "details-exit_plan": "Return when the trial ends",
    "currency": "KES",
    "budget-0-description": "Rent for six months",
    "budget-0-amount": "120000",
    "dependants-0-relation": "daughter",
    "dependants-0-age": "7",
    "references-0-name": "Reference One",
    "references-0-contact": "via the network",
    "references-1-name": "Reference Two",
    "references-1-contact": "Signal",
}


def get_closed(client, path, **kwargs):
    """GET ``path`` and close the response (static files hold a file open)."""
    with client.get(path, **kwargs) as response:
        response.get_data()
    return response


def relocation_case(fund, applicant=None, status=ApplicationStatus.SUBMITTED, **fields):
    """A relocation case of ``applicant`` in ``fund``, written straight to the database."""
    case = Application(
        fund_id=fund.id,
        applicant_id=applicant.id if applicant else None,
        category=Category.RELOCATION,
        status=status,
        currency="EUR",
        country="KE",
        region="East Africa",
        submitted_at=None if status == ApplicationStatus.DRAFT else datetime(2026, 3, 1),
    )
    for name, value in fields.items():
        setattr(case, name, value)
    db.session.add(case)
    db.session.commit()
    return case


def upload_document(client, uid, data, name="quote.pdf", kind="quote"):
    return client.post(
        f"/applications/{uid}/documents",
        content_type="multipart/form-data",
        data={"kind": kind, "file": (io.BytesIO(data), name)},
    )


def all_values():
    """Every value of every table as text, binary values byte for byte."""
    db.session.expire_all()
    parts = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)):
            for value in row:
                if isinstance(value, bytes | memoryview):
                    parts.append(bytes(value).decode("latin-1"))
                else:
                    parts.append(str(value))
    return "\n".join(parts)


def fill_rule(rule, values, default="dummy"):
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values.get(m[1], default), rule.rule)


def add_crash_route(app):
    """A view that fails with what was typed in its message, as a bug would."""

    @app.post("/promise-crash")
    def promise_crash():
        raise RuntimeError("failed on " + request.form.get("note", ""))


def read_pdf(body):
    reader = PdfReader(io.BytesIO(body))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text, reader.metadata
