"""Fund isolation: every account of one fund against everything of another, every route,
on SQLite and PostgreSQL.

Two funds are built alike (``FundWorld``): every staff role, a donor with a pool and a
donor account, a partner organisation, an applicant, and one object of every kind a route
can name: cases from draft to paid, documents, messages, notes, references, payments
(booked, held for a second person, reversed, with a proof), contributions, rate table
entries waiting for a second person, accounts with alert settings, a statement import and
issued report figures. Each text about them carries the fund's tag; with their codes and
a distinctive amount they are the fund's canaries. The two funds' cases share one defender,
so a duplicate or coverage check that crossed funds would show the other fund's case.

- ``ROUTES`` fills every rule of ``app.url_map`` that names something (its URL variables,
  or a form field naming a row by id) from the target fund's world. Each staff role and
  the donor of the other fund sends each of its methods with those values: the answer is
  the one the same account gets for values that name nothing (404, or 403 where its role
  may not use the route at all), byte for byte once the values are swapped, it shows no
  canary of the target fund, and the database is unchanged.
- The forms on a fund's own case that pick a row by id (``Fill.rows``: a pool, a reviewer,
  an allocation, a reference, a document) are sent picking the other fund's row: answered
  as a row that does not exist is, and nothing changes.
- ``LISTS`` names the pages that list things (queues, pools, payments, rates, coverage,
  reports, accounts) and ``OWN_PAGES`` the account's own fund's pages and downloads that
  gather rows (a case page's possible duplicates, a pool's rows, a pool's CSV): each
  fund's accounts open them, and they show their own fund's marker and none of the other
  fund's canaries.
- A rule of ``app.url_map`` that no table names fails ``test_every_route_is_swept`` with
  its name, as does a name kept for a route that is gone: a new route is added to
  ``ROUTES`` (or ``LISTS``, or ``NAMES_NOTHING`` with why) before it passes. A table of
  the schema the worlds leave empty fails ``test_every_kind_of_row_is_in_the_worlds``.
- The duplicate check across funds is the one place a fund learns of another's case: it
  finds the shared defender and names the other fund, and nothing else of it.
- Last, ``test_each_fund_opens_its_own`` sends every request of ``ROUTES`` as the target
  fund's own account: it gets past the access rule, so the values each sweep sent were
  live. It runs last: it changes the worlds.

One world per database serves every test of the module; the sweep leaves it as it was,
and each account signs in once (``FundWorld.client``).

Referrals will open parts of a case to another fund. The canaries are grouped by part
(``PARTS``) and each route names the part it shows; what a referral shares is
``shared_parts``, today nothing. A referral adds its routes to ``ROUTES`` and its
objects to ``FundWorld``, makes ``shared_parts`` read the referrals, and expects 200
instead of the unknown answer where the route's part is shared.
"""

import base64
import hashlib
import io
import re
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from PIL import Image

from hrdfund import create_app
from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.auth import invitations
from hrdfund.auth import services as auth_services
from hrdfund.auth.models import Fund, PartnerOrganisation, User
from hrdfund.cases import cleaning, documents, labels, messages, steps
from hrdfund.cases import services as case_services
from hrdfund.cases.alerts import queue_target_alerts
from hrdfund.cases.models import (
    Application,
    ApplicationStatus,
    BudgetLine,
    Consent,
    ConsentKind,
    Dependant,
    DocumentKind,
    Reference,
    Story,
    Urgency,
)
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db, reading
from hrdfund.core.support import Category
from hrdfund.directory import services as directory
from hrdfund.disbursements import problems, proofs, receipts, reconcile
from hrdfund.disbursements import services as payments
from hrdfund.grants import plans
from hrdfund.grants.decisions import approve_with_recorded_rates
from hrdfund.network import keys, referrals
from hrdfund.network.models import ImportedPacket
from hrdfund.pools import services as pools
from hrdfund.pools.models import Donor, RestrictionKind
from hrdfund.reports.issue import issue_ended
from hrdfund.reports.models import VarianceNote
from hrdfund.reports.periods import parse_period
from hrdfund.reviews import services as reviews
from tests.conftest import (
    PASSWORD,
    MoneyWorld,
    RequestIsolatedClient,
    empty_tables,
    login,
    make_config,
    pay,
)

#: The accounts of a fund that sweep the other fund: each staff role and the donor.
SWEEPERS = ("reviewer", "manager", "finance", "admin", "donor")
#: Which fund sweeps which.
DIRECTIONS = (("A", "B"), ("B", "A"))
#: The parts of a fund's world its canaries are grouped by: what a referral may share of
#: a case (its answers, documents, messages, assessment), and what it never shares.
PARTS = ("fund", "codes", "answers", "documents", "messages", "assessment", "money")
#: Tables the sweep may write to: the refused form an account is shown back (its own,
#: named by its session; nothing of any fund).
OWN_TABLES = frozenset({"refused_forms"})
#: The defender both funds support: a check that crossed funds would match them.
DEFENDER = ("Shared Defender", "KE")


def shared_parts(target, intruder_fund):
    """The parts of ``target``'s world its routes and lists may show ``intruder_fund``:
    none. Each world refers a case to the other sharing its documents, and those open only
    on that referral's own page (test_a_referral_opens_only_what_it_shares)."""
    return frozenset()


def _png():
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(out, "PNG")
    return out.getvalue()


def _partner_key():
    """The key line and fingerprint of a fund on another server, made here."""
    encryption = X25519PrivateKey.generate().public_key().public_bytes_raw()
    signing = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    line = (
        f"{keys.KEY_LINE} {secrets.token_hex(10)} "
        + base64.b64encode(encryption + signing).decode()
    )
    return line, keys.fingerprint(encryption, signing)


# -- Two funds built alike -------------------------------------------------------------------


