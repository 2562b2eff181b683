"""The demo world: loads consistently, gives every role an account that signs in, and
`flask hrdfund check` notices when its money or its audit trail is edited behind its back."""

import json
import os
import stat

import pytest
import sqlalchemy as sa

from hrdfund import create_app
from hrdfund.applications.models import Application, ApplicationStatus, Category
from hrdfund.auth.models import User
from hrdfund.disbursements.ledger import pool_figures
from hrdfund.disbursements.models import Disbursement
from hrdfund.extensions import db
from tests.conftest import login

SCALE = 120


@pytest.fixture
def demo(app, runner):
    """Load the demo world at a small scale; return the accounts written."""
    result = runner.invoke(args=["hrdfund", "demo-data", "--scale", str(SCALE)])
    assert result.exit_code == 0, result.output
    path = os.path.join(app.instance_path, "demo-accounts.json")
    with open(path) as fh:
        return {"path": path, "accounts": json.load(fh)}


def test_demo_world_passes_the_ledger_and_audit_check(demo, runner):
    """A freshly loaded demo world is healthy by every rule `check` knows."""
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_demo_world_covers_every_status_and_category(demo):
    """Staff see cases in every state of the life cycle and every kind of support."""
    statuses = set(db.session.execute(sa.select(Application.status).distinct()).scalars())
    categories = set(db.session.execute(sa.select(Application.category).distinct()).scalars())
    assert statuses == set(ApplicationStatus)
    assert categories == set(Category)
    assert db.session.execute(sa.select(sa.func.count(Application.id))).scalar() == SCALE


def test_demo_pools_hold_money_and_none_is_overdrawn(demo):
    """Every pool received money, committed some, paid some, and none is below zero."""
    figures = pool_figures()
    assert len(figures) >= 6
    assert all(f["available"] >= 0 for f in figures.values())
    assert sum(f["disbursed"] for f in figures.values()) > 0
    assert any(f["committed"] > 0 for f in figures.values())


def test_accounts_file_lists_every_role_privately(demo):
    """The accounts file has each role (several applicants, two donors, two managers) and
    only its owner can read it."""
    roles = [a["role"] for a in demo["accounts"]]
    for role in ("partner", "reviewer", "finance", "admin"):
        assert role in roles
    assert roles.count("applicant") >= 3
    assert roles.count("donor") == 2
    assert roles.count("manager") == 2
    assert stat.S_IMODE(os.stat(demo["path"]).st_mode) == 0o600
    for account in demo["accounts"]:
        assert bool(account["totp_secret"]) == (account["role"] not in ("applicant", "partner"))


@pytest.mark.parametrize("role", ["applicant", "partner", "manager", "donor"])
def test_demo_accounts_sign_in(demo, client, role):
    """The password (and code) in the accounts file open the account."""
    account = next(a for a in demo["accounts"] if a["role"] == role)
    user = db.session.execute(sa.select(User).where(User.login == account["login"])).scalar_one()
    login(client, user, password=account["password"])
    assert client.get("/", follow_redirects=True).status_code == 200


def test_two_donors_each_see_their_own_pools(demo, client):
    """Each demo donor's portal lists its own pools and none of the other donor's."""
    donors = [a for a in demo["accounts"] if a["role"] == "donor"]
    pages = []
    for account in donors:
        user = db.session.execute(
            sa.select(User).where(User.login == account["login"])
        ).scalar_one()
        login(client, user, password=account["password"])
        pages.append(client.get("/donor").get_data(as_text=True))
        client.post("/logout")
    assert "Emergency Protection Pool" in pages[0]
    assert "Emergency Protection Pool" not in pages[1]
    assert "Human Rights Defenders Programme" in pages[1]
    assert "Human Rights Defenders Programme" not in pages[0]


def test_check_fails_after_a_disbursement_amount_is_edited(demo, runner):
    """Raising one payment's amount in the database is caught and the row is named."""
    target = db.session.execute(sa.select(sa.func.min(Disbursement.id))).scalar()
    db.session.execute(
        sa.text("UPDATE disbursements SET amount = amount + 1 WHERE id = :id"), {"id": target}
    )
    db.session.commit()
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code != 0
    assert f"disbursements row {target} was altered" in result.output


def test_check_fails_after_an_audit_entry_is_edited(demo, runner):
    """Rewriting an audit entry's payload breaks the chain at that entry."""
    db.session.execute(sa.text("UPDATE audit_events SET payload = '{}' WHERE seq = 3"))
    db.session.commit()
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code != 0
    assert "audit entry 3 was altered" in result.output


def test_if_empty_leaves_an_existing_database_alone(demo, runner):
    """`make run` calls demo-data --if-empty every time; the second call adds nothing."""
    before = db.session.execute(sa.select(sa.func.count(User.id))).scalar()
    result = runner.invoke(args=["hrdfund", "demo-data", "--if-empty"])
    assert result.exit_code == 0
    assert "not loaded" in result.output
    assert db.session.execute(sa.select(sa.func.count(User.id))).scalar() == before


def test_demo_data_refuses_production(app_config):
    """No demo account can exist in production."""
    production = create_app({**app_config, "ENV_NAME": "production"})
    result = production.test_cli_runner().invoke(args=["hrdfund", "demo-data"])
    assert result.exit_code != 0
    assert "never loaded in production" in result.output
