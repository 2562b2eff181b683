"""Two servers of hrdfund, each with its own database, keys and fund, registered as each
other's partner: what the tests of packets between servers start from.

Server A is the suite's ``app`` (SQLite, or PostgreSQL on that leg); server B is another
start of the app on a SQLite file of its own, with its own encryption and audit keys. A
test works on one server at a time, inside ``on(server)``; rows never cross, only bytes.
"""

import base64
import contextlib
import os
import shutil
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from hrdfund import create_app
from hrdfund.auth import services as auth_services
from hrdfund.auth.models import Fund
from hrdfund.cases import documents
from hrdfund.cases.models import Consent, ConsentKind, DocumentKind, Urgency
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.network import keys
from hrdfund.reviews.models import Recommendation, Review, RiskLevel
from tests.conftest import PASSWORD, RequestIsolatedClient, make_config, make_costed_case
from tests.pdfs import make_pdf

CANARY_NAME = "Canary Zaphod Beeblebrox"
CANARY_THREAT = "Threat canary: the Vogon unit watches the house"
CANARY_DETAIL = "Detail canary: Magrathea clinic"
CANARY_DOCUMENT = "Document canary Slartibartfast"
CANARY_ASSESSMENT = "Assessment canary: Arthur Dent verified"
CANARIES = (CANARY_NAME, CANARY_THREAT, CANARY_DETAIL, CANARY_DOCUMENT, CANARY_ASSESSMENT)


def _key():
    return base64.b64encode(os.urandom(32)).decode()


def other_server(tmp_path, name, schema=None, **settings):
    """Another start of the app: its own SQLite file, folder and keys, tables made (as a
    copy of ``schema``, the suite's empty SQLite database, when given)."""
    path = tmp_path / (name + ".sqlite3")
    if schema is not None:
        shutil.copyfile(schema, path)
    config = make_config(
        f"sqlite:///{path}",
        tmp_path / f"{name}-instance",
        SECRET_KEY=_key(),
        HRDFUND_ENCRYPTION_KEY=_key(),
        HRDFUND_AUDIT_KEY=_key(),
        **settings,
    )
    server = create_app(config)
    server.test_client_class = RequestIsolatedClient
    if schema is None:
        with on(server):
            db.create_all()
    return server


@contextlib.contextmanager
def on(server):
    """Work on ``server``: its context pushed, its session ended on leaving."""
    with server.app_context():
        try:
            yield
        finally:
            db.session.remove()


def count(*models):
    """How many rows each of ``models`` has, on the server whose context is current."""
    return {
        model.__name__: db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()
        for model in models
    }


@dataclass
class Side:
    """One server's fund, its staff (logins), and its fund's key line and fingerprint."""

    server: object
    fund_uid: str
    fund_name: str
    logins: dict = field(default_factory=dict)
    line: str = ""
    fingerprint: str = ""

    def fund(self):
        return db.session.execute(sa.select(Fund).where(Fund.uid == self.fund_uid)).scalar_one()

    def user(self, role):
        return _user(self.logins[role])

    def partner(self):
        return db.session.execute(
            sa.select(Fund).where(Fund.partner_of_id == self.fund().id)
        ).scalar_one()


def _user(login):
    from hrdfund.auth.models import User

    return db.session.execute(sa.select(User).where(User.login == login)).scalar_one()


def make_side(server, fund_name, prefix, fund=None):
    """A fund on ``server`` (``fund``, or a new one named ``fund_name``) with an
    administrator, a reviewer and a manager (second factor enrolled), and its keys."""
    with on(server):
        if fund is None:
            fund = Fund(name=fund_name)
            db.session.add(fund)
            db.session.commit()
        else:
            fund = db.session.merge(fund)
        side = Side(server, fund.uid, fund.name)
        for role in ("admin", "reviewer", "manager"):
            user = auth_services.create_user(role, f"{prefix}-{role}", PASSWORD, fund_id=fund.id)
            user.totp_confirmed_at = utcnow()
            side.logins[role] = user.login
        key = keys.make_keys(fund)
        side.line, side.fingerprint = keys.key_line(fund, key), key.fingerprint
        db.session.commit()
    return side


def register(side, other, name=None):
    """``side``'s administrator registers ``other``'s fund as a partner, by its key line and
    the fingerprint heard (its spoken part)."""
    with on(side.server):
        keys.register_partner(
            side.user("admin"),
            side.fund(),
            name or other.fund_name,
            other.line,
            keys.spoken(other.fingerprint),
        )
        db.session.commit()


def canary_case(side, name=CANARY_NAME, country="KE", category=Category.MEDICAL):
    """On ``side``'s server: a sent case whose defender agreed to referral, with canaries
    in its name, its threat, a detail, a document and an assessment. Returns its uid."""
    with on(side.server):
        fund = side.fund()
        case = make_costed_case(
            fund,
            category=category,
            urgency=Urgency.URGENT,
            defender_name=name,
            threat=CANARY_THREAT,
            country=country,
            details={"provider": CANARY_DETAIL, "treatment": "Surgery", "link_to_threat": "x"},
        )
        from hrdfund.cases.services import network_key

        case.network_key = network_key(name, country)
        db.session.add(
            Consent(
                application_id=case.id,
                kind=ConsentKind.REFERRAL,
                method="form",
                given_at=case.created_at,
            )
        )
        reviewer = side.user("reviewer")
        documents.store_document(
            documents.CleanUpload(make_pdf(CANARY_DOCUMENT), "application/pdf", "quote.pdf"),
            case,
            DocumentKind.QUOTE,
            reviewer,
        )
        review = Review(
            application_id=case.id,
            reviewer_id=reviewer.id,
            risk_level=RiskLevel.HIGH,
            recommendation=Recommendation.APPROVE,
            currency="EUR",
        )
        db.session.add(review)
        db.session.flush()
        review.assessment = CANARY_ASSESSMENT
        db.session.commit()
        return case.uid


@pytest.fixture(name="servers")
def servers_fixture(app, fund, tmp_path, sqlite_schema):
    """Fund A on the suite's server, fund B on another, each the other's partner, and a
    case at A with canaries everywhere."""
    a = make_side(app, None, "a", fund=fund)
    b_server = other_server(tmp_path, "b", sqlite_schema)
    b = make_side(b_server, "International Fund", "b")
    register(a, b)
    register(b, a, name="Local Fund")
    case = canary_case(a)
    yield {"a": a, "b": b, "case": case}
    with on(b_server):
        db.engine.dispose()