class FundWorld:
    """One fund with an object of every kind a route names, and its canaries by part."""

    def __init__(self, app, tag, amount):
        self.app, self.tag = app, tag
        self.canaries = defaultdict(set)
        self.clients = {}
        # A member fund's name is no secret: the public page of funds lists it, and a
        # referral form offers it to every other fund.
        self.fund = Fund(name=f"{tag}-fund")
        db.session.add(self.fund)
        self.org = PartnerOrganisation(name=self.mark("fund", "org"), country="KE")
        db.session.add(self.org)
        db.session.flush()
        self.donor = Donor(name=self.mark("fund", "donor"), fund_id=self.fund.id)
        db.session.add(self.donor)
        db.session.flush()
        self.users = {}
        for key, role in (
            ("admin", "admin"),
            ("manager", "manager"),
            ("manager2", "manager"),
            ("finance", "finance"),
            ("reviewer", "reviewer"),
            ("reviewer2", "reviewer"),
            ("donor", "donor"),
            ("applicant", "applicant"),
            ("partner", "partner"),
        ):
            fields = {}
            if role not in ("applicant", "partner"):
                fields["fund_id"] = self.fund.id
            if role == "donor":
                fields["donor_id"] = self.donor.id
            if role == "partner":
                fields["partner_organisation_id"] = self.org.id
            user = auth_services.create_user(role, self.mark("fund", key), PASSWORD, **fields)
            user.display_name = self.mark("fund", f"{key} name")
            self.code(user.uid)
            self.users[key] = user
        u = self.users
        auth_services.set_alert_settings(
            u["reviewer"], self.mark("fund", "alerts") + "@example.org", True, u["admin"]
        )
        # The others' alert addresses: an alert is queued only for staff it can reach.
        for key in ("manager", "manager2", "finance"):
            u[key].contact = self.mark("fund", f"{key} alerts") + "@example.org"
        # An invitation waiting, to a donor account: its login is the fund's.
        self.invitation, _token = invitations.invite_account(
            u["admin"], "donor", self.mark("fund", "invited"), self.donor.id
        )
        self.code(self.invitation.uid)
        # Two to a reviewer's account, waiting for a manager: one to list, one to confirm.
        self.staff_invitations = [
            invitations.invite_account(u["admin"], "reviewer", self.mark("fund", f"staff {n}"))[0]
            for n in (1, 2)
        ]
        for invitation in self.staff_invitations:
            self.code(invitation.uid)
        self._money(amount)
        self._cases()
        self._payments()
        self._directory()
        db.session.commit()
        issue_ended(self.pool, parse_period("2026-01"), utcnow().date())
        note = VarianceNote(
            pool_id=self.pool.id, period="2026-01", line="total", written_by_id=u["manager"].id
        )
        note.text = self.mark("money", "variance explained")
        db.session.add(note)
        db.session.commit()

    def mark(self, part, what):
        """A text of this fund about ``what``, kept among the canaries of ``part``."""
        value = f"{self.tag}-{what.replace(' ', '-')}"
        self.canaries[part].add(value)
        return value

    def code(self, value):
        """An object's code, kept among the canaries."""
        self.canaries["codes"].add(value)
        return value

    def forbidden(self, shared=frozenset()):
        """Every canary of a part not in ``shared``."""
        return sorted(v for part in PARTS if part not in shared for v in self.canaries[part])

    def _money(self, amount):
        u = self.users
        entry = pools.record_rate(
            self.fund.id, u["finance"], date(2026, 1, 1), "EUR", "USD", Decimal("1.1"), "ECB"
        )
        pools.confirm_rate(entry, u["manager2"])
        # Entries waiting for a second person: one to confirm and one to refuse, at their
        # address and at the one they moved from.
        self.rates = {}
        for name, base in (
            ("confirm", "GBP"),
            ("refuse", "CHF"),
            ("moved confirm", "KES"),
            ("moved refuse", "UGX"),
        ):
            entry = pools.record_rate(
                self.fund.id,
                u["finance"],
                date(2026, 1, 1),
                base,
                "EUR",
                Decimal("0.5"),
                self.mark("money", f"rate source {name}"),
            )
            self.rates[name] = entry
        self.pool = pools.create_pool(
            self.donor,
            u["manager"],
            self.mark("fund", "pool"),
            "EUR",
            restrictions=[(RestrictionKind.CATEGORY, "medical")],
        )
        pools.record_contribution(
            self.pool, u["manager"], Decimal("20000"), "EUR", date(2026, 1, 2)
        )
        self.contribution = pools.record_contribution(
            self.pool,
            u["manager"],
            Decimal(amount),
            "EUR",
            date(2026, 1, 3),
            reference=self.mark("money", "contribution reference"),
        )
        db.session.flush()
        for entry in (self.pool, self.contribution, *self.rates.values()):
            self.code(entry.uid)
        whole, cents = amount.split(".")
        self.canaries["money"] |= {amount, f"{int(whole):,}.{cents}"}

    def _case(self, status_name):
        """A complete medical case of the fund's applicant, its defender the one both funds
        support, every answer carrying the fund's tag."""
        u = self.users
        case = Application(
            fund_id=self.fund.id,
            applicant_id=u["applicant"].id,
            category=Category.MEDICAL,
            status=ApplicationStatus.DRAFT,
            urgency=Urgency.URGENT,
            country=DEFENDER[1],
            region="East Africa",
            currency="EUR",
        )
        a = f"answers {status_name}"
        case.defender_name = DEFENDER[0]
        case.defender_key = case_services.defender_key(*DEFENDER)
        case.defender_work = self.mark("answers", f"{a} work")
        case.threat = self.mark("answers", f"{a} threat")
        case.urgency_reason = self.mark("answers", f"{a} urgency")
        case.other_funders = self.mark("answers", f"{a} funders")
        case.details = {
            "provider": self.mark("answers", f"{a} provider"),
            "treatment": self.mark("answers", f"{a} treatment"),
            "link_to_threat": self.mark("answers", f"{a} link"),
        }
        line = BudgetLine(amount=Decimal(900), currency="EUR")
        line.description = self.mark("answers", f"{a} budget")
        case.budget_lines = [line]
        dependant = Dependant(age=7)
        dependant.relation = self.mark("answers", f"{a} dependant")
        case.dependants = [dependant]
        references = []
        for n in (1, 2):
            reference = Reference()
            reference.name = self.mark("answers", f"{a} referee {n}")
            reference.contact = self.mark("answers", f"{a} referee contact {n}")
            references.append(reference)
        case.references = references
        db.session.add(case)
        db.session.flush()
        self.code(case.uid)
        for reference in references:
            self.code(reference.uid)
        return case

    def _cases(self):
        u = self.users
        self.cases = {}
        draft = case_services.start_application(u["applicant"], "medical", self.fund)
        draft.defender_work = self.mark("answers", "draft work")
        self.cases["draft"] = draft
        self.code(draft.uid)
        for name in ("submitted", "in review"):
            case = self._case(name)
            case_services.submit_application(case, u["applicant"])
            for kind in (ConsentKind.REFERRAL, ConsentKind.STORY):
                db.session.add(
                    Consent(application_id=case.id, kind=kind, method="form", given_at=utcnow())
                )
            self.cases[name] = case
        reviews.declare_conflict(self.cases["submitted"], u["reviewer2"])
        # A case the partner organisation referred, with the organisation's own label.
        referred = case_services.start_application(
            u["partner"], "medical", self.fund, consent_method="in_person"
        )
        self.code(referred.uid)
        labels.set_partner_label(referred, u["partner"], self.mark("answers", "partner label"))
        self.referred = referred
        case = self.cases["in review"]
        self.document = documents.store_document(
            cleaning.clean_upload(io.BytesIO(_png()), self.mark("documents", "quote") + ".png"),
            case,
            DocumentKind.QUOTE,
            u["applicant"],
        )
        self.code(self.document.uid)
        messages.post_message(case, u["applicant"], self.mark("messages", "message"))
        reviews.assign_reviewer(case, u["reviewer"], u["manager"])
        reviews.record_reference_check(
            case.references[0], "confirmed", self.mark("assessment", "check"), u["reviewer"]
        )
        reviews.add_note(case, u["reviewer"], "note", self.mark("assessment", "note"))
        reviews.record_cofunding(
            case, u["reviewer"], self.mark("assessment", "cofunder"), None, "EUR", None, None
        )
        for name in ("recommended", "granted", "paying", "paid"):
            case = self._case(name)
            case_services.submit_application(case, u["applicant"])
            reviews.assign_reviewer(case, u["reviewer"], u["manager"])
            reviews.recommend(
                case,
                u["reviewer"],
                "high",
                "approve",
                Decimal(900),
                self.mark("assessment", f"assessment {name}"),
            )
            self.cases[name] = case
        # Referred to a fund of the network outside the sweep, sharing everything: it opens
        # to that fund's staff, never to the other world's.
        elsewhere = Fund(name=f"{self.tag}-elsewhere")
        db.session.add(elsewhere)
        db.session.flush()
        auth_services.create_user(
            "manager", self.mark("fund", "elsewhere manager"), PASSWORD, fund_id=elsewhere.id
        )
        self.elsewhere = elsewhere.name
        self.referral = referrals.refer_case(
            u["reviewer"],
            self.cases["in review"],
            elsewhere,
            referrals.Part(Category.MEDICAL, 1, 3, Decimal(300), "EUR"),
            ("answers", "documents", "assessment"),
            self.mark("assessment", "referral reason"),
            utcnow().date() + timedelta(days=30),
        )
        self.code(self.referral.uid)
        # A partner fund on another server, registered by its key, and a referral to it.
        keys.make_keys(self.fund)
        line, spoken = _partner_key()
        self.partner = keys.register_partner(
            u["admin"], self.fund, f"{self.tag}-partner", line, spoken
        )
        self.partner_referral = referrals.refer_case(
            u["reviewer"],
            self.cases["in review"],
            self.partner,
            referrals.Part(Category.MEDICAL, None, None, Decimal(300), "EUR"),
            ("answers",),
            self.mark("assessment", "partner referral reason"),
            utcnow().date() + timedelta(days=30),
        )
        self.code(self.partner_referral.uid)
        db.session.add(
            ImportedPacket(
                fund_id=self.fund.id,
                from_fund_id=self.partner.id,
                packet_id=secrets.token_hex(16),
                kind="answer",
                imported_by_id=u["reviewer"].id,
            )
        )
        db.session.commit()

    def _payments(self):
        u = self.users
        helper = MoneyWorld.around(self.fund, u["applicant"], u["reviewer"], u["manager"])
        helper.finance, helper.m2, helper.eur = u["finance"], u["manager2"], self.pool
        self.grants = {}
        for name in ("granted", "paying", "paid"):
            self.grants[name] = approve_with_recorded_rates(
                self.cases[name], u["manager"], Decimal(900), [(self.pool.id, Decimal(900))]
            )
            db.session.commit()
        grant = self.grants["paying"]
        # A stipend of three months ending within the coverage warning: its case is both
        # on the calendar and among the support ending soon.
        today = utcnow().date()
        helper.plan(grant, kind="stipend", count=3, starts_on=today - timedelta(days=40))
        proof = documents.store_document(
            cleaning.clean_upload(io.BytesIO(_png()), self.mark("money", "proof") + ".png"),
            None,
            DocumentKind.PROOF_OF_PAYMENT,
            u["finance"],
        )
        self.payments = {
            "paid": pay(
                helper,
                grant,
                "300",
                paid_on=today,
                payee_details=self.mark("money", "payee"),
                reference=self.mark("money", "payment reference"),
                proof_document_id=proof.id,
            ),
            "spare": pay(
                helper,
                grant,
                "100",
                instalment=2,
                paid_on=today,
                payee_details=self.mark("money", "spare payee"),
                reference=self.mark("money", "spare reference"),
            ),
            "bounced": pay(helper, grant, "50", instalment=2, paid_on=today),
        }
        payments.reverse_disbursement(
            self.payments["bounced"], u["finance"], self.mark("money", "reversal")
        )
        # A fee of more than a tenth of the payment waits for a second person.
        self.held = pay(helper, grant, "200", instalment=2, fee=Decimal("100.00"), paid_on=today)
        statement = (
            "reference,amount,currency,date,status\n"
            f"{self.payments['paid'].reference},300.00,EUR,{today.isoformat()},delivered\n"
        )
        reconcile.import_statement(self.fund.id, u["finance"], statement.encode())
        # The payee side reports that less of the spare payment arrived: finance resolves it.
        self.answer = receipts.answer_receipt(
            self.payments["spare"],
            u["applicant"],
            "less",
            amount=Decimal("60.00"),
            currency="EUR",
            note=self.mark("money", "short note"),
        )
        # The paid payment: answered received, then reported not received, which finance
        # resolved.
        receipts.answer_receipt(self.payments["paid"], u["applicant"], "received")
        missing = receipts.answer_receipt(self.payments["paid"], u["applicant"], "not_received")
        problems.resolve_receipt_problem(
            missing, u["finance"], "traced", note=self.mark("money", "resolution note")
        )
        # The spare payment's proof came after it.
        later = documents.store_document(
            cleaning.clean_upload(io.BytesIO(_png()), self.mark("money", "later proof") + ".png"),
            None,
            DocumentKind.PROOF_OF_PAYMENT,
            u["finance"],
        )
        proofs.add_proof(self.payments["spare"], u["finance"], later)
        db.session.commit()
        for row in (*self.payments.values(), self.held, proof, later, self.answer, missing):
            self.code(row.uid)
        self._paid(helper, today)

    def _paid(self, helper, today):
        """A case paid, its receipt confirmed and its report sent, closed with the rest of
        its grant released, and its story approved for the donor."""
        u, case, grant = self.users, self.cases["paid"], self.grants["paid"]
        helper.plan(grant, kind="one_off", starts_on=today)
        paid = pay(helper, grant, "800", paid_on=today)
        receipts.answer_receipt(
            paid, u["applicant"], "received", note=self.mark("money", "receipt note")
        )
        case_services.submit_report(
            case, u["applicant"], "yes", "yes", self.mark("answers", "use of funds")
        )
        plans.close_grant(grant, u["manager"], self.mark("money", "closing"))
        consent = Consent(
            application_id=case.id,
            kind=ConsentKind.STORY,
            donor_id=self.donor.id,
            method="form",
            given_at=utcnow(),
        )
        db.session.add(consent)
        db.session.flush()
        story = Story(
            application_id=case.id,
            donor_id=self.donor.id,
            consent_id=consent.id,
            written_by_id=u["manager"].id,
            approved_by_id=u["manager2"].id,
            approved_at=utcnow(),
        )
        story.text = self.mark("answers", "story")
        db.session.add(story)
        db.session.commit()
        self.code(paid.uid)

    def _directory(self):
        """An entry of the directory kept for the fund only, its texts the fund's canaries,
        and one the whole network reads (its texts no canary: every fund finds it); both
        payable by finance."""
        u = self.users
        common = {
            "services": ["medical", "psychosocial"],
            "countries": ["KE"],
            "regions": [],
            "languages": ["en"],
            "visibility": "fund",
            "verified_on": utcnow().date() - timedelta(days=400),
        }
        own = directory.create_entry(
            u["manager"],
            name=self.mark("fund", "directory own"),
            contact=self.mark("fund", "directory contact"),
            referrers=self.mark("fund", "directory referrers"),
            **common,
        )
        network = directory.create_entry(
            u["manager"],
            name=f"Network clinic {self.tag}",
            contact="Signal",
            referrers=None,
            **{**common, "visibility": "network"},
        )
        directory.set_payment_details(u["finance"], own, self.mark("money", "directory iban"))
        directory.set_payment_details(u["finance"], network, "Network account")
        self.entries = {"own": own, "network": network}
        self.code(own.uid)

    def client(self, key):
        """The fund's account ``key``, signed in once for the whole module."""
        if key not in self.clients:
            self.clients[key] = self.app.test_client()
            login(self.clients[key], self.users[key])
        return self.clients[key]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def worlds(request, tmp_path_factory):
    """Funds A and B, built once per database for every test of the module."""
    backend = request.param
    folder = tmp_path_factory.mktemp(f"isolation-{backend}")
    if backend == "postgresql":
        uri = request.getfixturevalue("pg_schema")
    else:
        uri = f"sqlite:///{folder / 'hrdfund.sqlite3'}"
    # Documents kept in the database on both (SQLite's default is its folder), so the
    # sweeps meet their stored pieces too; who may read one is decided before either.
    config = make_config(uri, folder / "instance", HRDFUND_DOCUMENT_STORAGE="database")
    app = create_app(config)
    app.test_client_class = RequestIsolatedClient
    with app.app_context():
        if backend == "sqlite":
            db.create_all()
        try:
            built = {
                "A": FundWorld(app, "isofa31", "6421.37"),
                "B": FundWorld(app, "isofb31", "7431.19"),
            }
            # Each fund refers its case in review to the other, sharing its documents only
            # (test_a_referral_opens_only_what_it_shares).
            for here, there in DIRECTIONS:
                world = built[here]
                world.shared = referrals.refer_case(
                    world.users["reviewer"],
                    world.cases["in review"],
                    built[there].fund,
                    referrals.Part(Category.MEDICAL, None, None, Decimal(300), "EUR"),
                    ("documents",),
                    "Shared for the sweep",
                    utcnow().date() + timedelta(days=30),
                )
            db.session.commit()
            yield built
        finally:
            db.session.remove()
            if backend == "postgresql":
                empty_tables(db.engine)
            db.engine.dispose()


