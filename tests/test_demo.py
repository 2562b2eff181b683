"""The demo world: loads consistently, gives every role an account that signs in, and
`flask hrdfund check` notices when its money or its audit trail is edited behind its back."""

import json
import os
import random
import sqlite3
import stat
from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from babel import Locale

from hrdfund import create_app
from hrdfund.auth.models import Fund, User
from hrdfund.cases.categories import CATEGORY_FIELDS
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    Consent,
    ConsentKind,
    Decision,
    DecisionOutcome,
    StatusChange,
)
from hrdfund.cases.states import TRANSITIONS
from hrdfund.core import geo
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.money import CURRENCIES, smallest_unit
from hrdfund.core.support import Category
from hrdfund.demo.rates import Rates
from hrdfund.directory import services as directory
from hrdfund.grants.decisions import approval_draws
from hrdfund.grants.models import Grant, Instalment
from hrdfund.grants.services import in_reporting_currency
from hrdfund.ledger.balances import pool_figures
from hrdfund.ledger.models import (
    Allocation,
    Contribution,
    Disbursement,
    ReceiptAnswer,
    ReceiptAnswerKind,
)
from hrdfund.network.models import Referral, ReferralStatus
from hrdfund.pools.eligibility import pool_mismatches
from hrdfund.pools.models import ExchangeRate, Pool
from hrdfund.reports import rollup
from hrdfund.reviews import network_check
from hrdfund.reviews.models import Review
from tests.conftest import edit_behind_the_app, login

SCALE = 120
S = ApplicationStatus


#: The demo world each backend's first test of the process loaded, as it was stored, put
#: back for the next tests: loading it takes 0.3 s on SQLite and 0.7 s on PostgreSQL.
LOADED = {}


class StoredWorld:
    """A database's rows and its accounts file, taken after a load and put back into an
    empty database of the same schema (and keys: the suite's apps share them)."""

    def __init__(self, app):
        with open(os.path.join(app.instance_path, "demo-accounts.json"), "rb") as fh:
            self.accounts_file = fh.read()
        if db.engine.dialect.name == "sqlite":
            self.copy = sqlite3.connect(":memory:")
            with db.engine.connect() as connection:
                connection.connection.driver_connection.backup(self.copy)
            return
        self.tables, self.sequences = [], {}
        with db.engine.connect() as connection:
            cursor = connection.connection.cursor()
            for table in db.metadata.sorted_tables:
                columns = _stored_columns(table)
                order = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
                query = f'COPY (SELECT {columns} FROM "{table.name}" ORDER BY {order}) TO STDOUT'
                with cursor.copy(query + " (FORMAT BINARY)") as copy:
                    self.tables.append((table, b"".join(bytes(part) for part in copy)))
            self.sequences = dict(
                connection.exec_driver_sql(
                    "SELECT sequencename, last_value FROM pg_sequences "
                    "WHERE schemaname = current_schema() AND last_value IS NOT NULL"
                ).all()
            )

    def put_back(self, app):
        db.session.remove()
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as connection:
                self.copy.backup(connection.connection.driver_connection)
        else:
            with db.engine.begin() as connection:
                cursor = connection.connection.cursor()
                for table, data in self.tables:
                    query = f'COPY "{table.name}" ({_stored_columns(table)}) FROM STDIN'
                    with cursor.copy(query + " (FORMAT BINARY)") as copy:
                        copy.write(data)
                for name, value in self.sequences.items():
                    connection.exec_driver_sql("SELECT setval(%s, %s)", (name, value))
        path = os.path.join(app.instance_path, "demo-accounts.json")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            fh.write(self.accounts_file)


def _stored_columns(table):
    """The columns a row is written with: all but those the database works out."""
    return ", ".join(f'"{c.name}"' for c in table.columns if c.computed is None)


