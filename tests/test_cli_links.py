"""The command line links only what belongs together: a donor account to its donor's fund,
a donor to donor accounts only, an organisation to partner accounts only, a report to a
pool of the fund named; anything else exits 1 with the reason, and nothing is created."""

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.auth import services as auth_services
from hrdfund.auth.models import User
from hrdfund.core.extensions import db
from hrdfund.pools import services as pools
from hrdfund.reports.data import build_report
from hrdfund.reports.periods import parse_period
from tests.conftest import PASSWORD, MoneyWorld, login


@pytest.fixture
def two_funds(fund, make_fund, make_user, make_donor):
    """Fund A (the test's fund) with a donor and a pool; fund B with a donor and a pool of
    the same name."""
    world = MoneyWorld(fund, make_user, make_donor)
    other = make_fund("Fund B")
    other_donor = make_donor("Donor of B", other.id)
    other_manager = make_user("manager", fund_id=other.id)
    other_pool = pools.create_pool(other_donor, other_manager, world.eur.name, "EUR")
    pools.record_contribution(other_pool, other_manager, Decimal("50"), "EUR", date(2026, 1, 2))
    db.session.commit()
    return {"a": fund, "b": other, "world": world, "b_donor": other_donor, "b_pool": other_pool}


def _create(runner, *args):
    return runner.invoke(
        args=["hrdfund", "create-user", "--password", PASSWORD, "--login", "newcomer", *args]
    )


def _nobody_created():
    return db.session.execute(sa.select(User).where(User.login == "newcomer")).first() is None


@pytest.mark.parametrize(
    "args, reason",
    [
        (
            ["--role", "donor", "--fund", "Fund B", "--donor", "{a_donor}"],
            "belongs to the fund 'Test Fund', not 'Fund B'",
        ),
        (["--role", "donor"], "a donor account needs --donor ID"),
        (["--role", "donor", "--donor", "999"], "no donor has the id 999"),
        (["--role", "donor", "--donor", "{a_donor}", "--fund", "Nope"], "no fund is named"),
        (["--role", "manager", "--donor", "{a_donor}"], "--donor is for donor accounts only"),
        (["--role", "manager"], "there are several funds: name one with --fund"),
        (["--role", "finance", "--fund", "Nope"], "no fund is named 'Nope'"),
        (["--role", "donor", "--donor", "{a_donor}", "--organisation", "1"], "partner accounts"),
        (["--role", "partner"], "a partner account needs --organisation ID"),
        (["--role", "partner", "--organisation", "999"], "no partner organisation has the id"),
        (["--role", "applicant", "--fund", "Fund B"], "applicants, partners and the network"),
        (["--role", "network_admin", "--fund", "Fund B"], "administrator belong to no fund"),
    ],
)
def test_create_user_refuses_links_that_do_not_belong_together(runner, two_funds, args, reason):
    args = [a.format(a_donor=two_funds["world"].donor.id) for a in args]
    result = _create(runner, *args)
    assert result.exit_code == 1, result.output
    assert reason in result.output
    assert "Traceback" not in result.output
    assert _nobody_created()


def test_a_donor_account_belongs_to_its_donors_fund(app, runner, two_funds):
    result = _create(runner, "--role", "donor", "--donor", str(two_funds["b_donor"].id))
    assert result.exit_code == 0, result.output
    user = auth_services.find_user("newcomer")
    assert user.fund_id == two_funds["b"].id and user.donor_id == two_funds["b_donor"].id
    client = app.test_client()
    login(client, user)
    portal = client.get("/donor").get_data(as_text=True)
    assert two_funds["b_pool"].uid in portal and two_funds["world"].eur.uid not in portal


def test_the_networks_administrator_belongs_to_no_fund(app, runner, two_funds):
    """Made on the command line (the first one of an instance), it manages the funds and
    lands on their page."""
    result = _create(runner, "--role", "network_admin")
    assert result.exit_code == 0, result.output
    assert "TOTP enrolment secret" in result.output
    user = auth_services.find_user("newcomer")
    assert user.fund_id is None
    client = app.test_client()
    login(client, user)
    page = client.get("/network/funds").get_data(as_text=True)
    assert "Fund B" in page and "Test Fund" in page


def test_staff_of_the_only_fund_need_not_name_it(runner, fund):
    result = _create(runner, "--role", "reviewer")
    assert result.exit_code == 0, result.output
    assert auth_services.find_user("newcomer").fund_id == fund.id


def test_the_account_service_refuses_another_funds_donor(two_funds):
    with pytest.raises(auth_services.AccountLinkError):
        auth_services.create_user(
            "donor",
            "crossing",
            PASSWORD,
            fund_id=two_funds["b"].id,
            donor_id=two_funds["world"].donor.id,
        )
    db.session.rollback()
    assert auth_services.find_user("crossing") is None


def test_a_donor_linked_across_funds_behind_the_app_still_sees_nothing(app, two_funds, make_user):
    """Should a donor account of fund B name fund A's donor (an edit behind the app), the
    portal and the reports still keep to fund B's pools."""
    user = make_user("donor", fund_id=two_funds["b"].id, donor_id=two_funds["b_donor"].id)
    db.session.execute(
        sa.update(User).where(User.id == user.id).values(donor_id=two_funds["world"].donor.id)
    )
    db.session.commit()
    client = app.test_client()
    login(client, user)
    a_pool = two_funds["world"].eur
    assert a_pool.uid not in client.get("/donor").get_data(as_text=True)
    report = client.get(f"/donor/pools/{a_pool.uid}/report?period=2026&format=csv")
    assert report.status_code == 404


def test_the_report_command_takes_a_pool_of_the_fund_named(runner, two_funds, tmp_path):
    out = tmp_path / "report.csv"
    a_pool, b_pool = two_funds["world"].eur, two_funds["b_pool"]
    base = ["hrdfund", "report", "--period", "2026", "--format", "csv", "--out", str(out)]
    crossing = runner.invoke(args=[*base, "--pool", str(a_pool.id), "--fund", "Fund B"])
    assert crossing.exit_code == 1 and "is not a pool of the fund 'Fund B'" in crossing.output
    assert not out.exists()
    ambiguous = runner.invoke(args=[*base, "--pool", a_pool.name])
    assert ambiguous.exit_code == 1 and "--fund" in ambiguous.output
    assert not out.exists()
    named = runner.invoke(args=[*base, "--pool", a_pool.name, "--fund", "Fund B"])
    assert named.exit_code == 0, named.output
    digests = {p.id: build_report(p, parse_period("2026"))["digest"] for p in (a_pool, b_pool)}
    assert digests[a_pool.id] != digests[b_pool.id]
    assert f"digest {digests[b_pool.id]}" in named.output
    listed = runner.invoke(args=["hrdfund", "pools", "--fund", "Fund B"])
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [f"{b_pool.id}\t{b_pool.name}\tEUR\tFund B"]


def test_create_fund_refuses_a_name_taken(runner, fund):
    result = runner.invoke(args=["hrdfund", "create-fund", fund.name])
    assert result.exit_code == 1 and "already named" in result.output
    assert "Traceback" not in result.output
