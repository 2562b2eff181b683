"""Every page that lists rows runs as many SQL statements for thirty rows as for three: no
page runs a query per row (an N+1), so a busy fund's pages stay as fast as a quiet one's.

Each page is built with three rows of what it lists, then thirty, through the services (or
the models, where a service would only add cost). The statements are counted around one
request, after a first request has warmed what is loaded once per process, and the page
must show every row, so no count can come from an empty or refused page.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.auth import invitations
from hrdfund.auth.models import Role, User
from hrdfund.cases import messages, services, targets
from hrdfund.cases.models import (
    ApplicationStatus,
    BudgetLine,
    Consent,
    ConsentKind,
    Dependant,
    Document,
    DocumentKind,
    Reference,
    Urgency,
)
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.disbursements import receipts, reconcile
from hrdfund.disbursements import services as payments
from hrdfund.grants import plans
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.pools import services as pools
from hrdfund.pools.models import RestrictionKind
from hrdfund.reports import anonymise
from hrdfund.reviews import services as review_services
from hrdfund.reviews.models import NoteKind
from tests.conftest import MoneyWorld, login, make_case, pay

from .clock import Clock

FEW, MANY = 3, 30


class Site(MoneyWorld):
    """The money world, plus a tally of the rows each page was given so far."""

    def __init__(self, fund, make_user, make_donor):
        super().__init__(fund, make_user, make_donor)
        self.today = utcnow().date()
        self.made = Counter()
        self.shown = {}
        self.extra = {}

    def upto(self, key, n):
        """The numbers of the rows of ``key`` still to make for there to be ``n``."""
        start, self.made[key] = self.made[key], n
        return range(start, n)

    def show(self, key, *texts):
        """Add a row to those the page of ``key`` lists: the texts that show it."""
        self.shown.setdefault(key, []).append(texts)
        return self.shown[key]

    def once(self, key, make):
        """``make()`` the first time ``key`` is asked for, the same object afterwards."""
        if key not in self.extra:
            self.extra[key] = make()
        return self.extra[key]

    def staff(self, role, login):
        """A colleague made through the model: no password, so no hashing cost."""
        user = User(login=login, display_name=f"Name {login}", role=role, fund_id=self.fund.id)
        db.session.add(user)
        db.session.flush()
        return user

    def grant_across(self, drawn, each, name):
        """An approved grant of a recommended case drawing ``each`` EUR from every pool of
        ``drawn``: :meth:`MoneyWorld.grant` over several pools."""
        case = self.recommended(name)
        draws = [(pool.id, Decimal(each)) for pool in drawn]
        grant = approve_with_recorded_rates(case, self.m1, Decimal(each) * len(drawn), draws)
        db.session.commit()
        return grant

    def pool(self, name, currency="EUR", donor=None, amount="5000", **options):
        """A pool with money in it."""
        pool = pools.create_pool(donor or self.donor, self.m1, name, currency, **options)
        pools.record_contribution(
            pool, self.m1, Decimal(amount), currency, self.today, reference=f"IN-{name}"
        )
        return pool


def _case(site, i, **fields):
    """A case sent to the fund, its targets running, through the model."""
    now = utcnow()
    values = {
        "region": "East Africa",
        "amount_requested": Decimal(100 + i),
        "submitted_at": now - timedelta(hours=i),
        **fields,
    }
    case = make_case(site.fund, commit=False, **values)
    if i % 3 == 1:
        targets.pause(case, now)
    return case


# Builders: each makes the page show ``n`` rows and returns (path, text of each row).


def queue(site, n):
    for i in site.upto("queue", n):
        case = _case(
            site,
            i,
            category=list(Category)[i % len(Category)],
            urgency=Urgency.URGENT if i % 2 else Urgency.NORMAL,
            status=ApplicationStatus.IN_REVIEW if i % 2 else ApplicationStatus.SUBMITTED,
            assigned_reviewer_id=site.reviewer.id if i % 3 == 0 else None,
        )
        db.session.flush()
        site.show("queue", case.uid)
    return "/cases", site.shown["queue"]


def _filtered_cases(site, n):
    """Cases that pass every filter of the filtered queues: sent, medical, urgent, in
    Kenya, assigned to the reviewer, and fitting the pool for medical cases in Kenya."""
    medical = site.once(
        "pool",
        lambda: site.pool(
            "Medical Kenya",
            restrictions=[(RestrictionKind.CATEGORY, "medical"), (RestrictionKind.COUNTRY, "KE")],
        ),
    )
    for i in site.upto("filtered", n):
        case = _case(site, i, urgency=Urgency.URGENT, assigned_reviewer_id=site.reviewer.id)
        db.session.flush()
        site.show("filtered", case.uid)
    return medical, site.shown["filtered"]


def queue_filtered(site, n):
    _pool, shown = _filtered_cases(site, n)
    return "/cases?status=submitted&category=medical&urgency=urgent&country=ke&sort=amount", shown


def queue_mine_in_pool(site, n):
    pool, shown = _filtered_cases(site, n)
    return f"/cases?mine=1&pool={pool.id}&sort=newest", shown


def mine(site, n):
    for i in site.upto("mine", n):
        case = services.start_application(site.applicant, list(Category)[i % 4], site.fund)
        site.show("mine", case.uid)
    return "/my", site.shown["mine"]


def referrals(site, n):
    partner = site.once("partner", lambda: site.make_user("partner"))
    for i in site.upto("referrals", n):
        case = services.start_application(
            partner, list(Category)[i % 4], site.fund, consent_method="in_person"
        )
        site.show("referrals", case.uid)
    return "/referrals", site.shown["referrals"]


def payment_list(site, n):
    for i in site.upto("payments", n):
        pool = site.usd if i % 2 else site.eur
        grant = site.grant("300", pool=pool, currency=pool.currency, name=f"Payee {i}")
        payment = pay(site, grant, "100", pool.currency, instalment=None, reference=f"PAY-{i}")
        if i % 3 == 2:
            payments.reverse_disbursement(payment, site.finance, "Bounced")
        site.show("payments", payment.uid)
    return "/payments", site.shown["payments"]


def follow_up(site, n):
    """Each case is on all four lists: a payment two months old, unconfirmed, with no
    report, reported short by the bank, and the plan's first instalment due today."""
    paid_on = site.today - timedelta(days=70)
    lines = []
    for i in site.upto("follow-up", n):
        grant = site.grant("400", name=f"Chased {i}")
        case = grant.application.uid
        # Paid before the plan was made: the plan's instalments are all still due.
        pay(site, grant, "100", instalment=None, reference=f"FU-{i:02d}", paid_on=paid_on)
        site.plan(grant, count=2, starts_on=site.today)
        lines.append(f"FU-{i:02d},90.00,EUR,{site.today.isoformat()},delivered\n")
        # The payment's reference on two lists, the case's code on all four.
        site.show("follow-up", *[f"<code>FU-{i:02d}</code>"] * 2, *[f">{case}</code></a>"] * 4)
    data = ("reference,amount,currency,date,status\n" + "".join(lines)).encode()
    reconcile.import_statement(site.fund.id, site.finance, data)
    db.session.commit()
    return "/payments/follow-up", site.shown["follow-up"]


