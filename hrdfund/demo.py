"""A realistic demo world, written in bulk so that 100,000 applications load in seconds.

Small reference data (the fund, donors, pools, demo accounts) goes through the ORM and the
account service; the bulk (applications and everything hanging off them, grants, ledger
rows) is written with Core inserts in batches, ids assigned here so foreign keys can be
filled in Python. Every ledger row is sealed exactly like the services seal theirs, and the
ledger rules hold: no pool below zero, no allocation paid beyond what it commits.
"""

import json
import os
import random
import secrets
import time
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from . import audit, geo
from .applications.models import (
    Application,
    ApplicationStatus,
    BudgetLine,
    Category,
    Consent,
    ConsentKind,
    Dependant,
    Gender,
    Message,
    Reference,
    StatusChange,
    Urgency,
    UseOfFundsReport,
    VerificationStatus,
)
from .applications.review_models import (
    Decision,
    DecisionOutcome,
    Recommendation,
    Review,
    RiskLevel,
)
from .auth import services as auth_services
from .auth.models import Fund, PartnerOrganisation, Role, User
from .columns import cipher, new_uid, utcnow
from .disbursements.models import Channel, Disbursement, PayeeType, Receipt
from .extensions import db
from .grants.models import (
    Allocation,
    Grant,
    GrantStatus,
    Instalment,
    PaymentPlan,
    PlanKind,
    Release,
)
from .money import quantize
from .pools.models import Contribution, Donor, ExchangeRate, Pool, PoolRestriction

DEFAULT_SCALE = 300
BATCH = 10_000
SEED = 20261124
RATE_PLACES = Decimal("0.00000001")
S = ApplicationStatus

#: Status mix of the demo world (weights).
STATUS_WEIGHTS = {
    S.DRAFT: 3,
    S.SUBMITTED: 4,
    S.IN_REVIEW: 5,
    S.INFO_REQUESTED: 2,
    S.RECOMMENDED: 2,
    S.AWAITING_SECOND_APPROVAL: 1,
    S.APPROVED: 3,
    S.REJECTED: 10,
    S.PAYING: 24,
    S.COMPLETED: 42,
    S.WITHDRAWN: 4,
}
#: Category mix, and how each is paid: (weight, plan kind, instalments low, high).
CATEGORY_PLANS = {
    Category.LONGER_TERM: (24, PlanKind.STIPEND, 6, 24),
    Category.RELOCATION: (14, PlanKind.TRANCHES, 2, 4),
    Category.MEDICAL: (13, PlanKind.TRANCHES, 1, 4),
    Category.DEPENDANTS: (10, PlanKind.STIPEND, 4, 12),
    Category.LEGAL: (8, PlanKind.TRANCHES, 2, 4),
    Category.PRISON_VISITS: (5, PlanKind.STIPEND, 3, 9),
    Category.TRIAL_MONITORING: (3, PlanKind.ONE_OFF, 1, 1),
    Category.PHYSICAL_SECURITY: (7, PlanKind.TRANCHES, 1, 2),
    Category.DIGITAL_SECURITY: (7, PlanKind.ONE_OFF, 1, 1),
    Category.HUMANITARIAN: (7, PlanKind.STIPEND, 3, 9),
    Category.OTHER: (2, PlanKind.ONE_OFF, 1, 1),
}
#: Units of each currency per US dollar: rough, fixed demo rates.
PER_USD = {
    "USD": "1",
    "EUR": "0.92",
    "GBP": "0.79",
    "SEK": "10.4",
    "CHF": "0.88",
    "KES": "129",
    "UGX": "3700",
    "TZS": "2600",
    "ETB": "57",
    "SDG": "600",
    "CDF": "2800",
    "XAF": "605",
    "NGN": "1500",
    "GHS": "15",
    "XOF": "605",
    "ZAR": "18.5",
    "EGP": "48",
    "MAD": "10",
    "TND": "3.1",
    "JOD": "0.71",
    "LBP": "89500",
    "IQD": "1310",
    "YER": "250",
    "TRY": "34",
    "COP": "4000",
    "PEN": "3.75",
    "BOB": "6.9",
    "VES": "36.5",
    "MXN": "17.5",
    "GTQ": "7.8",
    "HNL": "24.7",
    "NIO": "36.6",
    "BRL": "5.1",
    "INR": "83",
    "PKR": "278",
    "BDT": "117",
    "NPR": "133",
    "LKR": "300",
    "AFN": "71",
    "MMK": "2100",
    "THB": "36",
    "PHP": "56",
    "IDR": "15800",
    "KHR": "4100",
    "MYR": "4.7",
    "KGS": "89",
    "KZT": "470",
    "UZS": "12600",
    "TJS": "10.9",
    "GEL": "2.7",
    "AMD": "390",
    "AZN": "1.7",
    "UAH": "41",
    "BYN": "3.27",
    "RUB": "92",
}
WORK = (
    "land rights",
    "press freedom",
    "women's rights",
    "LGBTQI+ rights",
    "indigenous rights",
    "environmental defence",
    "labour rights",
    "anti-corruption reporting",
    "documenting torture",
    "legal aid to detainees",
)
THREATS = (
    "death threats after publishing",
    "arbitrary detention",
    "raid on the office",
    "surveillance and stalking",
    "physical attack",
    "smear campaign and threats",
    "judicial harassment",
    "threats to family members",
)
CHANNELS = tuple(Channel)
PAYEE_BY_CATEGORY = {
    Category.MEDICAL: PayeeType.VENDOR,
    Category.RELOCATION: PayeeType.HOST_ORGANISATION,
}