# -- What each route is sent ------------------------------------------------------------------


@dataclass(frozen=True)
class Fill:
    """How a route is filled from a fund's world ``w``: ``values(w)`` gives its URL
    variables and whatever else of ``w`` its form names; ``form(values)`` the form sent
    with them by any method but GET; ``query`` its query string. ``owner`` is the fund's
    own account that uses the route, and ``part`` what of the fund it shows. ``rows``
    names the values that are rows the form picks (a pool, a reviewer): the fund's own
    account sends the form on its own object with those taken from the other fund.
    ``more(w)`` gives further values a GET is sent with too: the same page of the fund's
    other objects of the kind."""

    values: Callable
    owner: str
    form: Callable = lambda v: {}
    query: str = ""
    part: str = "fund"
    rows: tuple = ()
    more: Callable = lambda w: []

    def variants(self, w, method):
        """The values ``method`` is sent with, from the world ``w``."""
        return [self.values(w), *(self.more(w) if method == "GET" else [])]


def _case(name, **more):
    """The code of the fund's case ``name``, and ``more`` values read from the world."""
    return lambda w: {"uid": w.cases[name].uid, **{k: f(w) for k, f in more.items()}}


def _uid(get):
    return lambda w: {"uid": get(w).uid}


def _statement(v):
    line = f"{v['reference']},100.00,EUR,{utcnow().date().isoformat()},delivered\n"
    text = "reference,amount,currency,date,status\n" + line
    return {"statement": (io.BytesIO(text.encode()), "statement.csv")}


def _entry_form(v):
    return {
        "entry-name": "Sweep clinic",
        "entry-services": "medical",
        "entry-countries": "KE",
        "entry-contact": "Sweep",
        "entry-visibility": "fund",
        "entry-verified_on": utcnow().date().isoformat(),
    }