def to_pay_list(site, n):
    """Grants to pay: a planned grant with its first instalment due today and part of it
    paid, and a grant without a plan, alternately; urgent and not."""
    for i in site.upto("to pay", n):
        grant = site.grant("400", name=f"To pay {i}")
        grant.application.urgency = Urgency.URGENT if i % 2 else Urgency.NORMAL
        case = grant.application.uid
        if i % 2:
            site.plan(grant, count=2, starts_on=site.today)
            pay(site, grant, "50", reference=f"TP-{i:02d}")
        db.session.commit()
        site.show("to pay", f">{case}</code></a>", f"/applications/{case}/pay")
    return "/payments/to-pay", site.shown["to pay"]


def pay_page(site, n):
    """One stipend of ``n`` months, some paid in part: the page lists each month with
    what is still due, in the grant's and the USD pool's currency."""
    grant = site.once("stipend", lambda: site.grant("3600", pool=site.usd, name="Stipend"))
    plan = site.once("stipend plan", lambda: site.plan(grant, kind="stipend", count=36))
    for i in site.upto("pay page", n):
        if i % 3 == 0:
            pay(site, grant, "10", instalment=i + 1, reference=f"PP-{i:02d}")
        site.show(
            "pay page", f'<th scope="row" data-label="Instalment">{plan.instalments[i].seq}</th>'
        )
    return f"/applications/{grant.application.uid}/pay", site.shown["pay page"]