def _rate(pool_currency, paid_currency):
    """Units of ``pool_currency`` per unit of ``paid_currency`` (8 places)."""
    value = Decimal(PER_USD[pool_currency]) / Decimal(PER_USD[paid_currency])
    return value.quantize(RATE_PLACES)


def load_demo_data(scale=DEFAULT_SCALE):
    """Build the demo world of ``scale`` applications; return counts and the accounts file."""
    started = time.monotonic()
    world = _World(random.Random(SEED), scale)
    world.build()
    audit.record(
        "demo.loaded",
        object_type="funds",
        object_id=str(world.fund.id),
        applications=scale,
        disbursements=world.counts["disbursements"],
    )
    db.session.flush()
    return {
        "applications": scale,
        "disbursements": world.counts["disbursements"],
        "seconds": time.monotonic() - started,
        "accounts_file": world.accounts_file,
    }


class _Table:
    """Buffers rows for one table, with explicit ids; the world writes all tables together,
    parents first, so foreign keys hold at every batch."""

    def __init__(self, model):
        self.table = model.__table__
        self.rows = []
        self.count = 0
        self.next_id = (
            db.session.execute(sa.select(sa.func.max(self.table.c.id))).scalar() or 0
        ) + 1

    def add(self, **row):
        """Queue a row and return its id."""
        row_id = self.next_id
        self.next_id += 1
        row["id"] = row_id
        self.rows.append(row)
        return row_id

    def flush(self):
        """Write the queued rows, grouped by the columns they set (executemany needs one)."""
        groups = {}
        for row in self.rows:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        for rows in groups.values():
            db.session.execute(sa.insert(self.table), rows)
        self.count += len(self.rows)
        self.rows = []