def _entries_file(v):
    header = "code,name,services,countries,regions,languages,contact,referrers,visibility,"
    line = f"{v['uid']},Sweep clinic,medical,KE,,en,Sweep,,fund,{utcnow().date().isoformat()}"
    text = header + "verified\n" + line + "\n"
    return {"entries": (io.BytesIO(text.encode()), "entries.csv")}


#: A donor report of this year, as a CSV.
REPORT = f"period={utcnow().date().year}&format=csv"
#: The network report over the last month, which holds each world's referral.
_TODAY = utcnow().date()
NETWORK = f"start={_TODAY - timedelta(days=31)}&end={_TODAY}"

#: Every endpoint that names something of a fund, and how the sweep fills it. Each
#: endpoint's methods are all sent. The fund's own accounts send them in this order last
#: of all (``test_each_fund_opens_its_own``): each step leaves the next one possible.
ROUTES = {
    "cases.case": Fill(
        _case("in review"),
        "applicant",
        lambda v: {"body": "Sweep"},
        part="answers",
        more=lambda w: [{"uid": case.uid} for case in w.cases.values()],
    ),
    "cases.edit": Fill(_case("draft"), "applicant", lambda v: {"country": "KE"}, part="answers"),
    "cases.step": Fill(
        _case("draft", step=lambda w: steps.DEFENDER),
        "applicant",
        lambda v: {"country": "KE"},
        part="answers",
        more=lambda w: [
            {"uid": w.cases["draft"].uid, "step": step} for step in (*steps.STEPS, steps.REVIEW)
        ],
    ),
    "cases.withdraw_consent": Fill(
        _case("submitted", kind=lambda w: "referral"), "applicant", part="answers"
    ),
    "cases.give_consent": Fill(
        _case("submitted", kind=lambda w: "referral"), "applicant", part="answers"
    ),
    "cases.partner_label": Fill(
        _uid(lambda w: w.referred), "partner", lambda v: {"label-label": "Sweep"}, part="answers"
    ),
    "cases.upload": Fill(
        _case("in review"),
        "reviewer",
        lambda v: {"kind": "quote", "file": (io.BytesIO(_png()), "sweep.png")},
        part="documents",
    ),
    "cases.download": Fill(
        _case("in review", doc=lambda w: w.document.uid),
        "reviewer",
        part="documents",
        rows=("doc",),
    ),
    "network.refer": Fill(
        _case("in review"),
        "reviewer",
        lambda v: {
            "refer-to_fund": "x",
            "refer-category": "medical",
            "refer-amount": "1",
            "refer-currency": "EUR",
            "refer-reason": "Sweep",
            "refer-answer_by": (utcnow().date() + timedelta(days=30)).isoformat(),
        },
    ),
    "network.referral": Fill(_uid(lambda w: w.referral), "reviewer", part="assessment"),
    "network.shared_document": Fill(
        lambda w: {"uid": w.referral.uid, "doc": w.document.uid},
        "reviewer",
        part="documents",
        rows=("doc",),
    ),
    "network.accept": Fill(_uid(lambda w: w.referral), "reviewer"),
    "network.decline": Fill(
        _uid(lambda w: w.referral), "reviewer", lambda v: {"decline-reason": "Sweep"}
    ),
    "network.withdraw": Fill(_uid(lambda w: w.referral), "manager"),
    "network.referral_packet": Fill(_uid(lambda w: w.partner_referral), "reviewer"),
    "network.answer_packet": Fill(_uid(lambda w: w.partner_referral), "reviewer"),
    "network.ask_partner": Fill(
        _case("in review", partner=lambda w: w.partner.uid),
        "reviewer",
        lambda v: {"ask-partner": v["partner"]},
        rows=("partner",),
    ),
    "cases.report": Fill(
        _case("paying"), "applicant", lambda v: {"felt_safer": "yes", "continued_work": "yes"}
    ),
    "reviews.assign": Fill(
        _case("submitted", reviewer=lambda w: w.users["reviewer"].id),
        "manager",
        lambda v: {"assign-reviewer": v["reviewer"]},
        part="assessment",
        rows=("reviewer",),
    ),
    "reviews.add_note": Fill(
        _case("in review"),
        "reviewer",
        lambda v: {"note-kind": "note", "note-body": "Sweep"},
        part="assessment",
    ),
    "reviews.cofunding": Fill(
        _case("in review"),
        "reviewer",
        lambda v: {
            "cofunding-funder": "Sweep",
            "cofunding-amount": "300",
            "cofunding-currency": "EUR",
        },
        part="assessment",
    ),
    # Asking the other funds on the fund's own case: the answer names another fund by
    # its name only (tests/test_network_check.py holds it to that).
    "reviews.ask_network": Fill(_case("in review"), "reviewer", part="assessment"),
    "reviews.check_reference": Fill(
        _case("in review", ref=lambda w: w.cases["in review"].references[1].uid),
        "reviewer",
        lambda v: {f"ref-{v['ref']}-status": "confirmed", f"ref-{v['ref']}-notes": "Sweep"},
        part="assessment",
        rows=("ref",),
    ),
    "reviews.recommend": Fill(
        _case("in review"),
        "reviewer",
        lambda v: {
            "recommend-risk_level": "high",
            "recommend-recommendation": "approve",
            "recommend-lines-0": "900",
            "recommend-assessment": "Sweep",
        },
        part="assessment",
    ),
    "grants.ask": Fill(
        _case("in review"),
        "reviewer",
        lambda v: {"question-question": "Sweep"},
        part="messages",
    ),
    "reviews.conflict": Fill(
        _case("in review"), "manager2", lambda v: {"conflict-confirm": "y"}, part="assessment"
    ),
    "grants.approve": Fill(
        _case("recommended", pool=lambda w: w.pool.id),
        "manager",
        lambda v: {
            "approve-amount": "900",
            "approve-draws-0-pool": v["pool"],
            "approve-draws-0-amount": "900",
        },
        part="assessment",
        rows=("pool",),
    ),
    "grants.reject": Fill(
        _case("recommended"), "manager", lambda v: {"reject-reason": "Sweep"}, part="assessment"
    ),
    "grants.plan": Fill(
        _case("granted"),
        "manager",
        lambda v: {
            "plan-kind": "one_off",
            "plan-starts_on": (utcnow().date() + timedelta(days=5)).isoformat(),
            "plan-count": "1",
        },
        part="money",
    ),
    "grants.close": Fill(
        _case("granted"), "manager", lambda v: {"close-reason": "Sweep"}, part="money"
    ),
    "case_payments.move_plan": Fill(
        _case("paying"),
        "manager",
        lambda v: {"move-first_due_on": (utcnow().date() + timedelta(days=40)).isoformat()},
        part="money",
    ),
    "case_payments.record": Fill(
        _case(
            "paying",
            allocation=lambda w: payments.grant_allocations(w.grants["paying"])[0].id,
            entry=lambda w: w.entries["own"].uid,
        ),
        "finance",
        lambda v: {
            "pay-allocation": v["allocation"],
            "pay-payee_entry": v["entry"],
            "pay-instalment": 0,
            "pay-payee_type": "host_organisation",
            "pay-payee_details": "Sweep",
            "pay-channel": "bank",
            "pay-amount_paid": "10.00",
            "pay-currency_paid": "EUR",
            "pay-fee": "0",
            "pay-paid_on": utcnow().date().isoformat(),
            # The form's one-time key, of this form only.
            "pay-idempotency_key": f"sweep-{v['uid']}",
        },
        part="money",
        rows=("allocation", "entry"),
    ),
    "disbursements.proof": Fill(_uid(lambda w: w.payments["paid"]), "finance", part="money"),
    "disbursements.answer": Fill(
        _uid(lambda w: w.payments["paid"]),
        "applicant",
        lambda v: {"answer": "not_received", "note": "Sweep"},
        part="money",
    ),
    "disbursements.resolve": Fill(
        lambda w: {"uid": w.answer.uid},
        "finance",
        lambda v: {"resolve-outcome": "contacted"},
        part="money",
    ),
    "disbursements.import_statement": Fill(
        lambda w: {"reference": w.payments["spare"].reference}, "finance", _statement, part="money"
    ),
    "disbursements.add_proof": Fill(
        _uid(lambda w: w.payments["bounced"]),
        "finance",
        lambda v: {"proof-proof": (io.BytesIO(_png()), "sweep.png")},
        part="money",
    ),
    "disbursements.reverse": Fill(
        _uid(lambda w: w.payments["spare"]),
        "finance",
        lambda v: {"reverse-reason": "Sweep"},
        part="money",
    ),
    "disbursements.confirm_held": Fill(_uid(lambda w: w.held), "manager2", part="money"),
    "disbursements.refuse_held": Fill(
        _uid(lambda w: w.held), "manager2", lambda v: {"refuse-reason": "Sweep"}, part="money"
    ),
    "pools.pool": Fill(_uid(lambda w: w.pool), "manager"),
    "pools.contribute": Fill(
        _uid(lambda w: w.pool),
        "manager",
        lambda v: {
            "contribution-amount": "100",
            "contribution-currency": "EUR",
            "contribution-received_on": "2026-03-01",
        },
    ),
    "pools.reverse_contribution": Fill(
        _uid(lambda w: w.contribution), "manager", lambda v: {"uncontribute-reason": "Sweep"}
    ),
    "reports.staff_report": Fill(_uid(lambda w: w.pool), "manager", query=REPORT),
    "reports.explain_variance": Fill(
        _uid(lambda w: w.pool),
        "manager",
        lambda v: {
            "variance-period": "2026-01",
            "variance-line": "total",
            "variance-text": "Sweep",
        },
        part="money",
    ),
    "moved:/pools/<uid>/report": Fill(_uid(lambda w: w.pool), "manager", query=REPORT),
    "reports.donor_report": Fill(_uid(lambda w: w.pool), "donor", query=REPORT),
    "pools.create_pool": Fill(
        lambda w: {"donor": w.donor.id},
        "manager",
        lambda v: {"pool-donor": v["donor"], "pool-name": "Sweep", "pool-currency": "EUR"},
    ),
    "pools.confirm_rate": Fill(_uid(lambda w: w.rates["confirm"]), "manager", part="money"),
    "pools.refuse_rate": Fill(_uid(lambda w: w.rates["refuse"]), "manager", part="money"),
    "moved:/rates/<uid>/confirm": Fill(
        _uid(lambda w: w.rates["moved confirm"]), "manager", part="money"
    ),
    "moved:/rates/<uid>/refuse": Fill(
        _uid(lambda w: w.rates["moved refuse"]), "manager", part="money"
    ),
    "auth.alert_settings": Fill(
        lambda w: {"user": w.users["reviewer"].uid, "id": w.users["reviewer"].id},
        "admin",
        lambda v: {
            f"u{v['id']}-user": v["user"],
            f"u{v['id']}-email": "sweep@example.org",
            f"u{v['id']}-on_duty": "y",
        },
    ),
    # The search by a case's code: another fund's case is found as a code naming nothing
    # is (names and references: tests/test_search.py).
    "reports.search": Fill(
        lambda w: {"q": w.cases["in review"].uid}, "reviewer", lambda v: {"q": v["q"]}
    ),
    "auth.reset_second_factor": Fill(_uid(lambda w: w.users["reviewer2"]), "admin"),
    "auth.end_user_sessions": Fill(_uid(lambda w: w.users["reviewer2"]), "admin"),
    # Deactivated, then let in again: each step leaves the next one possible.
    "auth.deactivate": Fill(_uid(lambda w: w.users["reviewer2"]), "admin"),
    "auth.reactivate": Fill(_uid(lambda w: w.users["reviewer2"]), "admin"),
    "auth.revoke_invitation": Fill(_uid(lambda w: w.invitation), "admin"),
    "auth.confirm_invitation": Fill(_uid(lambda w: w.staff_invitations[1]), "manager"),
    # The directory's entry kept for its fund only; removing it comes last.
    "directory.entry": Fill(_uid(lambda w: w.entries["own"]), "reviewer"),
    "directory.edit": Fill(_uid(lambda w: w.entries["own"]), "manager"),
    "directory.update": Fill(_uid(lambda w: w.entries["own"]), "manager", _entry_form),
    "directory.verify": Fill(_uid(lambda w: w.entries["own"]), "manager"),
    "directory.payment": Fill(
        _uid(lambda w: w.entries["own"]),
        "finance",
        lambda v: {"payment-details": "Sweep"},
        part="money",
    ),
    # A file correcting the entry by its code: another fund's code is one it does not keep.
    "directory.import_entries": Fill(_uid(lambda w: w.entries["own"]), "manager", _entries_file),
    "directory.remove": Fill(_uid(lambda w: w.entries["own"]), "manager"),
    # The short ways to an urgent case's money: the queue's take-and-recommend, the
    # dashboard's confirmation of a first approval (refused in words on a case nobody
    # approved yet, past the access rule), a grant's pay page.
    "reviews.quick_recommend": Fill(
        _case("submitted"),
        "reviewer",
        lambda v: {
            "quick-risk_level": "high",
            "quick-recommendation": "approve",
            "quick-assessment": "Sweep",
        },
        part="assessment",
    ),
    "grants.confirm_approval": Fill(_case("recommended"), "manager2", part="assessment"),
    "case_payments.pay": Fill(_case("paying"), "finance", part="money"),
}