@pytest.fixture
def demo(app, runner, backend):
    """The demo world at a small scale: loaded by the command for the process's first test
    of each backend, put back as it was stored for the others. Returns the accounts."""
    if backend in LOADED:
        LOADED[backend].put_back(app)
    else:
        result = runner.invoke(args=["hrdfund", "demo-data", "--scale", str(SCALE)])
        assert result.exit_code == 0, result.output
        assert f"{SCALE} applications" in result.output
        LOADED[backend] = StoredWorld(app)
    path = os.path.join(app.instance_path, "demo-accounts.json")
    with open(path) as fh:
        return {"path": path, "accounts": json.load(fh)}


def _user(login_name):
    return db.session.execute(sa.select(User).where(User.login == login_name)).scalar_one()


def _all(query):
    return db.session.execute(query).scalars().all()


def test_demo_world_passes_the_ledger_and_audit_check(demo, runner):
    """A freshly loaded demo world is healthy by every rule `check` knows."""
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_demo_rates_are_nobodys_alone_and_its_money_keeps_what_it_was_weighed_against(demo):
    """Its finance user records the monthly rates and a manager confirms them, so finance
    pays at them and managers weigh approvals at them as the rules allow; its payments and
    first approvals keep what they were weighed against, as the application's own do."""
    rates = _all(sa.select(ExchangeRate))
    assert rates and all(r.confirmed_by_id not in (None, r.set_by_id) for r in rates)
    payments = _all(sa.select(Disbursement).where(Disbursement.reversal_of_id.is_(None)))
    assert payments and all(p.rate_tolerance_percent is not None for p in payments)
    foreign = [p for p in payments if p.currency_paid != p.pool.currency]
    assert foreign and all(p.table_rate == p.fx_rate and p.rate_entry_id for p in foreign)
    weighed = _all(sa.select(Decision).where(Decision.worth.is_not(None)))
    assert weighed and all(d.outcome == DecisionOutcome.APPROVE for d in weighed)
    assert all(d.weighed_rate_id or d.currency == d.worth_currency for d in weighed)


def _network_cases():
    """The cases demo/network.py writes as staff would, with only the answers its stories
    need: those of the referrals, and every case of the other member funds."""
    rows = db.session.execute(sa.select(Referral.application_id, Referral.linked_application_id))
    referred = {case_id for pair in rows for case_id in pair if case_id is not None}
    other_funds = db.session.execute(
        sa.select(Application.id)
        .join(Fund, Fund.id == Application.fund_id)
        .where(Fund.name != "Demo Protection Fund")
    ).scalars()
    return referred | set(other_funds)


def test_demo_world_covers_every_status_and_category(demo):
    """Staff see cases in every state of the life cycle and every kind of support, from
    many countries."""
    statuses = set(_all(sa.select(Application.status).distinct()))
    categories = set(_all(sa.select(Application.category).distinct()))
    countries = set(_all(sa.select(Application.country).distinct()))
    assert statuses == set(ApplicationStatus)
    assert categories == set(Category)
    assert len(countries) >= 25
    # The bulk of the demo, and the network's cases written by hand (demo/network.py).
    total = db.session.execute(sa.select(sa.func.count(Application.id))).scalar()
    assert total == SCALE + len(_network_cases())


def test_every_sent_demo_case_has_its_own_short_code(demo):
    """Staff can try finding a case by its short code: every case sent has one, no two
    the same, each of its fund's year of sending; drafts have none."""
    rows = db.session.execute(
        sa.select(Application.fund_id, Application.submitted_at, Application.code)
    ).all()
    sent = [row for row in rows if row.submitted_at is not None]
    assert sent and all(
        row.code and row.code.startswith(f"HRD{row.fund_id}-{row.submitted_at:%y}-") for row in sent
    )
    assert len({row.code for row in sent}) == len(sent)
    assert all(row.code is None for row in rows if row.submitted_at is None)


def test_every_sent_demo_case_has_a_budget_that_adds_up_to_what_it_asks(demo):
    """As the forms require at least one line: a case without one could not be recommended
    (a recommendation to approve names its amount line by line)."""
    cases = _all(
        sa.select(Application).where(
            Application.submitted_at.is_not(None), Application.purged_at.is_(None)
        )
    )
    assert cases
    for case in cases:
        lines = [line.amount for line in case.budget_lines]
        assert lines and sum(lines) == case.amount_requested, case.uid