def pool_list(site, n):
    for i in site.upto("pools", n):
        donor = pools.create_donor(site.fund.id, f"Donor {i}", site.m1)
        pool = site.pool(f"Pool {i:02d}", currency="USD" if i % 2 else "EUR", donor=donor)
        site.show("pools", pool.name, donor.name)
    return "/pools", site.shown["pools"]


def pool_page(site, n):
    """One pool with money received, committed, released and paid, row by row."""
    for i in site.upto("pool", n):
        reference = f"CONTRIB-{i:02d}"
        pools.record_contribution(
            site.eur, site.m1, Decimal("50"), "EUR", site.today, reference=reference
        )
        grant = site.grant("200", pool=site.eur, name=f"Pooled {i}")
        pay(site, grant, "50", instalment=None, reference=f"POOLPAY-{i:02d}")
        plans.close_grant(grant, site.m1, f"Closed early {i:02d}")
        db.session.commit()
        # The case's code on the commitment, the release and the payment.
        case = f">{grant.application.uid}</code></a>"
        site.show("pool", reference, case, case, case, f"Closed early {i:02d}", f"POOLPAY-{i:02d}")
    return f"/pools/{site.eur.uid}", site.shown["pool"]


def dashboard(site, n):
    """Pools with money in and out, each with its row and its chart; cases waiting in every
    stage and age, decided, and paid."""
    stages = [
        ApplicationStatus.SUBMITTED,
        ApplicationStatus.IN_REVIEW,
        ApplicationStatus.RECOMMENDED,
    ]
    for i in site.upto("dashboard", n):
        pool = site.pool(f"Dash pool {i:02d}", currency="USD" if i % 2 else "EUR")
        _case(site, i * 24, status=stages[i % 3])
        grant = site.grant("100", pool=pool, currency=pool.currency, name=f"Dash {i}")
        pay(site, grant, "40", pool.currency, instalment=None, reference=f"DASH-{i:02d}")
        # In the money table, the chart's title and description, and the link to its rows.
        site.show("dashboard", pool.name)
    return "/dashboard", site.shown["dashboard"]


def decisions_waiting(site, n):
    """Approvals above the four-eyes threshold waiting for a second manager, each split
    over two pools, and as many recommended cases: the dashboard lists the first ten,
    the approvals first, each with its split and a button to confirm it."""
    for i in site.upto("decisions", n):
        case = site.recommended(name=f"Waiting {i}")
        if i < 8:
            approve_with_recorded_rates(
                case, site.m1, Decimal(6000), [(site.eur.id, 3000), (site.usd.id, 3000)]
            )
            site.show("decisions", f'id="decide-{case.uid}"', f"/applications/{case.uid}/confirm")
        else:
            site.show("decisions")  # beyond the first ten, or below the approvals
        db.session.commit()
    return "/dashboard", site.shown["decisions"]


def pool_page_dated(site, n):
    """The same pool page, its lists kept to the dates of its rows (payments made on 3
    February, the rest today), each list's first page asked."""
    path, shown = pool_page(site, n)
    pages = "&".join(f"{name}_page=1" for name in ("contributions", "payments"))
    return f"{path}?from=2026-02-01&to={site.today.isoformat()}&{pages}", shown