#: The applicant side ending what it started: last of all, as the fund's own account sent
#: them would leave no case or document for a route after them.
ROUTES.update(
    {
        "cases.remove_document": Fill(
            _case("in review", doc=lambda w: w.document.uid),
            "applicant",
            part="documents",
            rows=("doc",),
        ),
        "cases.withdraw": Fill(
            _case("submitted"), "applicant", lambda v: {"reason": "Sweep"}, part="answers"
        ),
        "cases.delete_draft": Fill(_case("draft"), "applicant", part="answers"),
    }
)


@dataclass(frozen=True)
class Page:
    """A page that lists or gathers things: its address from the reader's own world and
    the other one, the roles that read it, and what of their own fund they find there."""

    path: Callable
    readers: frozenset = frozenset()
    marker: Callable = field(default=lambda o: None)


REVIEWING = frozenset({"reviewer", "manager"})
DIRECTORY_READERS = frozenset({"reviewer", "manager", "finance"})
POOL_KEEPERS = frozenset({"manager", "finance", "admin"})

#: The pages that list things, by endpoint (every query string that filters by a row
#: names the other fund's row).
LISTS = {
    "auth.index": [Page(lambda o, w: "/", frozenset(SWEEPERS))],
    "auth.account": [Page(lambda o, w: "/account", frozenset(SWEEPERS))],
    "auth.users": [
        Page(lambda o, w: "/admin/users", {"admin"}, lambda o: o.users["reviewer2"].login)
    ],
    "auth.invitations_to_confirm": [
        Page(lambda o, w: "/fund/invitations", {"manager"}, lambda o: o.staff_invitations[0].login)
    ],
    "reviews.queue": [
        Page(lambda o, w: "/cases", REVIEWING, lambda o: o.cases["submitted"].uid),
        Page(
            lambda o, w: f"/cases?pool={w.pool.id}&sort=amount",
            REVIEWING,
            lambda o: o.cases["in review"].uid,
        ),
    ],
    "grants.coverage": [
        Page(lambda o, w: "/coverage", REVIEWING | {"finance"}, lambda o: o.cases["paying"].uid)
    ],
    "reports.portal": [Page(lambda o, w: "/donor", {"donor"}, lambda o: o.pool.name)],
    "reports.search_page": [Page(lambda o, w: "/search", REVIEWING | {"finance"})],
    # Staff downloads, each with a row of the reader's own fund.
    "reports.export_queue": [
        Page(lambda o, w: "/cases/export.csv", REVIEWING, lambda o: o.cases["submitted"].uid),
        Page(
            lambda o, w: "/cases/export.csv?names=1&sort=newest",
            REVIEWING,
            lambda o: o.cases["in review"].uid,
        ),
    ],
    "reports.export_payments_page": [Page(lambda o, w: "/payments/export", {"finance"})],
    "reports.export_payments": [
        Page(
            lambda o, w: f"/payments/export.csv?start={_TODAY - timedelta(days=3000)}&end={_TODAY}",
            {"finance"},
            lambda o: o.payments["spare"].reference,
        )
    ],
    "reports.export_follow_up": [
        Page(
            lambda o, w: "/payments/follow-up.csv",
            {"finance", "manager"},
            lambda o: o.cases["paying"].uid,
        )
    ],
    "reports.export_coverage": [
        Page(lambda o, w: "/coverage.csv", REVIEWING | {"finance"}, lambda o: o.cases["paying"].uid)
    ],
    # Counts of cases and the fund's pools with their charts (tests/test_dashboard.py
    # counts what each reader's dashboard adds up).
    "reports.dashboard": [
        Page(lambda o, w: "/dashboard", {"manager", "finance"}, lambda o: o.pool.name),
        Page(lambda o, w: "/dashboard", {"reviewer"}),
    ],
    "reports.internal": [
        Page(lambda o, w: "/reports/internal?period=2026", {"manager"}, lambda o: o.pool.name),
        Page(lambda o, w: "/reports/internal?period=2026-02", {"manager"}),
    ],
    "disbursements.index": [
        Page(
            lambda o, w: "/payments",
            {"finance"},
            lambda o: o.payments["spare"].reference,
        )
    ],
    "disbursements.to_pay": [
        Page(lambda o, w: "/payments/to-pay", {"finance"}, lambda o: o.cases["granted"].uid)
    ],
    "disbursements.follow_up": [
        Page(
            lambda o, w: "/payments/follow-up",
            {"finance", "manager"},
            lambda o: o.cases["paying"].uid,
        )
    ],
    "moved:/follow-up": [Page(lambda o, w: "/follow-up", {"finance", "manager"})],
    "pools.index": [Page(lambda o, w: "/pools", POOL_KEEPERS, lambda o: o.pool.name)],
    "pools.new": [Page(lambda o, w: "/pools/new", {"manager", "admin"}, lambda o: o.donor.name)],
    "pools.rates": [
        Page(
            lambda o, w: "/pools/rates",
            {"manager", "finance"},
            lambda o: o.rates["confirm"].source,
        )
    ],
    "moved:/rates": [Page(lambda o, w: "/rates", {"manager", "finance"})],
    "cases.mine": [Page(lambda o, w: "/my")],
    "cases.referrals": [Page(lambda o, w: "/referrals")],
    "cases.start": [Page(lambda o, w: "/apply")],
    "network.settings": [Page(lambda o, w: "/fund/settings", {"admin"}, lambda o: o.fund.name)],
    "network.partners": [Page(lambda o, w: "/fund/partners", {"admin"}, lambda o: o.partner.name)],
    # Counts only, of the alerts on the fund's own cases (tests/test_outbox_page.py).
    "network.outbox_page": [Page(lambda o, w: "/fund/outbox", {"admin"})],
    "network.packets_page": [Page(lambda o, w: "/network/packets", REVIEWING)],
    "network.referrals": [
        Page(lambda o, w: "/network/referrals", REVIEWING, lambda o: o.cases["in review"].uid)
    ],
    # The referral each world makes, to a fund outside the sweep, counted by that fund.
    "reports.network": [
        Page(lambda o, w: f"/reports/network?{NETWORK}", {"manager"}, lambda o: o.elsewhere),
        Page(lambda o, w: f"/reports/network?{NETWORK}&format=csv", {"manager"}),
    ],
    # The other fund's entry for the whole network is on these too: it is no canary.
    "directory.index": [
        Page(lambda o, w: "/directory", DIRECTORY_READERS, lambda o: o.entries["own"].name),
        Page(
            lambda o, w: "/directory?service=psychosocial&country=KE&language=en",
            DIRECTORY_READERS,
            lambda o: o.entries["own"].name,
        ),
    ],
    "directory.new": [Page(lambda o, w: "/directory/new", {"manager"})],
    "directory.export": [
        Page(lambda o, w: "/directory/export.csv", {"manager"}, lambda o: o.entries["own"].name)
    ],
}