def test_sent_cases_answer_their_category_questions(demo):
    """The case page shows the category's answers: every sent case has them all, under the
    names the application form uses, and decrypts."""
    sent = _all(
        sa.select(Application).where(
            Application.status != S.DRAFT, Application.id.not_in(_network_cases())
        )
    )
    for application in sent:
        required = {n for n, _, _, req in CATEGORY_FIELDS[application.category] if req}
        assert required <= set(application.details), application.category
        assert application.defender_name.startswith("Demo defender")
        assert len(application.references) == 2
        assert application.amount_requested == sum(b.amount for b in application.budget_lines)
        assert application.dependants_count == len(application.dependants)


def test_every_case_history_is_ordered_and_allowed(demo):
    """Timeliness figures make sense: created < submitted < first response < decided, all in
    the past, and each recorded step is a move the state table allows."""
    now = utcnow()
    steps = defaultdict(list)
    for change in _all(sa.select(StatusChange).order_by(StatusChange.id)):
        steps[change.application_id].append(change)
    for application in _all(sa.select(Application)):
        times = [
            t
            for t in (
                application.created_at,
                application.submitted_at,
                application.first_response_at,
                application.decided_at,
            )
            if t is not None
        ]
        assert times == sorted(set(times)), application.id
        assert max(times + [application.updated_at]) < now
        history = steps[application.id]
        assert history[0].from_status is None and history[0].to_status == S.DRAFT
        for before, after in zip(history, history[1:], strict=False):
            assert after.from_status == before.to_status
            assert after.to_status in TRANSITIONS[before.to_status]
            assert after.at > before.at
        assert history[-1].to_status == application.status


def test_approvals_follow_four_eyes_and_the_decided_amount(demo, app):
    """Worth the threshold or more in the reporting currency, at the fund's rate of the
    day of the first approval, two different managers approved; the reviewer who
    recommended never approved; the grant is the amount the managers approved."""
    threshold = Decimal(app.config["FOUR_EYES_THRESHOLD"])
    grants = _all(sa.select(Grant))
    worth = {}
    for grant in grants:
        approvals = _all(
            sa.select(Decision)
            .where(
                Decision.application_id == grant.application_id,
                Decision.outcome == DecisionOutcome.APPROVE,
            )
            .order_by(Decision.created_at)
        )
        day = approvals[0].created_at.date()
        worth[grant.id] = in_reporting_currency(grant.fund_id, grant.amount, grant.currency, day)
        managers = {d.manager_id for d in approvals}
        assert len(managers) == len(approvals) == (2 if worth[grant.id] >= threshold else 1)
        assert {d.amount for d in approvals} == {grant.amount}
        case = grant.application_id
        reviewed_by = Review.reviewer_id
        recommenders = set(_all(sa.select(reviewed_by).where(Review.application_id == case)))
        assert recommenders and not recommenders & managers
    assert any(v >= threshold for v in worth.values())
    assert any(v < threshold for v in worth.values())
    # Amounts in weaker currencies pass the threshold's number without reaching its worth.
    assert any(g.amount >= threshold > worth[g.id] for g in grants)


def test_every_approval_records_its_split_of_pools(demo):
    """A case waiting for its second manager shows the first manager's split; a grant's
    approvals recorded the split it draws."""
    approvals = _all(sa.select(Decision).where(Decision.outcome == DecisionOutcome.APPROVE))
    waiting = {
        a.id
        for a in _all(
            sa.select(Application).where(Application.status == S.AWAITING_SECOND_APPROVAL)
        )
    }
    assert waiting and approvals
    for decision in approvals:
        draws = approval_draws(decision)
        assert sum((part for _pool, part in draws), Decimal(0)) == decision.amount, decision.id
        assert len({pool for pool, _part in draws}) == len(draws)
        if decision.application_id not in waiting:
            grant = db.session.execute(
                sa.select(Grant).where(Grant.application_id == decision.application_id)
            ).scalar_one()
            assert sorted(draws) == sorted((a.pool_id, a.grant_amount) for a in grant.allocations)