def coverage(site, n):
    """Stipends ending in ten days for defenders with nothing after them."""
    first = plans.months_after(site.today + timedelta(days=10), -1)
    for i in site.upto("coverage", n):
        grant = site.grant("600", category=Category.LONGER_TERM, name=f"Covered {i}")
        site.plan(grant, kind="stipend", count=2, starts_on=first)
        # Ending soon, and in the calendar.
        site.show("coverage", *[f">{grant.application.uid}</code></a>"] * 2)
    return "/coverage", site.shown["coverage"]


def accounts(site, n):
    roles = (Role.REVIEWER, Role.MANAGER, Role.FINANCE)
    for i in site.upto("accounts", n):
        user = site.staff(roles[i % 3], f"colleague-{i:02d}")
        user.contact = f"colleague-{i}@example.org"
        # Each row: an account, and an invitation waiting, every third one a donor's.
        donor = i % 3 == 0
        site.show("accounts", user.login, f"invited-{i:02d}", *([site.donor.name] if donor else []))
        invitations.invite_account(
            site.admin,
            Role.DONOR if donor else Role.MANAGER,
            f"invited-{i:02d}",
            site.donor.id if donor else None,
        )
    db.session.commit()
    return "/admin/users", site.shown["accounts"]


def donor_portal(site, n):
    site.once("donor user", lambda: site.make_user("donor", donor_id=site.donor.id))
    for i in site.upto("portal", n):
        pool = site.pool(f"Own pool {i:02d}", currency="USD" if i % 2 else "EUR")
        site.show("portal", pool.uid)
    return "/donor", site.shown["portal"]


def donor_report(site, n):
    """The donor's CSV for an ended quarter, a line for each grant paid from its pool in
    it whose defender agreed that donors may see the case."""
    site.once("donor user", lambda: site.make_user("donor", donor_id=site.donor.id))
    # A report lists grants once its period has ended, as first issued: each count is of
    # a first quarter of its own, recorded then, so each issue holds all its rows.
    year = 2024 if n == FEW else 2025
    key = f"donor report {year}"
    with Clock().on(datetime(year, 2, 3, 10)):
        for i in site.upto(key, n):
            grant = site.grant("300", name=f"Shared {year} {i}")
            consent = Consent(
                application_id=grant.application_id,
                kind=ConsentKind.STORY,
                method="form",
                recorded_by_id=site.applicant.id,
                given_at=utcnow(),
            )
            db.session.add(consent)
            pay(site, grant, "100", instalment=None, paid_on=date(year, 2, 3))
            site.show(key, anonymise.donor_code(site.donor.id, grant.uid, year))
    path = f"/donor/pools/{site.eur.uid}/report?period={year}-Q1&format=csv"
    return path, site.shown[key]


def internal_report(site, n):
    """Pools of the fund, each with a grant paid in this quarter."""
    for i in site.upto("internal", n):
        pool = site.pool(f"Reported pool {i:02d}")
        grant = site.grant("300", pool=pool, name=f"Reported {i}")
        pay(site, grant, "100", instalment=None, paid_on=site.today)
        site.show("internal", f">{pool.name}</a>", f">{grant.application.uid}</code></a>")
    return "/reports/internal", site.shown["internal"]


def rates(site, n):
    for i in site.upto("rates", n):
        on = site.today - timedelta(days=i)
        source = f"Source {i:02d}"
        pools.record_rate(site.fund.id, site.finance, on, "EUR", "GBP", Decimal("0.85"), source)
        site.show("rates", source)
    db.session.commit()
    return "/pools/rates", site.shown["rates"]


def new_pool_form(site, n):
    for i in site.upto("donors", n):
        site.show("donors", pools.create_donor(site.fund.id, f"Giver {i:02d}", site.m1).name)
    db.session.commit()
    return "/pools/new", site.shown["donors"]