#: The reader's own fund's pages and downloads that gather rows from elsewhere: a case's
#: possible duplicates and its defender's other support, a pool's rows, the reports.
OWN_PAGES = [
    *(
        Page(
            lambda o, w, name=name: f"/applications/{o.cases[name].uid}",
            REVIEWING,
            lambda o, name=name: o.cases[name].uid,
        )
        for name in ("submitted", "in review", "recommended")
    ),
    *(
        Page(
            lambda o, w, name=name: f"/applications/{o.cases[name].uid}",
            REVIEWING | {"finance"},
            lambda o, name=name: o.cases[name].uid,
        )
        for name in ("granted", "paying", "paid")
    ),
    Page(lambda o, w: f"/pools/{o.pool.uid}", POOL_KEEPERS, lambda o: o.pool.name),
    Page(lambda o, w: f"/reports/pools/{o.pool.uid}?{REPORT}", POOL_KEEPERS),
    Page(lambda o, w: f"/reports/pools/{o.pool.uid}?period=2026-01&format=csv", POOL_KEEPERS),
    Page(lambda o, w: f"/donor/pools/{o.pool.uid}/report?{REPORT}", {"donor"}),
]

#: Rules that name nothing of any fund, and where what they do is tested.
NAMES_NOTHING = {
    ("static", "GET"): "public files (tests/test_headers.py)",
    ("auth.login", "GET"): "signing in, before any fund (tests/test_access.py)",
    ("auth.login", "POST"): "signing in",
    ("auth.code", "GET"): "signing in",
    ("auth.code", "POST"): "signing in",
    ("auth.qr", "GET"): "signing in",
    ("auth.reset_code", "GET"): "signing in",
    ("auth.reset_code", "POST"): "signing in",
    ("auth.recovery", "GET"): "signing in",
    ("auth.recovery", "POST"): "signing in",
    ("auth.register", "GET"): "an applicant's sign-up",
    ("auth.register", "POST"): "an applicant's sign-up",
    ("auth.choose_language", "POST"): "the page language, in the session",
    ("auth.logout", "POST"): "the account's own session (tests/test_auth_views.py)",
    ("auth.change_password", "POST"): "the account's own password (tests/test_account.py)",
    ("auth.renew_recovery_codes", "POST"): "the account's own codes (tests/test_account.py)",
    ("auth.notice_settings", "POST"): "the account's own contact and notices "
    "(tests/test_applicant_notices.py)",
    ("cases.login_noted", "POST"): "the account's own session: its new login name hidden "
    "(tests/test_applicant_views.py)",
    ("auth.invite", "GET"): "an invitation to the actor's own fund, named by nothing sent",
    ("auth.send_invitation", "POST"): "an invitation to the actor's own fund; another "
    "fund's donor is refused (tests/test_invitations.py)",
    ("auth.invitation_link", "GET"): "an invitation's link, before sign-in: a token that "
    "names no fund (tests/test_invitations.py)",
    ("auth.invitation", "GET"): "the invitation whose token the session holds",
    ("auth.invitation", "POST"): "the invitation whose token the session holds",
    ("pools.create_donor", "POST"): "a donor of the actor's own fund, named by nothing sent",
    ("pools.add_rate", "POST"): "a rate of the actor's own fund, named by nothing sent",
    ("moved:/rates", "POST"): "pools.add_rate's old address",
    ("cases.begin", "GET"): "the first step for the choice of a fund open to all and a kind "
    "of support in its address, or sent back with a mistake, kept for the browser that "
    "sent it (tests/test_application_steps.py)",
    ("cases.begin", "POST"): "an applicant's or partner's new case, at a fund open to all "
    "(tests/test_application_steps.py)",
    ("network.directory", "GET"): "the public list of member funds (tests/test_member_funds.py)",
    ("cases.before", "GET"): "the public page before applying (tests/test_before_you_apply.py)",
    ("network.funds", "GET"): "the network administrator's, of no fund: every fund account "
    "is refused (tests/test_access.py, tests/test_member_funds.py)",
    ("network.create_fund", "POST"): "the network administrator's",
    ("network.suspend_fund", "POST"): "the network administrator's (tests/test_member_funds.py)",
    ("network.resume_fund", "POST"): "the network administrator's",
    ("network.name_intake", "POST"): "the network administrator's",
    ("network.partner_organisations", "GET"): "the network administrator's, of no fund: "
    "every fund account is refused (tests/test_partner_organisations.py)",
    ("network.create_partner", "POST"): "the network administrator's",
    ("network.deactivate_partner_account", "POST"): "the network administrator's; only a "
    "partner account is found (tests/test_partner_organisations.py)",
    ("network.reactivate_partner_account", "POST"): "the network administrator's",
    ("network.save_profile", "POST"): "the actor's own fund, named by nothing sent "
    "(tests/test_member_funds.py)",
    ("network.save_limits", "POST"): "the actor's own fund, named by nothing sent",
    ("network.try_again", "POST"): "the alerts of the actor's own fund's cases, named by "
    "nothing sent (tests/test_outbox_page.py)",
    ("reports.network_totals", "GET"): "the network administrator's counts over the network, "
    "no fund or case named (tests/test_network_report.py)",
    ("directory.create", "POST"): "an entry of the actor's own fund, named by nothing sent "
    "(tests/test_directory.py)",
    ("network.register_partner", "POST"): "a partner of the actor's own fund, named by "
    "nothing sent (tests/test_packet_views.py)",
    ("network.import_packet", "POST"): "a packet file, opened only with the actor's own "
    "fund's keys (tests/test_packets.py)",
    ("network.confirm_import", "POST"): "a packet held for the account that checked it: "
    "another account's token finds nothing (tests/test_packet_views.py)",
}