def test_allocations_fit_their_pools(demo):
    """Every allocation respects its pool's categories, countries, regions, cap and date
    window, and adds up to its grant."""
    for grant in _all(sa.select(Grant)):
        assert sum(a.grant_amount for a in grant.allocations) == grant.amount
        for allocation in grant.allocations:
            reasons = pool_mismatches(
                allocation.pool, grant.application, allocation.amount, on=grant.approved_at.date()
            )
            assert reasons == [], (allocation.id, reasons)
    rates = _all(sa.select(Allocation.fx_rate).where(Allocation.fx_rate != 1))
    assert rates, "some grants draw on a pool in another currency"


def test_no_pool_is_ever_below_zero(demo):
    """Replaying each pool's contributions and commitments day by day, the money was always
    there before it was committed."""
    events = defaultdict(list)
    for c in _all(sa.select(Contribution)):
        events[c.pool_id].append((c.received_on, 0, -c.amount if c.reversal_of_id else c.amount))
    for a in _all(sa.select(Allocation)):
        events[a.pool_id].append((a.created_at.date(), 1, -a.amount))
    for pool_id, rows in events.items():
        balance = Decimal(0)
        for day, _, amount in sorted(rows):
            balance += amount
            assert balance >= 0, f"pool {pool_id} below zero on {day}"
    figures = pool_figures()
    assert len(figures) >= 6
    assert sum(f["disbursed"] for f in figures.values()) > 0
    currencies = set(_all(sa.select(Pool.currency)))
    assert {"EUR", "USD", "GBP", "SEK"} <= currencies


def test_payments_come_back_as_reversals_not_edits(demo):
    """A returned payment is a reversal row with a reason, on the same grant, allocation
    and pool, for no more than was paid."""
    original = sa.orm.aliased(Disbursement)
    query = sa.select(Disbursement, original).join(
        original, original.id == Disbursement.reversal_of_id
    )
    rows = db.session.execute(query).all()
    assert rows
    for reversal, paid in rows:
        assert reversal.reason
        assert (reversal.grant_id, reversal.allocation_id, reversal.pool_id) == (
            paid.grant_id,
            paid.allocation_id,
            paid.pool_id,
        )
        assert reversal.amount <= paid.amount
        # As the app writes one: the payment's reference, no payee details of its own.
        assert reversal.reference == paid.reference and reversal.payee_details is None


def test_the_demo_pays_currencies_without_cents_in_whole_units(demo):
    """Francs and shillings are paid, received and planned whole, as a bank pays them: the
    demo pays some of its defenders in XOF, XAF and UGX."""
    paid = db.session.execute(sa.select(Disbursement.amount_paid, Disbursement.currency_paid)).all()
    received = db.session.execute(
        sa.select(ReceiptAnswer.amount_received, ReceiptAnswer.currency_received).where(
            ReceiptAnswer.amount_received.is_not(None)
        )
    ).all()
    planned = db.session.execute(sa.select(Instalment.amount, Instalment.currency)).all()
    without_cents = [(a, c) for a, c in paid + received + planned if smallest_unit(c) == 1]
    assert {c for _, c in without_cents} & {"XOF", "XAF", "UGX"}
    assert [(a, c) for a, c in without_cents if a != a.to_integral_value()] == []


def test_what_the_payee_side_writes_fits_what_it_answers(demo):
    """A note says what happened in words that fit the answer: a fee kept beside
    "received less", nothing arrived beside "not received"."""
    answers = (
        db.session.execute(
            sa.select(ReceiptAnswer).where(ReceiptAnswer.answer != ReceiptAnswerKind.RECEIVED)
        )
        .scalars()
        .all()
    )
    kinds = {answer.answer for answer in answers}
    assert kinds == {ReceiptAnswerKind.LESS, ReceiptAnswerKind.NOT_RECEIVED}
    for answer in answers:
        nothing = "Nothing has reached" in answer.note or "document I do not have" in answer.note
        assert nothing == (answer.answer == ReceiptAnswerKind.NOT_RECEIVED), answer.note