def _busy_case(site, n):
    """A paying case with ``n`` of everything its page lists: budget lines, dependants,
    references, documents, notes by as many colleagues, other funders, messages, pools its
    grant draws on, and monthly payments, each confirmed by the applicant, reported by the
    bank or reversed. Returns its path and, by audience, the rows each sees."""
    drawn = [site.pool(f"Busy {n} pool {i:02d}", amount="150") for i in range(n)]
    grant = site.grant_across(drawn, "100", name=f"Busy {n}")
    case = grant.application
    site.plan(grant, kind="stipend", count=n, starts_on=site.today - timedelta(days=31 * n))
    for i in range(n):
        line = BudgetLine(application_id=case.id, amount=Decimal(10 + i), currency="EUR")
        line.description = f"Budget line {i:02d}"
        dependant = Dependant(application_id=case.id, age=i)
        dependant.relation = f"Relative {i:02d}"
        reference = Reference(application_id=case.id)
        reference.name, reference.contact = f"Referee {i:02d}", f"referee{i}@example.org"
        document = Document(
            application_id=case.id,
            kind=DocumentKind.QUOTE,
            storage_name=f"busy-{n}-{i}",
            content_type="application/pdf",
            size_bytes=2048,
            uploaded_by_id=site.applicant.id,
        )
        document.filename = f"quote-{i:02d}.pdf"
        db.session.add_all([line, dependant, reference, document])
        colleague = site.staff(Role.REVIEWER, f"case{n}-colleague-{i:02d}")
        review_services.add_note(case, colleague, NoteKind.NOTE, f"Note {i:02d} on the case")
        review_services.record_cofunding(
            case, site.m1, f"Other funder {i:02d}", Decimal(5), "EUR", None, None
        )
        author = site.applicant if i % 2 else site.m1
        messages.post_message(case, author, f"Message {i:02d} in the thread")
    db.session.commit()
    rows = {"finance": [], "manager": [], "applicant": []}
    statement = []
    allocations = payments.grant_allocations(grant)
    for i, instalment in enumerate(payments.grant_instalments(grant)):
        reference = f"BUSY{n}-{i:02d}"
        # Half a month's payment each, from the first half of the pools only: the pools
        # drawn on without a payment are listed too.
        payment = pay(
            site,
            grant,
            "50",
            instalment=i + 1,
            allocation=allocations[i // 2],
            reference=reference,
            paid_on=instalment.due_on,
        )
        if i % 3 == 0:
            receipts.answer_receipt(payment, site.applicant, "received")
        elif i % 3 == 1:
            statement.append(f"{reference},50.00,EUR,{site.today.isoformat()},delivered\n")
        else:
            payments.reverse_disbursement(payment, site.finance, f"Returned {i}")
        common = (f"Message {i:02d} in the thread", f"quote-{i:02d}.pdf")
        # Finance sees the money of the case and the messages since its approval: not its
        # documents, dependants or references.
        money = (
            f"Message {i:02d} in the thread",
            f"Budget line {i:02d}",
            f"Busy {n} pool {i:02d}",
            reference,
        )
        rows["finance"].append(money)
        # Each colleague twice: on their note, and in the history as who added it.
        colleague = f"Name case{n}-colleague-{i:02d}"
        review = (f"Note {i:02d} on the case", colleague, colleague)
        staff = common + money[1:] + (f"Relative {i:02d}", f"Referee {i:02d}")
        rows["manager"].append(staff + review + (f"Other funder {i:02d}",))
        # The applicant sees the payments that stand, by their date.
        paid = (f"{payment.paid_on.day} {payment.paid_on:%B %Y}",) if i % 3 != 2 else ()
        rows["applicant"].append(common + paid)
    data = ("reference,amount,currency,date,status\n" + "".join(statement)).encode()
    reconcile.import_statement(site.fund.id, site.finance, data)
    db.session.commit()
    return f"/applications/{case.uid}", rows


def case_for(audience):
    def build(site, n):
        path, rows = _busy_case(site, n)
        return path, rows[audience]

    return build


def case_at_decision(site, n):
    """A recommended case, and the fund's open pools a manager may draw its grant from:
    in three currencies (no rate is recorded from EUR to KES), some for Uganda only."""
    for i in site.upto("decision", n):
        only = [(RestrictionKind.COUNTRY, "UG")] if i % 2 else []
        pool = site.pool(f"Choice {i:02d}", ("EUR", "USD", "KES")[i % 3], restrictions=only)
        site.show("decision", pool.name)
    case = site.once(
        "decision case",
        lambda: _case(
            site, 0, status=ApplicationStatus.RECOMMENDED, applicant_id=site.applicant.id
        ),
    )
    db.session.commit()
    return f"/applications/{case.uid}", site.shown["decision"]


@dataclass(frozen=True)
class Page:
    name: str
    role: str  # the Site attribute naming who looks at the page
    build: Callable


PAGES = [
    Page("staff queue", "reviewer", queue),
    Page("staff queue, filtered and sorted", "reviewer", queue_filtered),
    Page("staff queue, mine in a pool", "reviewer", queue_mine_in_pool),
    Page("applicant's applications", "applicant", mine),
    Page("partner's referrals", "partner", referrals),
    Page("finance's payments", "finance", payment_list),
    Page("follow-up", "finance", follow_up),
    Page("grants to pay", "finance", to_pay_list),
    Page("a grant's payment page", "finance", pay_page),
    Page("pools", "m1", pool_list),
    Page("pool page", "m1", pool_page),
    Page("pool page, dates chosen", "finance", pool_page_dated),
    Page("coverage", "m1", coverage),
    Page("dashboard, manager", "m1", dashboard),
    Page("dashboard, finance", "finance", dashboard),
    Page("dashboard, decisions waiting", "m2", decisions_waiting),
    Page("accounts", "admin", accounts),
    Page("new donor or pool", "admin", new_pool_form),
    Page("donor portal", "donor user", donor_portal),
    Page("donor report, CSV", "donor user", donor_report),
    Page("internal report", "m1", internal_report),
    Page("rates", "finance", rates),
    Page("case page, finance", "finance", case_for("finance")),
    Page("case page, manager", "m1", case_for("manager")),
    Page("case page, applicant", "applicant", case_for("applicant")),
    Page("case page at the decision, manager", "m1", case_at_decision),
]


def _viewer(site, page):
    return site.extra.get(page.role) or getattr(site, page.role)


def statements(app, client, path):
    """The response to GET ``path`` and the SQL statements it ran, in a request of its
    own, as in production (its own session: nothing the test loaded spares it a query),
    after a first request that warmed what is loaded once."""
    db.session.commit()
    seen = []

    def note(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        client.get(path)
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", note)
        try:
            response = client.get(path)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", note)
    return response, seen


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_a_page_costs_the_same_statements_for_three_rows_as_for_thirty(
    app, fund, make_user, make_donor, page
):
    site = Site(fund, make_user, make_donor)
    counts = {}
    client = None
    for n in (FEW, MANY):
        path, shown = page.build(site, n)
        db.session.commit()
        if client is None:
            client = app.test_client()
            login(client, _viewer(site, page))
        response, ran = statements(app, client, path)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, f"{page.name} ({path}): {response.status}"
        assert len(shown) == n, f"{page.name}: {len(shown)} rows were made, not {n}"
        # A text a row names k times must be on the page k times.
        missing = [t for row in shown for t, k in Counter(row).items() if html.count(t) < k]
        assert not missing, f"{page.name} with {n} rows does not show {missing[:5]}"
        counts[n] = ran
    few, many = counts[FEW], counts[MANY]
    extra = (Counter(many) - Counter(few)).most_common(2)
    assert len(few) == len(many), (
        f"{page.name}: {len(few)} statements with {FEW} rows, {len(many)} with {MANY}; "
        f"repeated: {extra}"
    )