class _World:
    def __init__(self, rng, scale):
        self.rng = rng
        self.scale = scale
        self.today = utcnow().date()
        self.now = utcnow().replace(microsecond=0)
        self.cipher = cipher()
        self.counts = {}

    # -- helpers ------------------------------------------------------------------------

    def enc(self, table, column, uid, text):
        """Encrypt one field for one row, as the Encrypted descriptor would."""
        return self.cipher.encrypt(text, table, column, uid)

    def moment(self, start, max_hours):
        """A time between ``start`` and ``max_hours`` later, never in the future."""
        return min(start + timedelta(hours=self.rng.uniform(1, max_hours)), self.now)

    # -- reference data through the ORM -------------------------------------------------

    def build(self):
        self.fund = Fund(name="Demo Protection Fund")
        db.session.add(self.fund)
        self.orgs = [
            PartnerOrganisation(name=n, country=c)
            for n, c in (
                ("Coastal Defenders Network", "KE"),
                ("Andes Legal Collective", "CO"),
                ("Mekong Rights Watch", "KH"),
            )
        ]
        db.session.add_all(self.orgs)
        db.session.flush()
        self._pools()
        self._accounts()
        self.tables = {
            m: _Table(m)
            for m in (
                User,
                Application,
                StatusChange,
                Dependant,
                BudgetLine,
                Reference,
                Review,
                Decision,
                Consent,
                Message,
                Grant,
                Allocation,
                Release,
                PaymentPlan,
                Instalment,
                Disbursement,
                Receipt,
                UseOfFundsReport,
                Contribution,
                ExchangeRate,
            )
        }
        self.committed = {p.id: Decimal(0) for p in self.pools}
        self.rate_pairs = set()
        self._applications()
        self._contributions()
        self._exchange_rates()
        self._flush_all()
        if db.session.get_bind().dialect.name == "postgresql":
            for model in self.tables:
                name = model.__tablename__
                db.session.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                        f'(SELECT COALESCE(MAX(id), 1) FROM "{name}"))'
                    )
                )
        self.counts = {m.__tablename__: t.count for m, t in self.tables.items()}

    def _flush_all(self):
        for table in self.tables.values():
            table.flush()

    def _pools(self):
        start = self.today - timedelta(days=1100)
        spec = [
            (
                "Nordic Solidarity Foundation",
                [
                    ("Emergency Protection Pool", "SEK", None, {}),
                    (
                        "Relocation and Safe Haven",
                        "EUR",
                        "15000",
                        {"category": ["relocation", "medical", "dependants"]},
                    ),
                ],
            ),
            (
                "Open Horizons Trust",
                [
                    ("General Protection Fund", "USD", None, {}),
                    (
                        "Americas Defenders Pool",
                        "USD",
                        "20000",
                        {
                            "region": [
                                "Andean region",
                                "Central America and Mexico",
                                "South America",
                            ]
                        },
                    ),
                ],
            ),
            (
                "Ministry of Foreign Affairs (demo)",
                [
                    ("Human Rights Defenders Programme", "EUR", None, {}),
                    (
                        "Africa Emergency Window",
                        "EUR",
                        "10000",
                        {
                            "region": [
                                "East Africa",
                                "Central Africa",
                                "West Africa",
                                "Southern Africa",
                            ]
                        },
                    ),
                    ("Women Defenders Support", "GBP", "8000", {}),
                ],
            ),
        ]
        self.donors, self.pools = [], []
        for donor_name, pools in spec:
            donor = Donor(name=donor_name, fund=self.fund)
            db.session.add(donor)
            self.donors.append(donor)
            for name, currency, cap, restrictions in pools:
                pool = Pool(
                    fund=self.fund,
                    donor=donor,
                    name=name,
                    currency=currency,
                    cap_per_grant=Decimal(cap) if cap else None,
                    starts_on=start,
                )
                for kind, values in restrictions.items():
                    pool.restrictions += [PoolRestriction(kind=kind, value=v) for v in values]
                db.session.add(pool)
                self.pools.append(pool)
        db.session.flush()
        self.pool_rules = [self._rules(p) for p in self.pools]

    @staticmethod
    def _rules(pool):
        rules = {"category": set(), "region": set(), "country": set()}
        for r in pool.restrictions:
            rules[str(r.kind)].add(r.value)
        return rules

    def _accounts(self):
        plan = [
            (Role.APPLICANT, "Amani (demo applicant)", {}),
            (Role.APPLICANT, "Lucia (demo applicant)", {}),
            (Role.APPLICANT, "Dara (demo applicant)", {}),
            (
                Role.PARTNER,
                "Coastal Defenders Network (demo partner)",
                {"partner_organisation_id": self.orgs[0].id},
            ),
            (Role.REVIEWER, "Rita Reviewer (demo)", {"fund_id": self.fund.id}),
            (Role.MANAGER, "Mona Manager (demo)", {"fund_id": self.fund.id}),
            (Role.MANAGER, "Marek Manager (demo)", {"fund_id": self.fund.id}),
            (Role.FINANCE, "Femi Finance (demo)", {"fund_id": self.fund.id}),
            (
                Role.DONOR,
                "Nordic Solidarity Foundation (demo donor)",
                {"fund_id": self.fund.id, "donor_id": self.donors[0].id},
            ),
            (
                Role.DONOR,
                "Ministry of Foreign Affairs (demo donor)",
                {"fund_id": self.fund.id, "donor_id": self.donors[2].id},
            ),
            (Role.ADMIN, "Ada Admin (demo)", {"fund_id": self.fund.id}),
        ]
        self.accounts, self.users = [], {}
        counters = {}
        for role, name, fields in plan:
            counters[role] = counters.get(role, 0) + 1
            login = f"demo-{role.value}{counters[role]}"
            password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
            user = auth_services.create_user(role, login, password, display_name=name, **fields)
            if user.needs_totp:
                user.totp_confirmed_at = self.now
            self.users.setdefault(role, []).append(user)
            self.accounts.append(
                {
                    "role": role.value,
                    "login": login,
                    "password": password,
                    "totp_secret": user.totp_secret,
                    "name": name,
                }
            )
        db.session.flush()
        path = os.path.join(current_app.instance_path, "demo-accounts.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.accounts, fh, indent=2)
        os.chmod(path, 0o600)
        self.accounts_file = path

    # -- the bulk ------------------------------------------------------------------------

    def _applications(self):
        rng = self.rng
        statuses = rng.choices(list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values()), k=self.scale)
        # The first applications cover every status and category, whatever the scale.
        for i, status in enumerate(list(S)[: self.scale]):
            statuses[i] = status
        categories = rng.choices(
            list(CATEGORY_PLANS), [v[0] for v in CATEGORY_PLANS.values()], k=self.scale
        )
        for i, category in enumerate(list(Category)[: self.scale]):
            categories[-1 - i] = category
        countries = list(geo.COUNTRIES)
        named = self.users[Role.APPLICANT]
        partner = self.users[Role.PARTNER][0]
        bulk_users = self.tables[User]
        for i in range(self.scale):
            if i < 3 * len(named) * 2:
                applicant_id = named[i % len(named)].id
            elif rng.random() < 0.8:
                uid = new_uid()
                applicant_id = bulk_users.add(
                    uid=uid,
                    login=f"defender-{uid}",
                    role=Role.APPLICANT,
                    password_hash=None,
                    active=True,
                    session_version=1,
                    failed_logins=0,
                    created_at=self.now,
                )
            else:
                applicant_id = None
            by_partner = applicant_id is None or (i % 7 == 3)
            org = self.orgs[0] if i % 2 == 0 else self.orgs[i % 3]
            self._application(
                i,
                statuses[i],
                categories[i],
                rng.choice(countries),
                applicant_id,
                org if by_partner else None,
                partner if by_partner and org is self.orgs[0] else None,
            )
            if i % 2000 == 1999:
                self._flush_all()

    def _application(self, i, status, category, country, applicant_id, org, partner_user):
        rng = self.rng
        uid = new_uid()
        pools_currency = rng.choice(("EUR", "EUR", "USD", "USD", "SEK", "GBP"))
        dependants = rng.choice((0, 0, 0, 1, 2, 3, 4))
        requested = quantize(Decimal(rng.randrange(300, 30000)))
        created = self.now - timedelta(days=rng.uniform(1, 1000))
        times = self._timeline(status, category, created)
        enc = self.enc
        details = self._details(category, country, dependants)
        app_id = self.tables[Application].add(
            uid=uid,
            fund_id=self.fund.id,
            applicant_id=applicant_id,
            partner_organisation_id=org.id if org else None,
            submitted_by_id=partner_user.id if partner_user else applicant_id,
            category=category,
            status=status,
            urgency=Urgency.URGENT if rng.random() < 0.35 else Urgency.NORMAL,
            country=country,
            region=geo.region_of(country),
            gender=rng.choice(
                (
                    Gender.WOMAN,
                    Gender.WOMAN,
                    Gender.MAN,
                    Gender.MAN,
                    Gender.NON_BINARY,
                    Gender.UNDISCLOSED,
                )
            ),
            amount_requested=requested,
            currency=pools_currency,
            dependants_count=dependants,
            defender_name=enc("applications", "defender_name", uid, f"Demo defender {i + 1}"),
            defender_work=enc(
                "applications", "defender_work", uid, f"Works on {rng.choice(WORK)} (demo text)"
            ),
            threat=enc("applications", "threat", uid, f"Faces {rng.choice(THREATS)} (demo text)"),
            urgency_reason=enc(
                "applications", "urgency_reason", uid, "The threat escalated last week (demo text)"
            ),
            other_funders=enc("applications", "other_funders", uid, "None asked yet (demo)")
            if rng.random() < 0.8
            else None,
            details=enc("applications", "details", uid, json.dumps(details, sort_keys=True)),
            created_at=created,
            updated_at=times["last"],
            submitted_at=times.get(S.SUBMITTED),
            first_response_at=times.get("response"),
            decided_at=times.get("decided"),
            closed_at=times.get("closed"),
        )
        for step_from, step_to, at in times["steps"]:
            self.tables[StatusChange].add(
                application_id=app_id,
                from_status=step_from,
                to_status=step_to,
                actor_id=None,
                at=at,
            )
        self._parts(app_id, dependants, requested, pools_currency, org, partner_user, created)
        self._staff_side(app_id, status, times, requested, pools_currency)
        if status in (S.APPROVED, S.PAYING, S.COMPLETED):
            self._grant(
                app_id, category, country, status, times, requested, pools_currency, applicant_id
            )

    def _timeline(self, status, category, created):
        """Timestamps of each step a case in ``status`` went through."""
        rng = self.rng
        path = {
            S.DRAFT: [],
            S.SUBMITTED: [S.SUBMITTED],
            S.WITHDRAWN: [S.SUBMITTED, S.WITHDRAWN],
            S.IN_REVIEW: [S.SUBMITTED, S.IN_REVIEW],
            S.INFO_REQUESTED: [S.SUBMITTED, S.IN_REVIEW, S.INFO_REQUESTED],
            S.RECOMMENDED: [S.SUBMITTED, S.IN_REVIEW, S.RECOMMENDED],
            S.AWAITING_SECOND_APPROVAL: [
                S.SUBMITTED,
                S.IN_REVIEW,
                S.RECOMMENDED,
                S.AWAITING_SECOND_APPROVAL,
            ],
            S.REJECTED: [S.SUBMITTED, S.IN_REVIEW, S.REJECTED],
            S.APPROVED: [S.SUBMITTED, S.IN_REVIEW, S.RECOMMENDED, S.APPROVED],
            S.PAYING: [S.SUBMITTED, S.IN_REVIEW, S.RECOMMENDED, S.APPROVED, S.PAYING],
            S.COMPLETED: [
                S.SUBMITTED,
                S.IN_REVIEW,
                S.RECOMMENDED,
                S.APPROVED,
                S.PAYING,
                S.COMPLETED,
            ],
        }[status]
        _, kind, _, high = CATEGORY_PLANS[category]
        span = {PlanKind.STIPEND: 31 * high, PlanKind.TRANCHES: 45 * high, PlanKind.ONE_OFF: 10}[
            kind
        ]
        if status in (
            S.SUBMITTED,
            S.IN_REVIEW,
            S.INFO_REQUESTED,
            S.RECOMMENDED,
            S.AWAITING_SECOND_APPROVAL,
        ):
            created = self.now - timedelta(hours=rng.uniform(2, 24 * 12))
        elif status == S.APPROVED:
            created = self.now - timedelta(days=rng.uniform(3, 12))
        elif status == S.PAYING:
            created = self.now - timedelta(days=rng.uniform(20, max(30, span - 10)))
        elif status == S.COMPLETED:
            created = self.now - timedelta(days=rng.uniform(span + 40, span + 800))
        times = {"steps": [], "last": created}
        at, previous = created, S.DRAFT
        for step in path:
            if step == S.COMPLETED:
                at = min(at + timedelta(days=span), self.now)
            else:
                at = self.moment(at, {S.SUBMITTED: 48, S.IN_REVIEW: 40, S.PAYING: 96}.get(step, 60))
            times[step] = at
            times["steps"].append((previous, step, at))
            previous = step
        if len(path) > 1:
            times["response"] = times["steps"][1][2]
        for key in (S.APPROVED, S.REJECTED):
            if key in times:
                times["decided"] = times[key]
        if status in (S.COMPLETED, S.WITHDRAWN):
            times["closed"] = times["steps"][-1][2]
        times["last"] = at
        return times

    def _details(self, category, country, dependants):
        rng = self.rng
        if category == Category.RELOCATION:
            return {
                "scope": rng.choice(("in_country", "region", "abroad")),
                "destination_country": rng.choice(list(geo.COUNTRIES)),
                "host_organisation": "Demo host organisation",
                "people": 1 + dependants,
                "months": rng.randint(3, 12),
                "stay_plan": "Temporary stay (demo)",
                "security_plan": "Travel with a partner escort (demo)",
                "exit_plan": "Return when the threat decreases (demo)",
            }
        if category == Category.MEDICAL:
            return {
                "provider": "Demo clinic",
                "treatment": "Treatment after an attack (demo)",
                "linked_to_threat": True,
            }
        if category == Category.LONGER_TERM:
            return {"months": rng.randint(6, 24), "where": rng.choice(("in_country", "exile"))}
        if category == Category.DEPENDANTS:
            return {"dependants": dependants, "needs": "School fees and housing (demo)"}
        return {"summary": f"Support for {category.value.replace('_', ' ')} (demo)"}

    def _parts(self, app_id, dependants, requested, currency, org, partner_user, created):
        rng, enc = self.rng, self.enc
        for _ in range(dependants):
            uid = new_uid()
            self.tables[Dependant].add(
                uid=uid,
                application_id=app_id,
                age=rng.randint(0, 17),
                relationship=enc("dependants", "relationship", uid, "child (demo)"),
            )
        lines = rng.randint(1, 3)
        remaining = requested
        for n in range(lines):
            amount = remaining if n == lines - 1 else quantize(remaining / (lines - n))
            remaining -= amount
            uid = new_uid()
            self.tables[BudgetLine].add(
                uid=uid,
                application_id=app_id,
                amount=amount,
                currency=currency,
                description=enc("budget_lines", "description", uid, f"Budget item {n + 1}"),
            )
        for n in range(2):
            uid = new_uid()
            self.tables[Reference].add(
                uid=uid,
                application_id=app_id,
                status=VerificationStatus.PENDING,
                name=enc("references", "name", uid, f"Demo referee {n + 1}"),
                contact=enc("references", "contact", uid, "via the partner (demo)"),
            )
        if org is not None:
            self.tables[Consent].add(
                uid=new_uid(),
                application_id=app_id,
                kind=ConsentKind.PARTNER_SUBMISSION,
                method="in person",
                recorded_by_id=partner_user.id if partner_user else None,
                given_at=created,
            )

    def _staff_side(self, app_id, status, times, requested, currency):
        rng, enc = self.rng, self.enc
        reviewer = self.users[Role.REVIEWER][0]
        first, second = self.users[Role.MANAGER]
        if status == S.INFO_REQUESTED:
            uid = new_uid()
            self.tables[Message].add(
                uid=uid,
                application_id=app_id,
                author_id=reviewer.id,
                from_staff=True,
                is_question=True,
                created_at=times[S.INFO_REQUESTED],
                body=enc("messages", "body", uid, "Could you send the clinic's quote? (demo)"),
            )
        if S.RECOMMENDED in times or S.REJECTED in times:
            uid = new_uid()
            rejected = S.REJECTED in times
            self.tables[Review].add(
                uid=uid,
                application_id=app_id,
                reviewer_id=reviewer.id,
                risk_level=rng.choice(list(RiskLevel)),
                recommendation=Recommendation.REJECT if rejected else Recommendation.APPROVE,
                recommended_amount=None if rejected else requested,
                currency=currency,
                created_at=times.get(S.RECOMMENDED, times.get(S.REJECTED)),
                assessment=enc("reviews", "assessment", uid, "Threat verified (demo)"),
            )
        if S.REJECTED in times:
            uid = new_uid()
            self.tables[Decision].add(
                uid=uid,
                application_id=app_id,
                manager_id=first.id,
                outcome=DecisionOutcome.REJECT,
                currency=currency,
                round=1,
                created_at=times[S.REJECTED],
                reason=enc("decisions", "reason", uid, "Outside the fund's mandate (demo)"),
            )
        approvals = []
        if S.AWAITING_SECOND_APPROVAL in times:
            approvals = [(first, times[S.AWAITING_SECOND_APPROVAL])]
        if S.APPROVED in times:
            approvals = [(first, times[S.APPROVED])]
            if requested >= Decimal(current_app.config["FOUR_EYES_THRESHOLD"]):
                approvals = [(first, times[S.RECOMMENDED]), (second, times[S.APPROVED])]
        for manager, at in approvals:
            self.tables[Decision].add(
                uid=new_uid(),
                application_id=app_id,
                manager_id=manager.id,
                outcome=DecisionOutcome.APPROVE,
                amount=requested,
                currency=currency,
                round=1,
                created_at=at,
            )

    # -- money ---------------------------------------------------------------------------

    def _eligible_pools(self, category, country, amount, currency):
        region = geo.region_of(country)
        fits = []
        for pool, rules in zip(self.pools, self.pool_rules, strict=True):
            if rules["category"] and category.value not in rules["category"]:
                continue
            if rules["region"] and region not in rules["region"]:
                continue
            if pool.cap_per_grant is not None and amount > pool.cap_per_grant:
                continue
            fits.append(pool)
        same = [p for p in fits if p.currency == currency]
        return same or fits

    def _grant(self, app_id, category, country, status, times, requested, currency, applicant_id):
        rng = self.rng
        decided = times["decided"]
        amount = requested if rng.random() < 0.7 else quantize(requested * Decimal("0.8"))
        grant_uid = new_uid()
        grant_id = self.tables[Grant].add(
            uid=grant_uid,
            fund_id=self.fund.id,
            application_id=app_id,
            amount=amount,
            currency=currency,
            status=GrantStatus.CLOSED if status == S.COMPLETED else GrantStatus.ACTIVE,
            approved_at=decided,
            closed_at=times.get("closed"),
            created_at=decided,
        )
        pools = self._eligible_pools(category, country, amount, currency)
        split = len(pools) > 1 and rng.random() < 0.15
        chosen = rng.sample(pools, 2) if split else [rng.choice(pools)]
        shares = [quantize(amount / 2), amount - quantize(amount / 2)] if split else [amount]
        allocations = []
        for pool, share in zip(chosen, shares, strict=True):
            rate = Decimal(1) if pool.currency == currency else _rate(pool.currency, currency)
            if rate != 1:
                self.rate_pairs.add((currency, pool.currency))
            pool_amount = quantize(share * rate)
            values = {
                "uid": new_uid(),
                "grant_id": grant_id,
                "pool_id": pool.id,
                "amount": pool_amount,
                "grant_amount": share,
                "fx_rate": rate,
            }
            alloc_id = self.tables[Allocation].add(
                **values, seal=audit.seal("allocations", values), created_at=decided
            )
            self.committed[pool.id] += pool_amount
            allocations.append({"id": alloc_id, "pool": pool, "left": pool_amount, "rate": rate})
        self._plan_and_pay(
            grant_id,
            category,
            country,
            status,
            decided,
            amount,
            currency,
            allocations,
            applicant_id,
            app_id,
        )

    def _plan_and_pay(
        self,
        grant_id,
        category,
        country,
        status,
        decided,
        amount,
        currency,
        allocations,
        applicant_id,
        app_id,
    ):
        rng = self.rng
        _, kind, low, high = CATEGORY_PLANS[category]
        count = rng.randint(low, high) if kind != PlanKind.ONE_OFF else 1
        if kind == PlanKind.TRANCHES and (amount < 2000 or count == 1):
            kind, count = PlanKind.ONE_OFF, 1
        start = (decided + timedelta(days=rng.randint(1, 4))).date()
        step = 30 if kind == PlanKind.STIPEND else 45
        ends = start + timedelta(days=step * (count - 1))
        plan_id = self.tables[PaymentPlan].add(
            grant_id=grant_id,
            kind=kind,
            starts_on=start,
            ends_on=ends,
            renewal_review_on=ends - timedelta(days=30) if kind == PlanKind.STIPEND else None,
            hold_for_report=kind == PlanKind.TRANCHES and rng.random() < 0.3,
            created_at=decided,
        )
        per = quantize(amount / count)
        local = geo.local_currency(country) if rng.random() < 0.7 else None
        # A completed grant sometimes closes under budget: its last instalment is not paid.
        unpaid_tail = 1 if status == S.COMPLETED and count > 1 and rng.random() < 0.2 else 0
        for seq in range(1, count + 1):
            value = per if seq < count else amount - per * (count - 1)
            due = start + timedelta(days=step * (seq - 1))
            inst_id = self.tables[Instalment].add(
                plan_id=plan_id,
                seq=seq,
                due_on=due,
                amount=value,
                currency=currency,
                period_month=due.replace(day=1) if kind == PlanKind.STIPEND else None,
            )
            paid = (
                status == S.COMPLETED
                and seq <= count - unpaid_tail
                or status == S.PAYING
                and due <= self.today - timedelta(days=2)
            )
            if status == S.PAYING and seq == 1:
                paid = True
            if paid:
                self._pay(grant_id, inst_id, value, due, category, allocations, local, applicant_id)
        if status == S.COMPLETED:
            for alloc in allocations:
                if alloc["left"] > 0:
                    values = {
                        "uid": new_uid(),
                        "allocation_id": alloc["id"],
                        "amount": alloc["left"],
                    }
                    self.tables[Release].add(
                        **values,
                        reason="Grant closed under budget",
                        seal=audit.seal("releases", values),
                        created_at=self.now,
                    )
                    self.committed[alloc["pool"].id] -= alloc["left"]
            if self.rng.random() < 0.5:
                self.tables[UseOfFundsReport].add(
                    uid=new_uid(),
                    application_id=app_id,
                    felt_safer=rng.random() < 0.8,
                    continued_work=rng.random() < 0.7,
                    submitted_at=self.now,
                )

    def _pay(self, grant_id, inst_id, value, due, category, allocations, local, applicant_id):
        """Pay one instalment (grant currency) from the allocations, in pool currency."""
        rng = self.rng
        paid_on = min(due + timedelta(days=rng.randint(0, 5)), self.today)
        for alloc in allocations:
            if value <= 0:
                break
            in_pool = min(quantize(value * alloc["rate"]), alloc["left"])
            if in_pool <= 0:
                continue
            value -= quantize(in_pool / alloc["rate"]) if alloc["rate"] != 1 else in_pool
            alloc["left"] -= in_pool
            if rng.random() < 0.02:
                original = self._disburse(
                    grant_id, alloc, inst_id, in_pool, paid_on, category, local
                )
                self._disburse(
                    grant_id,
                    alloc,
                    inst_id,
                    in_pool,
                    paid_on,
                    category,
                    local,
                    reversal_of=original,
                )
                paid_on = min(paid_on + timedelta(days=3), self.today)
            disbursement = self._disburse(
                grant_id, alloc, inst_id, in_pool, paid_on, category, local
            )
            if applicant_id and rng.random() < 0.4:
                self.tables[Receipt].add(
                    disbursement_id=disbursement,
                    confirmed_by_id=applicant_id,
                    confirmed_at=datetime.combine(paid_on, datetime.min.time())
                    + timedelta(days=2, hours=10),
                )

    def _disburse(
        self, grant_id, alloc, inst_id, in_pool, paid_on, category, local, reversal_of=None
    ):
        """One disbursement row (or the reversal of ``reversal_of``), sealed."""
        rng = self.rng
        pool = alloc["pool"]
        paid_currency = local or pool.currency
        rate = Decimal(1) if paid_currency == pool.currency else _rate(pool.currency, paid_currency)
        if rate != 1:
            self.rate_pairs.add((paid_currency, pool.currency))
        amount_paid = quantize(in_pool / rate) if rate != 1 else in_pool
        if amount_paid <= 0:
            amount_paid = Decimal("0.01")
        fee = quantize(in_pool * Decimal("0.01")) if rng.random() < 0.3 else Decimal("0.00")
        uid = new_uid()
        values = {
            "uid": uid,
            "grant_id": grant_id,
            "allocation_id": alloc["id"],
            "pool_id": pool.id,
            "instalment_id": inst_id,
            "amount_paid": amount_paid,
            "currency_paid": paid_currency,
            "amount": in_pool,
            "fx_rate": rate,
            "fee_amount": fee,
            "paid_on": paid_on,
            "reversal_of_id": reversal_of,
        }
        table = self.tables[Disbursement]
        return table.add(
            **values,
            seal=audit.seal("disbursements", values),
            payee_type=PAYEE_BY_CATEGORY.get(category, PayeeType.DEFENDER),
            payee_details=self.enc(
                "disbursements", "payee_details", uid, f"Demo account {rng.randrange(10**7, 10**8)}"
            ),
            channel=rng.choice(CHANNELS),
            rate_source="Demo rate table" if rate != 1 else None,
            reference=f"PAY-{table.next_id:08d}",
            idempotency_key=None if reversal_of else secrets.token_hex(16),
            reason="Returned by the receiving bank" if reversal_of else None,
            recorded_by_id=self.users[Role.FINANCE][0].id,
            created_at=datetime.combine(paid_on, datetime.min.time()) + timedelta(hours=9),
        )

    def _contributions(self):
        """Enough money received into every pool to cover what it committed, and more."""
        rng = self.rng
        finance = self.users[Role.FINANCE][0]
        start = self.today - timedelta(days=1095)
        for pool in self.pools:
            target = quantize(self.committed[pool.id] * Decimal("1.15") + 50000)
            parts = 4 + rng.randrange(5)
            for n in range(parts):
                amount = quantize(target / parts)
                received_currency, rate = pool.currency, Decimal(1)
                if n == 1 and pool.currency != "USD":
                    received_currency, rate = "USD", _rate(pool.currency, "USD")
                received = quantize(amount / rate) if rate != 1 else amount
                values = {
                    "uid": new_uid(),
                    "pool_id": pool.id,
                    "amount": amount,
                    "received_amount": received,
                    "received_currency": received_currency,
                    "fx_rate": rate,
                    "received_on": start + timedelta(days=90 * n),
                    "reversal_of_id": None,
                }
                self.tables[Contribution].add(
                    **values,
                    seal=audit.seal("contributions", values),
                    reference=f"{pool.name[:20]} grant letter {n + 1}",
                    recorded_by_id=finance.id,
                    created_at=self.now,
                )
            if pool is self.pools[0]:
                # The last contribution booked a second time by mistake, then reversed.
                values = {**values, "uid": new_uid()}
                duplicate = self.tables[Contribution].add(
                    **values,
                    seal=audit.seal("contributions", values),
                    reference="Booked twice",
                    recorded_by_id=finance.id,
                    created_at=self.now,
                )
                values = {**values, "uid": new_uid(), "reversal_of_id": duplicate}
                self.tables[Contribution].add(
                    **values,
                    seal=audit.seal("contributions", values),
                    reason="Booked twice",
                    recorded_by_id=finance.id,
                    created_at=self.now,
                )

    def _exchange_rates(self):
        on = self.today - timedelta(days=1)
        for base, quote in sorted(self.rate_pairs):
            self.tables[ExchangeRate].add(
                fund_id=self.fund.id,
                on_date=on,
                base=base,
                quote=quote,
                rate=_rate(quote, base),
                source="Demo rate table",
                created_at=self.now,
            )