def test_accounts_file_lists_every_role_privately(demo):
    """The accounts file has each role (several applicants, two donors, two managers of the
    demo fund, the network's administrator, and a reviewer, manager, finance and admin of
    each other member fund) and only its owner can read it."""
    roles = [a["role"] for a in demo["accounts"]]
    own = [
        a["role"]
        for a in demo["accounts"]
        if a["login"][5:].split("-")[0] not in ("local", "regional")
    ]
    for role in ("partner", "reviewer", "finance", "admin", "network_admin"):
        assert own.count(role) == 1
    assert roles.count("applicant") >= 3
    assert roles.count("donor") == 2
    assert own.count("manager") == 2
    for tag in ("local", "regional"):
        staff = sorted(a["role"] for a in demo["accounts"] if a["login"].startswith(f"demo-{tag}-"))
        assert staff == ["admin", "finance", "manager", "reviewer"]
    assert stat.S_IMODE(os.stat(demo["path"]).st_mode) == 0o600
    for account in demo["accounts"]:
        assert bool(account["totp_secret"]) == (account["role"] != "applicant")


def test_every_demo_account_signs_in(demo, app):
    """The password (and code) in the accounts file open each account through the forms."""
    for account in demo["accounts"]:
        client = app.test_client()
        login(client, _user(account["login"]), password=account["password"])
        home = client.get("/")
        assert home.status_code == 302 and "/login" not in home.location, account["login"]
        page = client.get(home.location)
        assert page.status_code == 200
        assert "Sign out" in page.get_data(as_text=True)


def test_bulk_defenders_cannot_sign_in(demo):
    """The defenders behind the other cases exist as accounts without a password."""
    logins = {a["login"] for a in demo["accounts"]}
    others = _all(sa.select(User).where(User.login.not_in(logins)))
    assert others
    assert all(u.password_hash is None for u in others)


def test_demo_accounts_have_cases_to_follow(demo):
    """Each demo applicant follows cases in several states; the partner's organisation
    referred cases with the defender's consent; each donor funds at least two pools."""
    accounts = demo["accounts"]
    for account in (a for a in accounts if a["role"] == "applicant"):
        user = _user(account["login"])
        statuses = set(
            _all(sa.select(Application.status).where(Application.applicant_id == user.id))
        )
        assert len(statuses) >= 3, account["login"]
    partner = _user(next(a["login"] for a in accounts if a["role"] == "partner"))
    referred = _all(
        sa.select(Application).where(
            Application.partner_organisation_id == partner.partner_organisation_id
        )
    )
    assert len({a.status for a in referred}) >= 3
    for application in referred:
        kinds = set(_all(sa.select(Consent.kind).where(Consent.application_id == application.id)))
        assert ConsentKind.PARTNER_SUBMISSION in kinds
        # What the partner ticked in the form is recorded as the partner's, as a referral
        # made through the pages records it; never as the defender's own answer.
        methods = set(
            _all(sa.select(Consent.method).where(Consent.application_id == application.id))
        )
        assert "form" not in methods, application.uid
    for account in (a for a in accounts if a["role"] == "donor"):
        assert len(_user(account["login"]).donor.pools) >= 2


def test_two_donors_each_see_their_own_pools(demo, client):
    """Each demo donor's portal lists its own pools and none of the other donor's."""
    donors = [a for a in demo["accounts"] if a["role"] == "donor"]
    pages = []
    for account in donors:
        login(client, _user(account["login"]), password=account["password"])
        pages.append(client.get("/donor").get_data(as_text=True))
        client.post("/logout")
    assert "Emergency Protection Pool" in pages[0]
    assert "Emergency Protection Pool" not in pages[1]
    assert "Human Rights Defenders Programme" in pages[1]
    assert "Human Rights Defenders Programme" not in pages[0]


def test_check_fails_after_a_disbursement_amount_is_edited(demo, runner):
    """Raising one payment's amount in the database is caught and the row is named."""
    target = db.session.execute(sa.select(sa.func.max(Disbursement.id))).scalar()
    edit_behind_the_app(
        "disbursements",
        "UPDATE disbursements SET amount = amount + 1 WHERE id = :id",
        {"id": target},
    )
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