# -- Sending, and reading what came back --------------------------------------------------


def _fakes(values):
    """Values of the same shape that name nothing: no row has these codes or ids."""
    fakes = {}
    for n, (name, value) in enumerate(sorted(values.items())):
        if isinstance(value, int):
            fakes[name] = 2_000_000_000 + n
        else:
            fakes[name] = (f"zz{n}" * len(value))[: len(value)]
    return fakes


def _path(rule, values):
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: str(values[m[1]]), rule.rule)


@dataclass
class Answer:
    """What came back, and the redirects on the way: each one's status and address."""

    status: int
    body: bytes
    redirects: tuple = ()

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


def _send(client, rule, method, fill, values):
    """``method`` on ``rule`` filled with ``values``, redirects followed."""
    path = _path(rule, values) + (f"?{fill.query}" if fill.query else "")
    kwargs = {}
    if method != "GET":
        data = fill.form(values)
        kwargs["data"] = data
        if any(isinstance(v, tuple) for v in data.values()):
            kwargs["content_type"] = "multipart/form-data"
    with client.open(path, method=method, follow_redirects=True, **kwargs) as response:
        return _answer(response)


def _get(client, path):
    with client.get(path, follow_redirects=True) as response:
        return _answer(response)


def _answer(response):
    redirects = tuple(f"{r.status_code} {r.location}" for r in response.history)
    return Answer(response.status_code, response.get_data(), redirects)


def _plain(answer, values=None, fakes=None):
    """The redirects and the body without its CSRF tokens (signed with the second they
    were made in), the codes in ``values`` written as their ``fakes`` (codes only: a
    word such as the consent kind ``referral`` is also a word of every page)."""
    body = re.sub(rb'name="csrf_token" value="[^"]*"', b"", answer.body)
    body = b"\n".join([*(r.encode() for r in answer.redirects), body])
    for name, value in (values or {}).items():
        if isinstance(value, str) and len(value) >= 16:
            body = body.replace(value.encode(), str(fakes[name]).encode())
    return body


def _leaks(answer, forbidden, typed=()):
    """The canaries in ``answer`` and its redirects, but for what the request typed."""
    text = "\n".join([*answer.redirects, answer.text])
    return [c for c in forbidden if c in text and c not in typed]


#: The first words of a statement that may change rows, and the table it names first.
_CHANGES = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.IGNORECASE)
#: Statements that change no table's rows (reads, and a transaction's own steps).
_KEEPS = re.compile(r"\s*(?:SELECT|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA|SHOW)\b", re.I)


class _Snapshots:
    """Digests of every row of every table but ``OWN_TABLES``, by table. Each table is
    read again only once a statement may have changed it since it was last read: every
    statement any engine of the process runs is watched, and one that is neither a read
    nor an INSERT, UPDATE or DELETE naming its table (a WITH, a DDL) has every table read
    again."""

    def __init__(self):
        self.digests, self.stale = {}, None  # None: every table

    def watch(self, _conn, _cursor, statement, *_args):
        if self.stale is None or _KEEPS.match(statement):
            return
        changes = _CHANGES.match(statement)
        if changes is None:
            self.stale = None
        elif changes.group(1) not in OWN_TABLES:
            self.stale.add(changes.group(1))

    def __call__(self):
        stale, self.stale = self.stale, set()
        with reading():
            for table in db.metadata.sorted_tables:
                if table.name in OWN_TABLES or (stale is not None and table.name not in stale):
                    continue
                rows = db.session.execute(sa.select(table).order_by(*table.primary_key)).all()
                self.digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return dict(self.digests)


@pytest.fixture
def snapshot():
    """``snapshot()``: the digests of every table as they stand (see ``_Snapshots``)."""
    snapshots = _Snapshots()
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", snapshots.watch)
    yield snapshots
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", snapshots.watch)


def _changed(before, after):
    return sorted(name for name in before if before[name] != after[name])


def _rules(app):
    """Every rule by endpoint, its methods but HEAD and OPTIONS."""
    found = defaultdict(list)
    for rule in app.url_map.iter_rules():
        found[rule.endpoint].append((rule, sorted(rule.methods - {"HEAD", "OPTIONS"})))
    return found


# -- The sweeps ------------------------------------------------------------------------------


#: Tables of sign-in and session state: an account's own, rows of no fund's objects.
SESSION_TABLES = frozenset(
    {"password_check_budget", "sign_in_limits", "recovery_codes", "refused_forms"}
)


def test_the_snapshot_sees_every_way_a_row_changes(app, snapshot):
    """The sweeps' ``snapshot`` reads again what a statement may have changed: a plain
    UPDATE, one written in lower case, one behind a WITH, an INSERT and a DELETE; a change
    to a table the sweeps leave out (``OWN_TABLES``) is not one."""
    db.session.add(Fund(name="Before"))
    db.session.commit()
    before = snapshot()
    assert snapshot() == before
    for change in (
        "UPDATE funds SET name = 'Plain'",
        "update   \"funds\" set name = 'Lower'",
        "WITH x AS (SELECT 1) UPDATE funds SET name = 'With'",
        lambda: db.session.add(Fund(name="Inserted")),
        "DELETE FROM funds WHERE name = 'Inserted'",
    ):
        if callable(change):
            change()
        else:
            db.session.execute(sa.text(change))
        db.session.commit()
        after = snapshot()
        assert _changed(before, after) == ["funds"], change
        before = after
    db.session.execute(sa.text("DELETE FROM refused_forms"))
    db.session.commit()
    assert snapshot() == before


def test_every_kind_of_row_is_in_the_worlds(worlds):
    """Each table of the schema but the session state holds rows, at least one per fund:
    a new kind of object gets a place in ``FundWorld`` before it passes, so the sweeps
    meet it."""
    empty = []
    with reading():
        for table in db.metadata.sorted_tables:
            count = db.session.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            if table.name not in SESSION_TABLES and count < len(worlds):
                empty.append(table.name)
    assert not empty, f"tables the worlds leave with fewer rows than funds: {empty}"


def test_alerts_go_to_their_own_funds_staff_only(worlds):
    """Every alert queued on a case (an urgent case sent, a payment held for a second
    person, a target about to be missed) is for staff of the case's own fund."""
    queue_target_alerts(utcnow() + timedelta(days=3))
    db.session.commit()
    with reading():
        rows = db.session.execute(
            sa.select(Alert.kind, User.fund_id, Application.fund_id)
            .join(User, User.id == Alert.user_id)
            .join(Application, Application.id == Alert.application_id)
        ).all()
    kinds = {kind for kind, _staff, _case in rows}
    assert {AlertKind.URGENT_CASE, AlertKind.PAYMENT_HELD, AlertKind.TARGET_NEAR} <= kinds
    assert [(kind, staff, case) for kind, staff, case in rows if staff != case] == []


def test_every_route_is_swept(worlds):
    """Each rule and method of ``app.url_map`` is in ``ROUTES``, ``LISTS`` or
    ``NAMES_NOTHING``; each name there is a route that exists; each fill gives every URL
    variable of its rule from a fund's world."""
    world = worlds["B"]
    rules = _rules(world.app)
    missing = []
    for endpoint, entries in rules.items():
        for rule, methods in entries:
            for method in methods:
                covered = (
                    endpoint in ROUTES
                    or (method == "GET" and endpoint in LISTS)
                    or (endpoint, method) in NAMES_NOTHING
                )
                if not covered:
                    missing.append(f"{method} {rule.rule} ({endpoint})")
    assert not missing, "routes the isolation sweep does not cover:\n" + "\n".join(missing)
    methods = {(e, m) for e, entries in rules.items() for _r, ms in entries for m in ms}
    gone = [e for e in ROUTES if e not in rules] + [e for e in LISTS if (e, "GET") not in methods]
    gone += [f"{e} {m}" for e, m in NAMES_NOTHING if (e, m) not in methods]
    assert not gone, f"names kept for routes that are gone: {gone}"
    for endpoint, fill in ROUTES.items():
        for rule, methods in rules[endpoint]:
            for values in (v for method in methods for v in fill.variants(world, method)):
                assert set(rule.arguments) <= set(values), (endpoint, rule.arguments)