def test_if_empty_loads_an_empty_database(app, runner):
    """On an empty database --if-empty does load the demo world."""
    result = runner.invoke(args=["hrdfund", "demo-data", "--if-empty", "--scale", "30"])
    assert result.exit_code == 0, result.output
    assert "30 applications" in result.output


def test_demo_data_refuses_production(app_config):
    """No demo account can exist in production."""
    production = create_app({**app_config, "ENV_NAME": "production"})
    result = production.test_cli_runner().invoke(args=["hrdfund", "demo-data"])
    assert result.exit_code != 0
    assert "never loaded in production" in result.output


def test_countries_have_a_name_a_region_and_a_currency():
    """Every country the demo uses has a Babel name, one of the regions and a currency the
    app pays in; every country a defender may name has a region too."""
    names = Locale("en").territories
    assert len(geo.COUNTRIES) >= 45
    assert 8 <= len(geo.REGIONS) <= 16
    assert set(geo.REGIONS) == set(geo.REGION_LABELS)
    assert set(geo.REGIONS) <= set(rollup.AREAS)  # reports roll each region up to an area
    assert [code for code, _name in geo.countries("en") if geo.region_of(code) is None] == []
    assert geo.region_of("SY") == "Middle East and North Africa"
    assert geo.region_of("EC") == "Andean region"
    for code in geo.COUNTRIES:
        assert names.get(code), code
        assert geo.region_of(code) in geo.REGIONS
        assert geo.local_currency(code) in CURRENCIES
    assert geo.region_of("XX") is None
    assert geo.country_name("CO") == "Colombia"


def test_the_demo_network_has_three_member_funds_one_of_them_the_intake(demo, app):
    """A local, a regional and an international fund take applications, each saying what
    it covers; the demo fund receives those of applicants who do not know where to apply."""
    funds = db.session.execute(sa.select(Fund).order_by(Fund.name)).scalars().all()
    assert [f.name for f in funds] == [
        "Coastal Local Fund",
        "Demo Protection Fund",
        "East Africa Regional Fund",
    ]
    assert [f.name for f in funds if f.intake] == ["Demo Protection Fund"]
    page = app.test_client().get("/funds").get_data(as_text=True)
    assert all(f.name in page for f in funds) and "Kenya" in page and "Medical costs" in page


def test_the_demo_network_has_a_referral_in_every_state_and_a_co_funded_stay(demo, app):
    """Waiting, accepted, declined and withdrawn; the accepted one a relocation whose months
    1 to 6 the demo fund pays and 7 to 12 the regional fund, each from its own pool."""
    states = set(_all(sa.select(Referral.status)))
    assert states == set(ReferralStatus)
    stay = db.session.execute(
        sa.select(Referral).where(Referral.status == ReferralStatus.ACCEPTED)
    ).scalar_one()
    assert (stay.months_from, stay.months_to) == (7, 12)
    assert stay.linked_application.fund.name == "East Africa Regional Fund"
    assert stay.linked_application.status == S.APPROVED


def test_the_demo_network_has_a_duplicate_across_funds(demo, app):
    """A defender applied to the local fund and to the demo fund for the same medical need:
    asking the network from the demo fund's case finds the local fund's, in one word."""
    waiting = db.session.execute(
        sa.select(Referral).where(Referral.status == ReferralStatus.PENDING)
    ).scalar_one()
    manager = db.session.execute(sa.select(User).where(User.login == "demo-manager1")).scalar_one()
    with app.test_request_context():
        lines = network_check.ask_network(waiting.application, manager)
    assert [(line.fund, line.word) for line in lines] == [("Coastal Local Fund", "open")]


def test_the_demo_directory_has_what_its_journeys_need(demo):
    """A manager of the demo fund finds the psychosocial provider in Kenya that speaks
    Swahili, finance can pay the medical provider, the fund is reminded of its entry not
    verified for a year, and another fund's entry kept for itself stays out of sight."""
    manager, finance = _user("demo-manager1"), _user("demo-finance1")
    found = directory.search(manager, service="psychosocial", country="KE", language="sw")
    assert [e.name for e in found] == ["Amani Counselling Collective"]
    assert found[0].fund_id != manager.fund_id
    payable = [e.name for e in directory.payable_entries(finance)]
    assert "St Luke Medical Centre (demo)" in payable
    assert [e.name for e in directory.stale_own_entries(manager)] == ["Open Line Legal Aid (demo)"]
    assert "Safe Homes Kampala (demo)" not in [e.name for e in directory.search(manager)]
    regional = _user("demo-regional-manager")
    assert "Safe Homes Kampala (demo)" in [e.name for e in directory.search(regional)]


def test_demo_drafts_hold_the_answers_of_the_steps_saved_and_no_others(demo):
    """A draft was saved step by step from the first, as a person fills the form: its
    dependants, references and other funders are there only once their step was saved."""
    from hrdfund.cases import steps
    from hrdfund.cases.models import Dependant, Reference

    cases = _all(sa.select(Application))
    drafts = [a for a in cases if a.status == S.DRAFT]
    assert drafts
    reached = set()
    for draft in drafts:
        saved = steps.saved_steps(draft)
        count = len(saved)
        assert count >= 4 and saved == set(steps.STEPS[:count]), draft.steps_saved
        reached.add(count)
        has = {
            model: db.session.scalar(
                sa.select(sa.func.count())
                .select_from(model)
                .where(model.application_id == draft.id)
            )
            for model in (Dependant, Reference)
        }
        assert has[Reference] > 0 if steps.REFERENCES in saved else has[Reference] == 0
        if steps.DEPENDANTS not in saved:
            assert has[Dependant] == 0 and draft.dependants_count == 0
        if steps.OTHER not in saved:
            assert draft.other_funders is None
    assert len(reached) >= 2


def test_a_demo_applicant_sees_the_steps_of_their_draft_they_saved(demo, app):
    """Signed in, a demo applicant whose draft stopped part way sees on its steps page
    the steps saved as done (or saved with answers missing) and the rest not started."""
    import re

    from hrdfund.cases import steps

    seen = 0
    for account in (a for a in demo["accounts"] if a["role"] == "applicant"):
        user = _user(account["login"])
        drafts = _all(
            sa.select(Application).where(
                Application.applicant_id == user.id, Application.status == S.DRAFT
            )
        )
        if not drafts:
            continue
        client = app.test_client()
        login(client, user, password=account["password"])
        for draft in drafts:
            saved = steps.saved_steps(draft)
            page = client.get(f"/applications/{draft.uid}/steps/{steps.REVIEW}")
            assert page.status_code == 200
            listed = re.findall(
                r'<li class="step-(\w+)">.*?<span class="step-state">\((.*?)\)</span>',
                page.get_data(as_text=True),
                re.S,
            )
            states = dict(zip(steps.STEPS, listed, strict=False))
            for step, (state, words) in states.items():
                if step in saved:
                    assert state in ("done", "incomplete"), (step, state)
                    assert words in ("done", "saved, answers missing")
                else:
                    assert (state, words) == ("todo", "not started"), step
            seen += bool(saved) and saved != set(steps.STEPS)
    assert seen, "a demo applicant has a draft saved part way"


def test_the_demo_keeps_the_cfa_francs_pegged_to_the_euro():
    """Finance paying a defender in Senegal at the peg (655.957 francs a euro) found the
    demo's table 2% away and its payment held for a second person: the francs follow the
    euro, month by month, at the peg."""
    rates = Rates(random.Random(7), date(2024, 6, 1), date(2026, 12, 1))
    rates.record = lambda *entry: None
    for day in (date(2024, 6, 3), date(2025, 9, 3), date(2026, 11, 3)):
        for franc in ("XOF", "XAF"):
            assert rates.rate(franc, "EUR", day) == Decimal("655.957")
            assert rates.rate("EUR", franc, day) == Decimal("0.00152449")
    assert rates.rate("XOF", "USD", date(2024, 6, 3)) != rates.rate("XOF", "USD", date(2026, 11, 3))