@pytest.mark.parametrize("role", SWEEPERS)
@pytest.mark.parametrize("direction", DIRECTIONS, ids="->".join)
def test_another_funds_values_open_nothing(worlds, direction, role, snapshot):
    """Every route naming something, filled with the other fund's codes and ids, answers
    this fund's account exactly as codes and ids that name nothing do, shows none of the
    other fund's canaries and changes nothing."""
    own, target = worlds[direction[0]], worlds[direction[1]]
    client = own.client(role)
    forbidden = target.forbidden(shared_parts(target, own.fund))
    rules = _rules(own.app)
    before = snapshot()
    sent = 0
    for endpoint, fill in ROUTES.items():
        for rule, methods in rules[endpoint]:
            for method in methods:
                for values in fill.variants(target, method):
                    fakes = _fakes(values)
                    typed = [v for v in values.values() if isinstance(v, str)]
                    where = f"{role} of fund {direction[0]}: {method} {rule.rule} {values}"
                    seen = _send(client, rule, method, fill, values)
                    after = snapshot()
                    assert after == before, f"{where} changed {_changed(before, after)}"
                    unknown = _send(client, rule, method, fill, fakes)
                    if rule.arguments:
                        assert seen.status in (403, 404), (where, seen.status)
                    assert seen.status == unknown.status, (where, seen.status, unknown.status)
                    assert _plain(seen, values, fakes) == _plain(unknown), where
                    leaks = _leaks(seen, forbidden, typed)
                    assert not leaks, (where, leaks)
                    sent += 1
    assert sent >= 45


@pytest.mark.parametrize("role", SWEEPERS)
@pytest.mark.parametrize("direction", DIRECTIONS, ids="->".join)
def test_lists_show_nothing_of_another_fund(worlds, direction, role):
    """Every page that lists things, and the account's own pages and downloads that gather
    rows, show its own fund's rows and none of the other fund's canaries."""
    own, target = worlds[direction[0]], worlds[direction[1]]
    client = own.client(role)
    forbidden = target.forbidden(shared_parts(target, own.fund))
    pages = [page for pages in LISTS.values() for page in pages] + OWN_PAGES
    read = 0
    for page in pages:
        path = page.path(own, target)
        answer = _get(client, path)
        where = f"{role} of fund {direction[0]}: {path}"
        assert not _leaks(answer, forbidden), (where, _leaks(answer, forbidden))
        if role in page.readers:
            assert answer.status == 200, (where, answer.status)
            marker = page.marker(own)
            assert marker is None or marker in answer.text, (where, marker)
            read += 1
    assert read >= 3


@pytest.mark.parametrize("direction", DIRECTIONS, ids="->".join)
def test_own_forms_naming_another_funds_rows_change_nothing(worlds, direction, snapshot):
    """A form on the fund's own case that picks a row of the other fund (a pool to draw
    on, a reviewer to assign, a grant's allocation to pay from, a reference to check, a
    document to download) is answered as one picking a row that does not exist, and
    changes nothing."""
    own, target = worlds[direction[0]], worlds[direction[1]]
    forbidden = target.forbidden(shared_parts(target, own.fund))
    rules = _rules(own.app)
    picking = {endpoint: fill for endpoint, fill in ROUTES.items() if fill.rows}
    clients = {fill.owner: own.client(fill.owner) for fill in picking.values()}
    before = snapshot()
    sent = 0
    for endpoint, fill in picking.items():
        client = clients[fill.owner]
        values, theirs = fill.values(own), fill.values(target)
        fakes = {**values, **{k: v for k, v in _fakes(theirs).items() if k in fill.rows}}
        values.update({name: theirs[name] for name in fill.rows})
        picked = {name: values[name] for name in fill.rows}
        typed = [v for v in picked.values() if isinstance(v, str)]
        for rule, methods in rules[endpoint]:
            for method in methods:
                where = f"{fill.owner} of fund {direction[0]}: {method} {rule.rule} {picked}"
                seen = _send(client, rule, method, fill, values)
                after = snapshot()
                assert after == before, f"{where} changed {_changed(before, after)}"
                unknown = _send(client, rule, method, fill, fakes)
                assert seen.status == unknown.status, (where, seen.status, unknown.status)
                assert _plain(seen, picked, fakes) == _plain(unknown), where
                assert not _leaks(seen, forbidden, typed), (where, _leaks(seen, forbidden, typed))
                sent += 1
    assert sent >= 5


@pytest.mark.parametrize("direction", DIRECTIONS, ids="->".join)
def test_the_duplicate_check_names_the_other_fund_and_nothing_else(worlds, direction):
    """Both funds support the same defender, with consent to referral on their cases in
    review: asking the other funds from one's own case finds the other fund, and the page
    after it names that fund and shows none of its other canaries (no code, answer,
    document, message, assessment or amount). Runs after the lists: the answer stays on
    the asker's page for a few minutes."""
    own, target = worlds[direction[0]], worlds[direction[1]]
    case = own.cases["in review"]
    with own.client("reviewer").post(
        f"/applications/{case.uid}/network", follow_redirects=True
    ) as response:
        answer = _answer(response)
    assert answer.status == 200 and target.fund.name in answer.text
    forbidden = [c for c in target.forbidden() if c != target.fund.name]
    assert not _leaks(answer, forbidden), _leaks(answer, forbidden)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("role", SWEEPERS)
def test_a_referral_opens_only_what_it_shares(worlds, direction, role):
    """The other fund referred a case to this one sharing its documents only: this fund's
    reviewers and managers open that referral's page and the document through it, and read
    nothing else of the case (no answer, message, assessment, amount, nor the case's code);
    every other role gets what an unknown referral gets, and reads nothing either."""
    own, target = worlds[direction[0]], worlds[direction[1]]
    referral, doc = target.shared, target.document
    client = own.client(role)
    page = f"/network/referrals/{referral.uid}"
    download = f"{page}/documents/{doc.uid}"
    allowed = {"documents"} if role in REVIEWING else set()
    forbidden = target.forbidden(allowed)
    typed = [referral.uid, doc.uid]
    for path in (page, download):
        with client.get(path, follow_redirects=True) as response:
            answer = _answer(response)
            headers = str(response.headers)
        if role in REVIEWING:
            assert answer.status == 200, (role, path, answer.status)
        else:
            fake = path.replace(referral.uid, "zz" * 10).replace(doc.uid, "yy" * 10)
            with client.get(fake, follow_redirects=True) as unknown:
                assert answer.status == unknown.status_code, (role, path)
            assert answer.status in (403, 404), (role, path, answer.status)
        leaks = _leaks(answer, forbidden, typed) + [c for c in forbidden if c in headers]
        assert not leaks, (role, path, leaks)
    if role in REVIEWING:
        text = client.get(page).get_data(as_text=True)
        assert "Shared for the sweep" in text and "Document 1" in text
        assert target.cases["in review"].uid not in text


def test_each_fund_opens_its_own(worlds):
    """Each request the sweep sent, sent by the fund's own account with its own fund's
    values, gets past the access rule: an answer other than 403 or 404, and other than
    the one for values that name nothing. The values swept were live. Runs last: it acts
    on both worlds."""
    for name, world in worlds.items():
        rules = _rules(world.app)
        for endpoint, fill in ROUTES.items():
            client = world.client(fill.owner)
            for rule, methods in rules[endpoint]:
                for method in methods:
                    for values in fill.variants(world, method):
                        fakes = _fakes(values)
                        where = f"{fill.owner} of fund {name}: {method} {rule.rule} {values}"
                        unknown = _send(client, rule, method, fill, fakes)
                        seen = _send(client, rule, method, fill, values)
                        assert seen.status not in (403, 404), (where, seen.status)
                        assert _plain(seen, values, fakes) != _plain(unknown), where
