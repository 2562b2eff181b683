"""A realistic demo world, written in bulk so that 100,000 applications load in about a minute.

Reference data (the fund, donors, pools, the demo accounts) goes through the ORM and the
account service. The bulk (applications and everything hanging off them, grants, ledger
rows) is written in batches with ids assigned here, so foreign keys are filled in Python:
Core inserts on SQLite, COPY on PostgreSQL (where executemany costs a round of the
pipeline per row). Every ledger row is sealed as the services seal theirs, and the ledger
rules hold at every date: no pool below zero, no allocation paid beyond what it commits.
"""

import json
import os
import random
import secrets
import time
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

import sqlalchemy as sa
from flask import current_app

from . import audit
from .applications import services as app_services
from .applications import targets
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
from .core import geo, limits
from .core.columns import cipher, utcnow
from .core.extensions import db
from .core.money import CENT, RATE_PLACES, convert, quantize
from .disbursements.bounds import Bounds
from .disbursements.models import Channel, Disbursement, PayeeType, Receipt, reference_key
from .grants.models import (
    Allocation,
    ApprovalDraw,
    Grant,
    GrantStatus,
    Instalment,
    PaymentPlan,
    PlanKind,
    Release,
)
from .pools.models import (
    Contribution,
    Donor,
    ExchangeRate,
    Pool,
    PoolRestriction,
    RestrictionKind,
)

DEFAULT_SCALE = 300
SEED = 20261124
#: Applications generated between two writes (about 20,000 rows in the largest tables).
BATCH = 2000
#: How far back the demo world goes: about two and a half years.
HISTORY_DAYS = 913
#: Pools opened a little before the first case.
POOLS_OPEN_DAYS = 1000
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
#: Per category: weight; amount asked in US dollars (a month's worth for a stipend); how it
#: is paid; and the range of instalments (months for a stipend).
CATEGORIES = {
    Category.LONGER_TERM: (24, 250, 1200, PlanKind.STIPEND, 6, 24),
    Category.RELOCATION: (14, 1500, 18000, PlanKind.TRANCHES, 2, 4),
    Category.MEDICAL: (13, 300, 12000, PlanKind.TRANCHES, 1, 3),
    Category.DEPENDANTS: (10, 150, 600, PlanKind.STIPEND, 6, 12),
    Category.LEGAL: (8, 800, 9000, PlanKind.TRANCHES, 2, 4),
    Category.PRISON_VISITS: (5, 80, 300, PlanKind.STIPEND, 3, 12),
    Category.TRIAL_MONITORING: (3, 400, 3000, PlanKind.ONE_OFF, 1, 1),
    Category.PHYSICAL_SECURITY: (7, 600, 9000, PlanKind.TRANCHES, 1, 2),
    Category.DIGITAL_SECURITY: (7, 300, 3500, PlanKind.ONE_OFF, 1, 1),
    Category.HUMANITARIAN: (7, 150, 500, PlanKind.STIPEND, 3, 12),
    Category.OTHER: (2, 300, 3000, PlanKind.ONE_OFF, 1, 1),
}
#: The donors' pools. Optional: a cap per grant; allowed categories, countries or regions;
#: a date window (opened and closed, in days before today); the currency contributions
#: arrive in when it is not the pool's.
POOLS = (
    {
        "donor": "Nordic Solidarity Foundation",
        "name": "Emergency Protection Pool",
        "currency": "SEK",
    },
    {
        "donor": "Nordic Solidarity Foundation",
        "name": "Relocation and Safe Haven",
        "currency": "EUR",
        "cap": "15000",
        "category": ("relocation", "medical", "dependants"),
        "paid_in": "SEK",
    },
    {"donor": "Open Horizons Trust", "name": "General Protection Fund", "currency": "USD"},
    {
        "donor": "Open Horizons Trust",
        "name": "Americas Defenders Pool",
        "currency": "USD",
        "cap": "20000",
        "region": ("Andean region", "Central America and Mexico", "South America"),
    },
    {
        "donor": "Open Horizons Trust",
        "name": "Election Period Emergency Window",
        "currency": "USD",
        "cap": "6000",
        "window": (700, 280),
        "country": ("KE", "UG", "TZ", "ZW", "NG", "VE", "BY", "GE", "PK", "BD"),
        "category": ("legal", "physical_security", "digital_security", "trial_monitoring"),
    },
    {
        "donor": "Ministry of Foreign Affairs (demo)",
        "name": "Human Rights Defenders Programme",
        "currency": "EUR",
    },
    {
        "donor": "Ministry of Foreign Affairs (demo)",
        "name": "Africa Emergency Window",
        "currency": "EUR",
        "cap": "10000",
        "region": ("East Africa", "Central Africa", "West Africa", "Southern Africa"),
    },
    {
        "donor": "Ministry of Foreign Affairs (demo)",
        "name": "Digital and Physical Security Pool",
        "currency": "GBP",
        "cap": "8000",
        "category": ("physical_security", "digital_security"),
        "paid_in": "EUR",
    },
)
#: Below this (in US dollars) a grant is paid at once, whatever its category.
TRANCHE_MINIMUM = 2000
BUDGET_ITEMS = {
    Category.LONGER_TERM: ("Rent", "Food and transport", "Phone and internet"),
    Category.RELOCATION: (
        "Travel for the family",
        "Rent at the destination",
        "Visa and permit fees",
        "Basic household items",
    ),
    Category.MEDICAL: (
        "Treatment at the clinic",
        "Medicines",
        "Follow-up consultations",
        "Psychosocial sessions",
    ),
    Category.DEPENDANTS: ("School fees", "Housing for the family", "Childcare"),
    Category.LEGAL: ("Lawyer's fees", "Court fees", "Travel to hearings"),
    Category.PRISON_VISITS: ("Travel to the prison", "Food and medicine for the detainee"),
    Category.TRIAL_MONITORING: ("Observers' travel", "Interpretation at the hearings"),
    Category.PHYSICAL_SECURITY: (
        "Locks and a reinforced door",
        "Security cameras",
        "Safe transport",
    ),
    Category.DIGITAL_SECURITY: ("Replacement laptop", "Secure phone", "Digital security training"),
    Category.HUMANITARIAN: ("Food", "Rent", "Transport"),
    Category.OTHER: ("Support requested",),
}
#: Units of each currency per US dollar two and a half years ago: rough demo rates that
#: then drift month by month.
PER_USD = {
    "USD": "1",
    "EUR": "0.92",
    "GBP": "0.79",
    "SEK": "10.4",
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
#: Currencies whose rate barely moves; the others drift and slowly lose value.
STEADY = frozenset({"USD", "EUR", "GBP", "SEK", "JOD", "XOF", "XAF"})
WORK = (
    "land rights",
    "press freedom",
    "women's rights",
    "LGBTQI+ rights",
    "indigenous peoples' rights",
    "environmental defence",
    "labour rights",
    "anti-corruption reporting",
    "documenting torture",
    "legal aid to detainees",
)
THREATS = (
    "death threats after reporting on {work}",
    "arbitrary detention after a protest on {work}",
    "a raid on the office after work on {work}",
    "surveillance and stalking linked to {work}",
    "a physical attack after speaking about {work}",
    "a smear campaign and threats over {work}",
    "judicial harassment over {work}",
    "threats to family members because of {work}",
)
DETAIL_TEXT = {
    "stay_plan": ("Temporary humanitarian visa (demo)", "Stay with the host organisation (demo)"),
    "security_plan": ("Travel with a partner escort (demo)", "Leave at night by road (demo)"),
    "exit_plan": ("Return when the threat decreases (demo)", "Apply for protection (demo)"),
    "provider": ("Demo city hospital", "Demo trauma clinic", "Demo psychologist"),
    "treatment": ("Surgery after an attack (demo)", "Psychosocial care, 12 sessions (demo)"),
    "link_to_threat": ("Injured during the raid (demo)", "Trauma after detention (demo)"),
    "needs": ("School fees and housing (demo)", "Food and rent while detained (demo)"),
    "case_summary": ("Defamation charges for a report (demo)", "Charged after a protest (demo)"),
    "lawyer": ("Demo legal aid clinic", "Demo human rights lawyers"),
    "costs": ("Bus fare and food for each visit (demo)",),
    "trial": ("Hearing of a defender charged for a protest (demo)",),
    "measures": ("Locks, lighting and a camera at home (demo)", "Safe transport (demo)"),
    "equipment": ("Laptop seized in a raid (demo)", "Phone confiscated at a checkpoint (demo)"),
    "description": ("Support requested (demo)",),
}
#: Abroad destinations for relocation (not necessarily in the list of countries we serve).
ABROAD = ("DE", "NL", "ES", "CR", "ZA", "KE", "GE", "TH")
PAYEE_DETAILS = {
    Channel.BANK: "Demo bank account",
    Channel.MONEY_TRANSFER: "Demo transfer recipient",
    Channel.MOBILE_MONEY: "Demo mobile wallet",
    Channel.CASH_THROUGH_PARTNER: "Demo partner cash handover",
    Channel.IN_KIND: "Demo supplier order",
}
RETURN_REASONS = (
    "Returned by the receiving bank",
    "Mobile money number no longer active",
    "Payee could not collect the cash",
)
#: The first cases, whatever the scale: each demo applicant and the demo partner follow
#: cases in several states, and every state appears.
SHOWCASE = (
    (0, S.DRAFT),
    (0, S.INFO_REQUESTED),
    (0, S.PAYING),
    (0, S.COMPLETED),
    (0, S.REJECTED),
    (1, S.SUBMITTED),
    (1, S.IN_REVIEW),
    (1, S.APPROVED),
    (1, S.PAYING),
    (1, S.WITHDRAWN),
    (2, S.RECOMMENDED),
    (2, S.AWAITING_SECOND_APPROVAL),
    (2, S.COMPLETED),
    (2, S.PAYING),
    (2, S.DRAFT),
    ("partner", S.IN_REVIEW),
    ("partner", S.INFO_REQUESTED),
    ("partner", S.PAYING),
    ("partner", S.COMPLETED),
    ("partner", S.SUBMITTED),
    ("partner", S.DRAFT),
)
OPEN = frozenset({S.IN_REVIEW, S.INFO_REQUESTED, S.RECOMMENDED, S.AWAITING_SECOND_APPROVAL})
FUNDED = frozenset({S.APPROVED, S.PAYING, S.COMPLETED})


def load_demo_data(scale=DEFAULT_SCALE):
    """Build the demo world of ``scale`` applications; return counts and the accounts file."""
    started = time.monotonic()
    world = _World(random.Random(SEED), scale)
    world.build()
    audit.record(
        "demo.loaded",
        object_type="funds",
        object_id=str(world.fund.id),
        **{name: count for name, count in world.counts.items() if count},
    )
    db.session.flush()
    return {
        "applications": world.counts["applications"],
        "disbursements": world.counts["disbursements"],
        "seconds": time.monotonic() - started,
        "accounts_file": world.accounts_file,
    }


def _uids():
    """Row uids as ``new_uid`` makes them, drawn from the system's randomness in blocks."""
    while True:
        block = os.urandom(10 * 4096).hex()
        for start in range(0, len(block), 20):
            yield block[start : start + 20]


def _months_after(day, months):
    """The same day ``months`` calendar months later (days above 28 are not used)."""
    index = day.month - 1 + months
    return day.replace(year=day.year + index // 12, month=index % 12 + 1)


class _Table:
    """Rows waiting to be written to one table, with their ids assigned here."""

    def __init__(self, model, use_copy):
        self.table = model.__table__
        self.rows = []
        self.count = 0
        self.use_copy = use_copy
        last = db.session.execute(sa.select(sa.func.max(self.table.c.id))).scalar()
        self.next_id = (last or 0) + 1

    def add(self, row):
        """Queue a row (every row of a table sets the same columns); return its id."""
        row["id"] = row_id = self.next_id
        self.next_id += 1
        self.rows.append(row)
        return row_id

    def flush(self):
        """Write the queued rows."""
        if not self.rows:
            return
        if self.use_copy:
            self._copy()
        else:
            db.session.execute(sa.insert(self.table), self.rows)
        self.count += len(self.rows)
        self.rows = []

    def _copy(self):
        columns = list(self.rows[0])
        names = ", ".join(f'"{name}"' for name in columns)
        raw = db.session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f'COPY "{self.table.name}" ({names}) FROM STDIN') as copy:
                for row in self.rows:
                    copy.write_row([row[name] for name in columns])


class _Rates:
    """Monthly demo exchange rates: a seeded drift from PER_USD, Decimal throughout."""

    def __init__(self, rng, first_day, last_day):
        self.first = first_day.replace(day=1)
        months = (last_day.year - self.first.year) * 12 + last_day.month - self.first.month + 1
        self.per_usd = {}
        for code, start in PER_USD.items():
            value, series = Decimal(start), []
            spread, drift = (4, 0) if code in STEADY else (15, 6)
            for _ in range(months):
                series.append(value)
                change = Decimal(rng.randint(-spread, spread) + drift) / 1000
                value = (value * (1 + change)).quantize(Decimal("0.0001"))
            self.per_usd[code] = series
        self.cache = {}
        #: Called with (base, quote, first day of the month, rate) for each rate the first
        #: time it is used; returns the id of its table entry.
        self.record = None

    def rate(self, quote, base, day):
        """Units of ``quote`` per unit of ``base`` in the month of ``day`` (8 places)."""
        return self.entry(quote, base, day)[0]

    def entry(self, quote, base, day):
        """:meth:`rate` and the id of its table entry (None for one currency)."""
        if quote == base:
            return Decimal(1), None
        month = (day.year - self.first.year) * 12 + day.month - self.first.month
        key = (quote, base, month)
        found = self.cache.get(key)
        if found is None:
            value = self.per_usd[quote][month] / self.per_usd[base][month]
            value = value.quantize(RATE_PLACES)
            found = self.cache[key] = (
                value,
                self.record(base, quote, _months_after(self.first, month), value),
            )
        return found

    def worth_range(self, currency, reporting):
        """The least and most one unit of ``currency`` is worth in ``reporting`` over every
        month of the series."""
        if currency == reporting:
            return Decimal(1), Decimal(1)
        values = [
            to / unit
            for to, unit in zip(self.per_usd[reporting], self.per_usd[currency], strict=True)
        ]
        return min(values), max(values)

    def usd_to(self, currency):
        """Units of ``currency`` per US dollar at the start (for sizing requests)."""
        return Decimal(PER_USD[currency])


class _Grant:
    """What paying one grant needs to know."""

    __slots__ = (
        "id",
        "row",
        "category",
        "allocations",
        "owner",
        "approvals",
        "paid_currency",
        "payee",
        "channel",
    )


class _World:
    """The demo world being built: reference data, buffers and the seeded generator."""

    def __init__(self, rng, scale):
        self.rng = rng
        self.scale = scale
        # The hour, not the second, so that the same seed gives the same world all hour.
        self.now = utcnow().replace(minute=0, second=0, microsecond=0)
        self.today = self.now.date()
        # Money moves on past days only, so no ledger row is dated after it was written.
        self.last_day = self.today - timedelta(days=1)
        self.cipher = cipher()
        self.audit_key = current_app.extensions["hrdfund_audit_key"]
        # The four-eyes threshold is an amount in the reporting currency.
        self.threshold = limits.four_eyes_threshold()
        self.reporting = limits.reporting_currency()
        self.uid = _uids().__next__
        self.counts = {}

    # -- helpers ------------------------------------------------------------------------

    def enc(self, table, column, uid, text):
        """Encrypt one field for one row, as the Encrypted descriptor would."""
        return self.cipher.encrypt(text, table, column, uid)

    def hours(self, low, high):
        """A random duration between ``low`` and ``high`` hours, to the second."""
        return timedelta(seconds=int(self.rng.uniform(low, high) * 3600))

    def nice(self, usd, currency):
        """A round amount in ``currency`` worth about ``usd`` US dollars."""
        per_usd = self.rates.usd_to(currency)
        unit = Decimal(100) if per_usd > 5 else Decimal(10)
        rounded = (Decimal(usd) * per_usd / unit).to_integral_value() * unit
        return quantize(max(unit, rounded))

    # -- reference data through the ORM -------------------------------------------------

    def build(self):
        """Create everything, parents before children, and write it."""
        first = self.today - timedelta(days=POOLS_OPEN_DAYS + 31)
        self.rates = _Rates(self.rng, first, self.today)
        self.fund = Fund(name="Demo Protection Fund")
        self.fund.created_at = self.now - timedelta(days=POOLS_OPEN_DAYS + 60)
        db.session.add(self.fund)
        self.orgs = [
            PartnerOrganisation(name=name, country=country, created_at=self.fund.created_at)
            for name, country in (
                ("Coastal Defenders Network", "KE"),
                ("Andes Legal Collective", "CO"),
                ("Mekong Rights Watch", "KH"),
            )
        ]
        db.session.add_all(self.orgs)
        db.session.flush()
        self._pools()
        self._accounts()
        use_copy = db.session.get_bind().dialect.name == "postgresql"
        # Parents before children: each batch is written in this order.
        self.tables = {
            model: _Table(model, use_copy)
            for model in (
                User,
                ExchangeRate,
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
                ApprovalDraw,
                Release,
                PaymentPlan,
                Instalment,
                Disbursement,
                Receipt,
                UseOfFundsReport,
                Contribution,
            )
        }
        self.rates.record = self._exchange_rate
        self.bounds = Bounds.in_force()
        self._partner_staff()
        # Gross allocations per pool and quarter of the pool's life, to time contributions.
        self.draws = {pool.id: {} for pool in self.pools}
        self._applications()
        self._contributions()
        self._flush_all()
        if use_copy:
            for model in self.tables:
                name = model.__tablename__
                db.session.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "  # noqa: S608
                        f'COALESCE(MAX(id), 0) + 1, false) FROM "{name}"'
                    )
                )
        self.counts = {m.__tablename__: t.count for m, t in self.tables.items()}

    def _flush_all(self):
        for table in self.tables.values():
            table.flush()

    def _pools(self):
        """Three donors and eight pools in four currencies, with restrictions and caps."""
        donors = {}
        self.pools, self.pool_rules = [], {}
        for spec in POOLS:
            if spec["donor"] not in donors:
                donors[spec["donor"]] = Donor(
                    name=spec["donor"], fund=self.fund, created_at=self.fund.created_at
                )
                db.session.add(donors[spec["donor"]])
            starts, ends = self.today - timedelta(days=POOLS_OPEN_DAYS), None
            if "window" in spec:
                starts = self.today - timedelta(days=spec["window"][0])
                ends = self.today - timedelta(days=spec["window"][1])
            pool = Pool(
                fund=self.fund,
                donor=donors[spec["donor"]],
                name=spec["name"],
                currency=spec["currency"],
                cap_per_grant=Decimal(spec["cap"]) if "cap" in spec else None,
                starts_on=starts,
                ends_on=ends,
                created_at=datetime.combine(starts, datetime.min.time()),
            )
            rules = {kind: spec.get(kind.value, ()) for kind in RestrictionKind}
            for kind, values in rules.items():
                pool.restrictions += [PoolRestriction(kind=kind, value=v) for v in values]
            db.session.add(pool)
            self.pools.append(pool)
        db.session.flush()
        self.donors = list(donors.values())
        for pool, spec in zip(self.pools, POOLS, strict=True):
            rules = {kind.value: set(spec.get(kind.value, ())) for kind in RestrictionKind}
            self.pool_rules[pool.id] = (rules, spec.get("paid_in", pool.currency))

    def _accounts(self):
        """The demo accounts, through the account service, and the file listing them."""
        fund = {"fund_id": self.fund.id}
        plan = [
            (Role.APPLICANT, "Amani (demo applicant)", {}),
            (Role.APPLICANT, "Lucia (demo applicant)", {}),
            (Role.APPLICANT, "Dara (demo applicant)", {}),
            (
                Role.PARTNER,
                "Coastal Defenders Network (demo partner)",
                {"partner_organisation_id": self.orgs[0].id},
            ),
            (Role.REVIEWER, "Rita Reviewer (demo)", fund),
            (Role.MANAGER, "Mona Manager (demo)", fund),
            (Role.MANAGER, "Marek Manager (demo)", fund),
            (Role.FINANCE, "Femi Finance (demo)", fund),
            (
                Role.DONOR,
                "Nordic Solidarity Foundation (demo donor)",
                {**fund, "donor_id": self.donors[0].id},
            ),
            (
                Role.DONOR,
                "Ministry of Foreign Affairs (demo donor)",
                {**fund, "donor_id": self.donors[2].id},
            ),
            (Role.ADMIN, "Ada Admin (demo)", fund),
        ]
        accounts, self.users, counters = [], {}, {}
        for role, name, fields in plan:
            counters[role] = counters.get(role, 0) + 1
            login = f"demo-{role.value}{counters[role]}"
            password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
            user = auth_services.create_user(role, login, password, display_name=name, **fields)
            user.created_at = self.fund.created_at
            if user.needs_totp:
                # Enrolled already: the usual two-step sign-in applies from the first visit.
                user.totp_confirmed_at = self.fund.created_at
            if role in (Role.REVIEWER, Role.MANAGER):
                # Where staff alerts go (nowhere real: example.org never receives mail).
                user.contact = f"{login}@example.org"
                user.on_duty = counters[role] == 1
            self.users.setdefault(role, []).append(user.id)
            accounts.append(
                {
                    "role": role.value,
                    "login": login,
                    "password": password,
                    "totp_secret": user.totp_secret,
                    "name": name,
                }
            )
        db.session.flush()
        self.reviewer = self.users[Role.REVIEWER][0]
        self.managers = self.users[Role.MANAGER]
        self.finance = self.users[Role.FINANCE][0]
        path = os.path.join(current_app.instance_path, "demo-accounts.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(accounts, fh, indent=2)
        # An older file keeps its old mode through O_CREAT; the passwords are new.
        os.chmod(path, 0o600)
        self.accounts_file = path

    def _user(self, role, created, login, org_id=None):
        """A user without a password (cannot sign in), written in bulk."""
        return self.tables[User].add(
            {
                "uid": self.uid(),
                "login": login,
                "display_name": None,
                "password_hash": None,
                "role": role,
                "fund_id": None,
                "partner_organisation_id": org_id,
                "active": True,
                "session_version": 1,
                "created_at": created,
            }
        )

    def _partner_staff(self):
        """The other partner organisations' staff: they refer cases, without a demo login."""
        self.partner_users = {self.orgs[0].id: self.users[Role.PARTNER][0]}
        for org in self.orgs[1:]:
            self.partner_users[org.id] = self._user(
                Role.PARTNER, self.fund.created_at, f"partner-{self.uid()}", org.id
            )
        self.org_countries = {
            org.id: [c for c in geo.COUNTRIES if geo.region_of(c) == geo.region_of(org.country)]
            for org in self.orgs
        }

    # -- the cases ----------------------------------------------------------------------

    def _applications(self):
        """Every case: the showcase first, then a seeded mix; written every BATCH."""
        rng = self.rng
        statuses = list(STATUS_WEIGHTS)
        status_weights = list(STATUS_WEIGHTS.values())
        categories = list(CATEGORIES)
        category_weights = [spec[0] for spec in CATEGORIES.values()]
        countries = list(geo.COUNTRIES)
        named = self.users[Role.APPLICANT]
        for i in range(self.scale):
            org = None
            if i < len(SHOWCASE):
                who, status = SHOWCASE[i]
                # The showcase runs through the categories, so every one appears too.
                category = categories[i % len(categories)]
                applicant = named[who] if who != "partner" else None
                if who == "partner":
                    org = self.orgs[0]
            else:
                status = rng.choices(statuses, status_weights)[0]
                category = rng.choices(categories, category_weights)[0]
                applicant = "new"
                if rng.random() < 0.28:
                    org = rng.choice(self.orgs)
                    applicant = "new" if rng.random() < 0.5 else None
            country = rng.choice(self.org_countries[org.id] if org else countries)
            self._case(i, status, category, country, applicant, org)
            if i % BATCH == BATCH - 1:
                self._flush_all()

    def _case(self, i, status, category, country, applicant, org):
        """One application with its parts, history, staff side and money."""
        rng = self.rng
        urgent = rng.random() < 0.35
        currency = self._request_currency(geo.region_of(country))
        least, most = self.rates.worth_range(currency, self.reporting)
        minimum = Decimal(0)
        if status == S.AWAITING_SECOND_APPROVAL:
            # Worth the threshold in the reporting currency whatever the month's rate.
            minimum = (self.threshold / least).to_integral_value(ROUND_CEILING)
        budget = self._budget(category, currency, minimum)
        granted = None
        if status in FUNDED or status == S.AWAITING_SECOND_APPROVAL:
            granted = self._granted(budget, minimum)
            granted = self._clear_of_threshold(granted, budget["months"], least, most)
        plan = self._plan_shape(category, budget) if status in FUNDED else None
        four_eyes = granted is not None and granted * least >= self.threshold
        times = self._timeline(status, urgent, four_eyes, plan)
        decided = times.get(S.AWAITING_SECOND_APPROVAL) or times.get(S.APPROVED)
        if decided is not None and currency != self.reporting:
            # The rate the managers weighed the amount at is in the fund's table.
            self.rates.rate(self.reporting, currency, decided.date())
        created = times["created"]
        if applicant == "new":
            applicant = self._user(
                Role.APPLICANT, created - self.hours(0.1, 2), f"defender-{self.uid()}"
            )
        partner = self.partner_users[org.id] if org else None
        owner = partner or applicant
        uid = self.uid()
        dependants = self._dependants(category)
        details = self._details(category, country, budget, len(dependants))
        work = rng.choice(WORK)
        draft = status == S.DRAFT
        if draft and rng.random() < 0.4:
            details.pop(rng.choice(list(details)))
        enc = self.enc
        row = {
            "uid": uid,
            "fund_id": self.fund.id,
            "applicant_id": applicant,
            "partner_organisation_id": org.id if org else None,
            "submitted_by_id": owner,
            "category": category,
            "status": status,
            "urgency": Urgency.URGENT if urgent else Urgency.NORMAL,
            "country": country,
            "region": geo.region_of(country),
            "gender": rng.choices(list(Gender), (45, 40, 5, 10))[0],
            "amount_requested": budget["requested"],
            "currency": currency,
            "dependants_count": len(dependants),
            "assigned_reviewer_id": self.reviewer if S.IN_REVIEW in times else None,
            "defender_name": enc("applications", "defender_name", uid, f"Demo defender {i + 1}"),
            "defender_work": enc(
                "applications", "defender_work", uid, f"Works on {work} (demo text)"
            ),
            "threat": enc(
                "applications",
                "threat",
                uid,
                "Faces " + rng.choice(THREATS).format(work=work) + " (demo text)",
            ),
            "urgency_reason": enc(
                "applications",
                "urgency_reason",
                uid,
                "The threats escalated after a court hearing last week (demo text)",
            )
            if urgent
            else None,
            "other_funders": enc(
                "applications",
                "other_funders",
                uid,
                rng.choice(("None asked yet (demo)", "Asked Demo Regional Fund (demo)")),
            )
            if rng.random() < 0.7
            else None,
            "details": enc("applications", "details", uid, json.dumps(details, sort_keys=True)),
            "created_at": created,
            "updated_at": times["last"],
            "submitted_at": times.get(S.SUBMITTED),
            "first_response_at": times.get(S.IN_REVIEW),
            **self._targets(category, urgent, times.get(S.SUBMITTED)),
            "clock_paused_at": times.get(S.INFO_REQUESTED) if status == S.INFO_REQUESTED else None,
            "defender_key": app_services.defender_key(f"Demo defender {i + 1}", country),
            "decided_at": times.get(S.APPROVED, times.get(S.REJECTED)),
            "closed_at": times.get(S.WITHDRAWN),
        }
        app_id = self.tables[Application].add(row)
        steps = self._history(app_id, times, owner)
        self._parts(app_id, currency, budget, granted, dependants, times, org, owner, draft)
        approvals = self._staff_side(app_id, times, budget, granted, currency, owner)
        if status == S.AWAITING_SECOND_APPROVAL:
            # The first manager proposed one fitting pool, in the case's currency if any.
            on = times[S.AWAITING_SECOND_APPROVAL].date()
            fitting = [p for p in self.pools if self._fits(p, category, country, on)]
            fitting.sort(key=lambda p: (p.currency != currency, p.cap_per_grant is not None))
            proposed = [self._share(pool, granted, currency, on) for pool in fitting]
            self._approval_draws(approvals, [share for share in proposed if share][:1], currency)
        if plan is not None:
            grant = _Grant()
            grant.category = category
            grant.owner = owner
            grant.approvals = approvals
            paid = self._grant(app_id, grant, granted, currency, country, times, plan, status)
            if paid:
                first, last = paid
                at = datetime.combine(first, datetime.min.time()) + self.hours(9, 17)
                steps.append((S.APPROVED, S.PAYING, self.finance, at))
                if status == S.COMPLETED:
                    done = min(
                        datetime.combine(last, datetime.min.time()) + self.hours(24 * 3, 24 * 20),
                        self.now - timedelta(hours=1),
                    )
                    steps.append((S.PAYING, S.COMPLETED, self.finance, done))
                    row["closed_at"] = done
                    self._close(grant, done)
                    self._report(app_id, first, done, owner)
                elif rng.random() < 0.2:
                    self._report(app_id, first, self.now, owner)
            # The case is where its payments took it (approved if nothing could be paid).
            row.update(status=steps[-1][1], updated_at=steps[-1][3])
        for step_from, step_to, actor, at in steps:
            self.tables[StatusChange].add(
                {
                    "application_id": app_id,
                    "from_status": step_from,
                    "to_status": step_to,
                    "actor_id": actor,
                    "at": at,
                }
            )

    def _request_currency(self, region):
        """The currency a case asks in: mostly dollars or euros, as funds usually grant."""
        if region in ("Andean region", "Central America and Mexico", "South America"):
            return self.rng.choices(("USD", "EUR"), (85, 15))[0]
        return self.rng.choices(("USD", "EUR", "GBP", "SEK"), (45, 40, 6, 9))[0]

    def _budget(self, category, currency, minimum):
        """Itemised lines in ``currency``; a stipend's lines cover all its months."""
        rng = self.rng
        _, low, high, kind, fewest, most = CATEGORIES[category]
        months = rng.randint(fewest, most) if kind == PlanKind.STIPEND else None
        items = BUDGET_ITEMS[category]
        items = rng.sample(items, k=rng.randint(1, min(3, len(items))))
        weights = [rng.randint(1, 4) for _ in items]
        usd = rng.randint(low, high)
        factor = 1
        while True:
            total = usd * factor
            parts = [self.nice(Decimal(total * w) / sum(weights), currency) for w in weights]
            if months:
                lines = [
                    (f"{item}, {months} months", part * months)
                    for item, part in zip(items, parts, strict=True)
                ]
            else:
                lines = list(zip(items, parts, strict=True))
            requested = sum((amount for _, amount in lines), start=Decimal(0))
            if requested >= minimum:
                break
            factor += 1
        return {
            "lines": lines,
            "requested": requested,
            "months": months,
            "monthly": sum(parts, start=Decimal(0)) if months else None,
            "usd": usd * factor * (months or 1),
        }

    def _granted(self, budget, minimum):
        """The amount approved: often all, sometimes part (never below ``minimum``)."""
        rng = self.rng
        requested, months = budget["requested"], budget["months"]
        if rng.random() < 0.7:
            return requested
        share = Decimal(rng.randint(60, 90)) / 100
        unit = Decimal(10)
        if months:
            amount = (budget["monthly"] * share / unit).to_integral_value(ROUND_DOWN) * unit
            amount *= months
        else:
            amount = (requested * share / unit).to_integral_value(ROUND_DOWN) * unit
        return quantize(amount) if amount >= max(minimum, unit) else requested

    def _clear_of_threshold(self, granted, months, least, most):
        """``granted``, or a little less when the month's rate alone would decide whether
        it reaches the four-eyes threshold: every demo approval is then on one side of it
        at any rate of the series, as the managers' rule reads it on the day."""
        if granted * least >= self.threshold or granted * most < self.threshold:
            return granted
        unit = Decimal(10)
        below = self.threshold / most * Decimal("0.99")
        if months:
            below = (below / months / unit).to_integral_value(ROUND_DOWN) * unit * months
        else:
            below = (below / unit).to_integral_value(ROUND_DOWN) * unit
        return quantize(below) if below >= unit else granted

    def _plan_shape(self, category, budget):
        """How a grant will be paid: kind, number of instalments and days between them."""
        rng = self.rng
        _, _, _, kind, fewest, most = CATEGORIES[category]
        if kind == PlanKind.STIPEND:
            count, step = budget["months"], 30
        else:
            count, step = rng.randint(fewest, most), rng.randint(45, 75)
            if kind == PlanKind.TRANCHES and (count == 1 or budget["usd"] < TRANCHE_MINIMUM):
                kind, count = PlanKind.ONE_OFF, 1
        return {"kind": kind, "count": count, "step": step, "days": step * (count - 1) + 6}

    def _path(self, status, four_eyes):
        """The steps a case now in ``status`` went through, in order."""
        rng = self.rng
        if status == S.DRAFT:
            return []
        if status == S.WITHDRAWN:
            return rng.choice(
                (
                    [S.WITHDRAWN],
                    [S.SUBMITTED, S.WITHDRAWN],
                    [S.SUBMITTED, S.IN_REVIEW, S.WITHDRAWN],
                )
            )
        if status == S.SUBMITTED:
            return [S.SUBMITTED]
        path = [S.SUBMITTED, S.IN_REVIEW]
        if rng.random() < 0.2:
            path += [S.INFO_REQUESTED, S.IN_REVIEW]
        if status in (S.IN_REVIEW, S.INFO_REQUESTED):
            return path + ([S.INFO_REQUESTED] if status == S.INFO_REQUESTED else [])
        path.append(S.RECOMMENDED)
        if status in (S.RECOMMENDED, S.REJECTED):
            return path + ([S.REJECTED] if status == S.REJECTED else [])
        if status == S.AWAITING_SECOND_APPROVAL or four_eyes:
            path.append(S.AWAITING_SECOND_APPROVAL)
        return path + ([] if status == S.AWAITING_SECOND_APPROVAL else [S.APPROVED])

    def _gap(self, step, previous, urgent):
        """Hours a step took after the one before it."""
        if step == S.IN_REVIEW and previous == S.INFO_REQUESTED:
            return self.hours(3, 120)
        low, high = {
            S.SUBMITTED: (0.2, 72),
            S.IN_REVIEW: (0.3, 20) if urgent else (2, 90),
            S.INFO_REQUESTED: (2, 72),
            S.RECOMMENDED: (4, 40) if urgent else (24, 240),
            S.AWAITING_SECOND_APPROVAL: (1, 24),
            S.APPROVED: (1, 24) if urgent else (4, 96),
            S.REJECTED: (2, 96),
            S.WITHDRAWN: (1, 240),
        }[step]
        return self.hours(low, high)

    def _timeline(self, status, urgent, four_eyes, plan):
        """Creation and step times: strictly increasing, all in the past, within the
        history window, and leaving room for a funded case's payments."""
        rng = self.rng
        day = timedelta(days=1)
        if status == S.DRAFT:
            created = self.now - self.hours(1, 24 * 150)
            last = created + (self.now - created) * rng.uniform(0.05, 0.5)
            return {"created": created, "steps": [], "last": last.replace(microsecond=0)}
        path = self._path(status, four_eyes)
        gaps, previous = [], S.DRAFT
        for step in path:
            gaps.append(self._gap(step, previous, urgent))
            previous = step
        if status == S.SUBMITTED:
            end = self.now - self.hours(0.2, 40)
        elif status in OPEN:
            end = self.now - self.hours(0.5, 24 * 12)
        elif status == S.APPROVED:
            end = self.now - self.hours(3, 24 * 6)
        elif status == S.PAYING:
            end = self.now - day * rng.uniform(5, max(6, plan["days"]))
        elif status == S.COMPLETED:
            end = self.now - day * rng.uniform(plan["days"] + 30, HISTORY_DAYS - 35)
        else:
            end = self.now - day * rng.uniform(1, HISTORY_DAYS - 35)
        at = created = end - sum(gaps, start=timedelta(0))
        times = {"created": created, "steps": []}
        previous = S.DRAFT
        for step, gap in zip(path, gaps, strict=True):
            at += gap
            # The first time wins, as in the service: an answered question re-enters review.
            times.setdefault(step, at)
            times["steps"].append((previous, step, at))
            previous = step
        times["last"] = at
        return times

    def _history(self, app_id, times, owner):
        """Status steps with who made each; payment steps are added once money moved."""
        steps = [(None, S.DRAFT, owner, times["created"])]
        for previous, step, at in times["steps"]:
            if step in (S.SUBMITTED, S.WITHDRAWN) or previous == S.INFO_REQUESTED:
                actor = owner
            elif step in (S.IN_REVIEW, S.INFO_REQUESTED, S.RECOMMENDED):
                actor = self.reviewer
            elif step == S.AWAITING_SECOND_APPROVAL:
                actor = self.managers[0]
            elif step == S.APPROVED and S.AWAITING_SECOND_APPROVAL in times:
                actor = self.managers[1]
            else:
                actor = self.managers[app_id % 2]
            steps.append((previous, step, actor, at))
        return steps

    def _dependants(self, category):
        """(relationship, age) of each family member the case affects."""
        rng = self.rng
        count = rng.choices((0, 1, 2, 3, 4), (45, 20, 18, 10, 7))[0]
        if category == Category.DEPENDANTS:
            count = max(1, count)
        people = []
        for n in range(count):
            if n == 0 and rng.random() < 0.25:
                people.append(("partner", rng.randint(20, 60)))
            elif rng.random() < 0.1:
                people.append(("parent", rng.randint(55, 85)))
            else:
                people.append(("child", rng.randint(0, 17)))
        return people

    def _details(self, category, country, budget, dependants):
        """The category's own answers, with the keys the application form uses."""
        rng = self.rng

        def text(key):
            return rng.choice(DETAIL_TEXT[key])

        if category == Category.LONGER_TERM:
            return {
                "monthly_amount": str(budget["monthly"]),
                "months": budget["months"],
                "where": rng.choice(("in_country", "exile")),
            }
        if category == Category.RELOCATION:
            scope = rng.choice(("in_country", "region", "abroad"))
            region = geo.region_of(country)
            if scope == "in_country":
                destination = country
            elif scope == "region":
                destination = rng.choice([c for c in geo.COUNTRIES if geo.region_of(c) == region])
            else:
                destination = rng.choice(ABROAD)
            return {
                "scope": scope,
                "destination_country": destination,
                "host_organisation": "Demo host organisation",
                "people": 1 + dependants,
                "months": rng.randint(3, 12),
                "stay_plan": text("stay_plan"),
                "security_plan": text("security_plan"),
                "exit_plan": text("exit_plan"),
            }
        if category == Category.PRISON_VISITS:
            return {"visits": budget["months"], "costs": text("costs")}
        keys = {
            Category.MEDICAL: ("provider", "treatment", "link_to_threat"),
            Category.DEPENDANTS: ("needs",),
            Category.LEGAL: ("case_summary", "lawyer"),
            Category.TRIAL_MONITORING: ("trial",),
            Category.PHYSICAL_SECURITY: ("measures",),
            Category.DIGITAL_SECURITY: ("equipment",),
            Category.HUMANITARIAN: ("needs",),
            Category.OTHER: ("description",),
        }[category]
        return {key: text(key) for key in keys}

    def _parts(self, app_id, currency, budget, granted, dependants, times, org, owner, draft):
        """Dependants, budget lines, references and consents."""
        rng, enc, uid = self.rng, self.enc, self.uid
        for relation, age in dependants:
            row_uid = uid()
            self.tables[Dependant].add(
                {
                    "uid": row_uid,
                    "application_id": app_id,
                    "age": age,
                    "relationship": enc("dependants", "relationship", row_uid, relation),
                    "needs": enc("dependants", "needs", row_uid, "School and care (demo)")
                    if relation == "child" and rng.random() < 0.5
                    else None,
                }
            )
        requested, lines = budget["requested"], budget["lines"]
        approved = granted if S.APPROVED in times else None
        recommended = None
        if S.RECOMMENDED in times and S.REJECTED not in times:
            recommended = granted or requested
        left = {"approved": approved, "recommended": recommended}
        for n, (description, amount) in enumerate(lines):
            shares = {}
            for key, total in (("approved", approved), ("recommended", recommended)):
                if total is None:
                    shares[key] = None
                elif n == len(lines) - 1:
                    shares[key] = left[key]
                else:
                    shares[key] = (amount * total / requested).quantize(CENT, ROUND_DOWN)
                    left[key] -= shares[key]
            row_uid = uid()
            self.tables[BudgetLine].add(
                {
                    "uid": row_uid,
                    "application_id": app_id,
                    "description": enc("budget_lines", "description", row_uid, description),
                    "amount": amount,
                    "currency": currency,
                    "recommended_amount": shares["recommended"],
                    "approved_amount": shares["approved"],
                }
            )
        references = 1 if draft and rng.random() < 0.3 else 2
        reviewed = times.get(S.IN_REVIEW)
        for n in range(references):
            row_uid = uid()
            status, contacted, notes = VerificationStatus.PENDING, None, None
            if reviewed is not None:
                until = times.get(S.RECOMMENDED, self.now)
                contacted = reviewed + (until - reviewed) * rng.uniform(0.1, 0.9)
                contacted = contacted.replace(microsecond=0)
                status = rng.choices(
                    (
                        VerificationStatus.CONFIRMED,
                        VerificationStatus.UNREACHABLE,
                        VerificationStatus.NOT_CONFIRMED,
                    ),
                    (85, 10, 5),
                )[0]
                notes = enc(
                    "references",
                    "notes",
                    row_uid,
                    f"Reference {status.value.replace('_', ' ')} by phone (demo)",
                )
            self.tables[Reference].add(
                {
                    "uid": row_uid,
                    "application_id": app_id,
                    "name": enc("references", "name", row_uid, f"Demo referee {n + 1}"),
                    "organisation": enc(
                        "references", "organisation", row_uid, "Demo human rights network"
                    ),
                    "contact": enc(
                        "references", "contact", row_uid, f"referee{n + 1}@example.org (demo)"
                    ),
                    "status": status,
                    "notes": notes,
                    "contacted_at": contacted,
                    "contacted_by_id": self.reviewer if contacted else None,
                }
            )
        consents = []
        if org is not None:
            consents.append(
                (
                    ConsentKind.PARTNER_SUBMISSION,
                    rng.choice(("in person", "by phone", "secure message")),
                    times["created"],
                )
            )
        if S.SUBMITTED in times and rng.random() < 0.1:
            consents.append((ConsentKind.REFERRAL, "form", times[S.SUBMITTED]))
        # Four defenders in five agree that donors may see their case, anonymised; taken
        # from the case number, so the seeded draws that build the rest stay as they were.
        if S.SUBMITTED in times and app_id % 5:
            consents.append((ConsentKind.STORY, "form", times[S.SUBMITTED]))
        for kind, method, given in consents:
            self.tables[Consent].add(
                {
                    "uid": uid(),
                    "application_id": app_id,
                    "kind": kind,
                    "donor_id": None,
                    "method": method,
                    "recorded_by_id": owner,
                    "given_at": given,
                    "withdrawn_at": None,
                }
            )

    def _staff_side(self, app_id, times, budget, granted, currency, owner):
        """Questions and answers, the reviewer's assessment and the managers' decisions."""
        rng, enc, uid = self.rng, self.enc, self.uid
        for previous, step, at in times["steps"]:
            if step == S.INFO_REQUESTED:
                self._message(app_id, self.reviewer, True, at, "Could you send a quote? (demo)")
            elif previous == S.INFO_REQUESTED and owner is not None:
                self._message(app_id, owner, False, at, "The quote is attached now (demo)")
        if S.RECOMMENDED in times:
            rejected = S.REJECTED in times
            amount = None if rejected else (granted or budget["requested"])
            if rejected:
                recommendation = Recommendation.REJECT
            elif amount < budget["requested"]:
                recommendation = Recommendation.APPROVE_PARTLY
            else:
                recommendation = Recommendation.APPROVE
            row_uid = uid()
            self.tables[Review].add(
                {
                    "uid": row_uid,
                    "application_id": app_id,
                    "reviewer_id": self.reviewer,
                    "risk_level": rng.choices(list(RiskLevel), (10, 35, 40, 15))[0],
                    "recommendation": recommendation,
                    "recommended_amount": amount,
                    "currency": currency,
                    "assessment": enc(
                        "reviews",
                        "assessment",
                        row_uid,
                        "Threat and work confirmed by both references (demo)"
                        if not rejected
                        else "Outside the fund's mandate (demo)",
                    ),
                    "created_at": times[S.RECOMMENDED],
                }
            )
        decisions = []
        if S.REJECTED in times:
            manager = self.managers[app_id % 2]
            decisions.append((manager, DecisionOutcome.REJECT, times[S.REJECTED]))
        if S.AWAITING_SECOND_APPROVAL in times:
            # Four eyes: a first manager approves, the other one confirms.
            decisions.append(
                (self.managers[0], DecisionOutcome.APPROVE, times[S.AWAITING_SECOND_APPROVAL])
            )
            if S.APPROVED in times:
                decisions.append((self.managers[1], DecisionOutcome.APPROVE, times[S.APPROVED]))
        elif S.APPROVED in times:
            decisions.append(
                (self.managers[app_id % 2], DecisionOutcome.APPROVE, times[S.APPROVED])
            )
        # The first approval was weighed against the threshold at the table's rate of its
        # day (one a manager confirmed) and keeps what it was weighed with.
        weighed = dict.fromkeys(("worth", "worth_currency", "weighed_rate_id", "threshold"))
        decided = times.get(S.AWAITING_SECOND_APPROVAL) or times.get(S.APPROVED)
        weighing = weighed
        if granted is not None and decided is not None:
            rate, entry_id = self.rates.entry(self.reporting, currency, decided.date())
            weighing = {
                "worth": convert(granted, rate),
                "worth_currency": self.reporting,
                "weighed_rate_id": entry_id,
                "threshold": self.threshold,
            }
        approvals = []
        for manager, outcome, at in decisions:
            row_uid = uid()
            rejected = outcome == DecisionOutcome.REJECT
            if not rejected:
                approvals.append(self.tables[Decision].next_id)
            self.tables[Decision].add(
                {
                    **(weighing if not rejected and len(approvals) == 1 else weighed),
                    "uid": row_uid,
                    "application_id": app_id,
                    "manager_id": manager,
                    "outcome": outcome,
                    "amount": None if rejected else granted,
                    "currency": currency,
                    "round": 1,
                    "reason": enc(
                        "decisions",
                        "reason",
                        row_uid,
                        "The request is outside what the fund can support (demo)",
                    )
                    if rejected
                    else None,
                    "created_at": at,
                }
            )
        return approvals

    def _approval_draws(self, approvals, shares, currency):
        """Each approval's split of pools: the shares the grant draws, or for a case still
        waiting for its second manager, the split the first one proposed."""
        for decision_id in approvals:
            for pool, share, _rate, _pool_amount in shares:
                self.tables[ApprovalDraw].add(
                    {
                        "decision_id": decision_id,
                        "pool_id": pool.id,
                        "amount": share,
                        "currency": currency,
                    }
                )

    def _message(self, app_id, author, from_staff, at, body):
        """One message in a case's thread."""
        row_uid = self.uid()
        self.tables[Message].add(
            {
                "uid": row_uid,
                "application_id": app_id,
                "author_id": author,
                "from_staff": from_staff,
                "is_question": from_staff,
                "body": self.enc("messages", "body", row_uid, body),
                "created_at": at,
                "read_at": None,
            }
        )

    def _targets(self, category, urgent, submitted):
        """The response and decision targets counted from submission (none for a draft)."""
        if submitted is None:
            return {"response_due_at": None, "decision_due_at": None}
        response, decision = targets.target_hours(
            category, Urgency.URGENT if urgent else Urgency.NORMAL
        )
        return {
            "response_due_at": submitted + timedelta(hours=response),
            "decision_due_at": submitted + timedelta(hours=decision),
        }

    def _report(self, app_id, first_paid, before, owner):
        """The applicant side's use-of-funds report, after the first payment."""
        rng = self.rng
        start = datetime.combine(first_paid, datetime.min.time()) + timedelta(days=2)
        if owner is None or start >= before:
            return
        row_uid = self.uid()
        self.tables[UseOfFundsReport].add(
            {
                "uid": row_uid,
                "application_id": app_id,
                "felt_safer": rng.random() < 0.8,
                "continued_work": rng.random() < 0.7,
                "narrative": self.enc(
                    "use_of_funds_reports",
                    "narrative",
                    row_uid,
                    "The support let me keep working safely (demo)",
                ),
                "submitted_at": (start + (before - start) * rng.uniform(0.1, 0.9)).replace(
                    microsecond=0
                ),
            }
        )

    # -- money ---------------------------------------------------------------------------

    def _fits(self, pool, category, country, on):
        """The pool's restrictions and date window allow this case (as pool_mismatches)."""
        rules = self.pool_rules[pool.id][0]
        if rules.get("category") and category.value not in rules["category"]:
            return False
        if rules.get("country") and country not in rules["country"]:
            return False
        if rules.get("region") and geo.region_of(country) not in rules["region"]:
            return False
        return pool.starts_on <= on and (pool.ends_on is None or on <= pool.ends_on)

    def _shares(self, category, country, amount, currency, on):
        """(pool, share in grant currency, rate, pool amount) for each pool drawn on."""
        rng = self.rng
        fits = [p for p in self.pools if self._fits(p, category, country, on)]
        same = [p for p in fits if p.currency == currency]
        # Mostly a pool in the grant's currency; now and then one in another, converted.
        candidates = same if same and rng.random() < 0.8 else fits
        half = quantize(amount / 2)
        if len(candidates) > 1 and rng.random() < 0.15:
            pair = rng.sample(candidates, 2)
            shares = [
                self._share(pair[0], half, currency, on),
                self._share(pair[1], amount - half, currency, on),
            ]
            if all(shares):
                return shares
        rng.shuffle(candidates)
        for pool in candidates:
            share = self._share(pool, amount, currency, on)
            if share:
                return [share]
        # Every case fits the unrestricted, uncapped pools; prefer the grant's currency.
        general = [
            pool
            for pool in self.pools
            if pool.cap_per_grant is None
            and pool.ends_on is None
            and not any(self.pool_rules[pool.id][0].values())
        ]
        general.sort(key=lambda p: p.currency != currency)
        return [self._share(general[0], amount, currency, on)]

    def _share(self, pool, amount, currency, on):
        """The share tuple for ``amount`` from ``pool``, or None above the pool's cap."""
        rate = self.rates.rate(pool.currency, currency, on)
        pool_amount = convert(amount, rate)
        if pool.cap_per_grant is not None and pool_amount > pool.cap_per_grant:
            return None
        return (pool, amount, rate, pool_amount)

    def _grant(self, app_id, grant, amount, currency, country, times, plan, status):
        """The grant, its allocations, plan, instalments and payments; return the first and
        last payment dates, or None when nothing was paid."""
        rng = self.rng
        decided = times[S.APPROVED]
        manager = self.managers[1] if S.AWAITING_SECOND_APPROVAL in times else None
        grant.id = self.tables[Grant].add(
            {
                "uid": self.uid(),
                "fund_id": self.fund.id,
                "application_id": app_id,
                "amount": amount,
                "currency": currency,
                "status": GrantStatus.ACTIVE,
                "approved_at": decided,
                "closed_at": None,
                "created_at": decided,
            }
        )
        grant.row = self.tables[Grant].rows[-1]
        grant.allocations = []
        shares = self._shares(grant.category, country, amount, currency, decided.date())
        self._approval_draws(grant.approvals, shares, currency)
        for pool, share, rate, pool_amount in shares:
            values = {
                "uid": self.uid(),
                "grant_id": grant.id,
                "pool_id": pool.id,
                "amount": pool_amount,
                "grant_amount": share,
                "fx_rate": rate,
            }
            alloc_id = self.tables[Allocation].add(
                {
                    **values,
                    "seal": audit.seal("allocations", values, self.audit_key),
                    "created_by_id": manager or self.managers[app_id % 2],
                    "created_at": decided,
                }
            )
            quarter = (decided.date() - pool.starts_on).days // 91
            draws = self.draws[pool.id]
            draws[quarter] = draws.get(quarter, Decimal(0)) + pool_amount
            grant.allocations.append(
                {"id": alloc_id, "pool": pool, "left": pool_amount, "rate": rate}
            )
        self._payee(grant, country)
        kind, count, step = plan["kind"], plan["count"], plan["step"]
        start = (decided + timedelta(days=rng.randint(1, 4))).date()
        if kind == PlanKind.STIPEND:
            if start.day > 28:
                # Monthly on the same day: a stipend starting late in a month waits for the 1st.
                start = _months_after(start.replace(day=1), 1)
            dues = [_months_after(start, n) for n in range(count)]
        else:
            dues = [start + timedelta(days=step * n) for n in range(count)]
        plan_id = self.tables[PaymentPlan].add(
            {
                "grant_id": grant.id,
                "kind": kind,
                "starts_on": start,
                "ends_on": dues[-1],
                "renewal_review_on": dues[-1] - timedelta(days=30)
                if kind == PlanKind.STIPEND
                else None,
                "hold_for_report": kind == PlanKind.TRANCHES and rng.random() < 0.3,
                "created_at": decided,
            }
        )
        per = quantize(amount / count)
        # A completed grant sometimes closes under budget: its last instalment is not paid.
        unpaid = 1 if status == S.COMPLETED and count > 2 and rng.random() < 0.2 else 0
        paid_dates = []
        for seq, due in enumerate(dues, start=1):
            value = per if seq < count else amount - per * (count - 1)
            inst_id = self.tables[Instalment].add(
                {
                    "plan_id": plan_id,
                    "seq": seq,
                    "due_on": due,
                    "amount": value,
                    "currency": currency,
                    "period_month": due.replace(day=1) if kind == PlanKind.STIPEND else None,
                }
            )
            if status == S.APPROVED or due > self.last_day or seq > count - unpaid:
                continue
            paid_on = min(due + timedelta(days=rng.choice((0, 0, 1, 2, 3, 5))), self.last_day)
            if self._pay(grant, inst_id, value, paid_on):
                paid_dates.append(paid_on)
        return (paid_dates[0], paid_dates[-1]) if paid_dates else None

    def _close(self, grant, at):
        """Close a completed grant and give back to its pools what it did not use."""
        grant.row.update(status=GrantStatus.CLOSED, closed_at=at)
        for alloc in grant.allocations:
            if alloc["left"] <= 0:
                continue
            values = {"uid": self.uid(), "allocation_id": alloc["id"], "amount": alloc["left"]}
            self.tables[Release].add(
                {
                    **values,
                    "reason": self.enc(
                        "releases", "reason", values["uid"], "Grant closed under budget"
                    ),
                    "seal": audit.seal("releases", values, self.audit_key),
                    "created_by_id": self.finance,
                    "created_at": at,
                }
            )
            alloc["left"] = Decimal(0)

    def _payee(self, grant, country):
        """Who is paid, through which channel, in which currency, for the whole grant."""
        rng = self.rng
        category = grant.category
        local = geo.local_currency(country)
        if category == Category.MEDICAL and rng.random() < 0.7:
            payee, channel = PayeeType.VENDOR, Channel.BANK
        elif category == Category.RELOCATION and rng.random() < 0.6:
            payee, channel, local = PayeeType.HOST_ORGANISATION, Channel.BANK, None
        elif category == Category.DIGITAL_SECURITY and rng.random() < 0.4:
            payee, channel = PayeeType.VENDOR, Channel.IN_KIND
        elif category == Category.LEGAL and rng.random() < 0.5:
            payee, channel = PayeeType.VENDOR, Channel.BANK
        elif rng.random() < 0.15:
            payee, channel = PayeeType.INTERMEDIARY, Channel.CASH_THROUGH_PARTNER
        elif geo.region_of(country) == "East Africa" and rng.random() < 0.6:
            payee, channel = PayeeType.DEFENDER, Channel.MOBILE_MONEY
        else:
            payee = PayeeType.DEFENDER
            channel = rng.choice((Channel.BANK, Channel.MONEY_TRANSFER))
        grant.payee, grant.channel = payee, channel
        grant.paid_currency = local if local and rng.random() < 0.75 else None

    def _pay(self, grant, inst_id, value, paid_on):
        """Pay one instalment (``value`` in grant currency) from the allocations in turn;
        now and then a payment comes back and is sent again. True if money went out."""
        rng = self.rng
        sent = False
        for alloc in grant.allocations:
            if value < 1:
                break
            in_pool = min(quantize(value * alloc["rate"]), alloc["left"])
            if in_pool <= 0:
                continue
            value -= in_pool if alloc["rate"] == 1 else quantize(in_pool / alloc["rate"])
            payment = self._disburse(grant, alloc, inst_id, in_pool, paid_on)
            if payment is None:
                continue
            sent = True
            standing = payment
            back_on = paid_on + timedelta(days=rng.randint(2, 7))
            if rng.random() < 0.02 and back_on <= self.last_day:
                standing = None
                partial = rng.random() < 0.2
                self._disburse(
                    grant, alloc, inst_id, None, back_on, reverses=payment, partial=partial
                )
                again_on = back_on + timedelta(days=rng.randint(1, 5))
                # Usually sent again; a payment that came back in part is left at that.
                if not partial and rng.random() < 0.85 and again_on <= self.last_day:
                    standing = self._disburse(grant, alloc, inst_id, payment["amount"], again_on)
            if standing is not None:
                self._receipt(grant, standing)
        return sent

    def _disburse(self, grant, alloc, inst_id, in_pool, paid_on, reverses=None, partial=False):
        """One sealed payment of about ``in_pool`` (pool currency), or the reversal of
        ``reverses``; return what was written, or None when the amount rounds to nothing."""
        rng = self.rng
        pool = alloc["pool"]
        kept = dict.fromkeys(("table_rate", "rate_entry_id", *self.bounds.columns()))
        if reverses is None:
            currency = grant.paid_currency or pool.currency
            rate, entry_id = self.rates.entry(pool.currency, currency, paid_on)
            # Paid at the table's rate, a manager confirmed: weighed as the app weighs it.
            kept = {"table_rate": rate, "rate_entry_id": entry_id, **self.bounds.columns()}
            # Rounded down, so that the converted amount never exceeds what is left.
            amount_paid = (in_pool / rate).quantize(CENT, ROUND_DOWN)
        else:
            currency, rate = reverses["currency"], reverses["rate"]
            amount_paid = reverses["amount_paid"]
            if partial:
                amount_paid = (amount_paid / 2).quantize(CENT, ROUND_DOWN)
        amount = convert(amount_paid, rate)
        if amount_paid <= 0 or amount <= 0:
            return None
        uid = self.uid()
        fee = Decimal("0.00")
        percent = {
            Channel.BANK: "0.005",
            Channel.MONEY_TRANSFER: "0.03",
            Channel.MOBILE_MONEY: "0.015",
            Channel.CASH_THROUGH_PARTNER: "0.02",
        }.get(grant.channel)
        if reverses is None and percent and rng.random() < 0.7:
            fee = quantize(amount * Decimal(percent))
        values = {
            "uid": uid,
            "grant_id": grant.id,
            "allocation_id": alloc["id"],
            "pool_id": pool.id,
            "instalment_id": inst_id,
            "amount_paid": amount_paid,
            "currency_paid": currency,
            "amount": amount,
            "fx_rate": rate,
            "fee_amount": fee,
            "exchange_difference": Decimal("0.00"),
            "paid_on": paid_on,
            "reversal_of_id": reverses["id"] if reverses else None,
            **kept,
        }
        table = self.tables[Disbursement]
        reference = f"PAY-{table.next_id:08d}"
        row_id = table.add(
            {
                **values,
                "seal": audit.seal("disbursements", values, self.audit_key),
                "payee_type": grant.payee,
                "payee_details": self.enc(
                    "disbursements",
                    "payee_details",
                    uid,
                    f"{PAYEE_DETAILS[grant.channel]} {rng.randrange(10**7, 10**8)}",
                ),
                "channel": grant.channel,
                "rate_source": (
                    self.enc("disbursements", "rate_source", uid, "Demo reference rates, monthly")
                    if rate != 1
                    else None
                ),
                "reference": self.enc("disbursements", "reference", uid, reference),
                "reference_key": reference_key(reference),
                "idempotency_key": None if reverses else f"demo-{uid}",
                "reason": (
                    self.enc("disbursements", "reason", uid, rng.choice(RETURN_REASONS))
                    if reverses
                    else None
                ),
                "recorded_by_id": self.finance,
                "proof_document_id": None,
                "created_at": datetime.combine(paid_on, datetime.min.time()) + self.hours(8, 18),
            }
        )
        alloc["left"] += -amount if reverses is None else amount
        return {
            "id": row_id,
            "amount": amount,
            "amount_paid": amount_paid,
            "rate": rate,
            "currency": currency,
            "paid_on": paid_on,
        }

    def _receipt(self, grant, payment):
        """The applicant side confirms about half the payments that reached them."""
        rng = self.rng
        if grant.owner is None or rng.random() < 0.5:
            return
        at = datetime.combine(payment["paid_on"], datetime.min.time()) + self.hours(30, 24 * 10)
        if at < self.now:
            self.tables[Receipt].add(
                {
                    "disbursement_id": payment["id"],
                    "confirmed_by_id": grant.owner,
                    "confirmed_at": at,
                }
            )

    def _contributions(self):
        """Money into each pool, quarter by quarter, always ahead of what it commits."""
        rng = self.rng
        for pool in self.pools:
            paid_in = self.pool_rules[pool.id][1]
            unit = Decimal(100000) if pool.currency == "SEK" else Decimal(10000)
            last = min(pool.ends_on or self.today, self.today)
            quarters = (last - pool.starts_on).days // 91 + 1
            received = needed = Decimal(0)
            for quarter in range(quarters):
                on = min(pool.starts_on + timedelta(days=91 * quarter), self.last_day)
                needed += self.draws[pool.id].get(quarter, Decimal(0))
                # Each quarter's contribution covers that quarter's commitments and more.
                target = needed * Decimal("1.15") + unit * 3
                if target <= received:
                    continue
                rate = self.rates.rate(pool.currency, paid_in, on)
                want = (target - received) / rate
                received_amount = quantize((want / unit).to_integral_value(ROUND_CEILING) * unit)
                amount = convert(received_amount, rate)
                received += amount
                letter = f"{pool.name[:24]} grant letter {on:%Y}-Q{(on.month - 1) // 3 + 1}"
                self._contribution(pool, amount, received_amount, paid_in, rate, on, letter)
                if pool is self.pools[0] and quarter == 0:
                    # Booked twice by mistake, and the copy reversed a few days later.
                    copy = self._contribution(
                        pool, amount, received_amount, paid_in, rate, on, letter
                    )
                    self._contribution(
                        pool,
                        amount,
                        received_amount,
                        paid_in,
                        rate,
                        on + timedelta(days=rng.randint(2, 6)),
                        "Correction",
                        reverses=copy,
                    )

    def _contribution(self, pool, amount, received, currency, rate, on, reference, reverses=None):
        """One sealed contribution row (or the reversal of ``reverses``); return its id."""
        values = {
            "uid": self.uid(),
            "pool_id": pool.id,
            "amount": amount,
            "received_amount": received,
            "received_currency": currency,
            "fx_rate": rate,
            "received_on": on,
            "reversal_of_id": reverses,
        }
        return self.tables[Contribution].add(
            {
                **values,
                "seal": audit.seal("contributions", values, self.audit_key),
                "reference": self.enc("contributions", "reference", values["uid"], reference),
                "reason": (
                    self.enc("contributions", "reason", values["uid"], "Booked twice")
                    if reverses
                    else None
                ),
                "recorded_by_id": self.finance,
                "created_at": datetime.combine(on, datetime.min.time()) + timedelta(hours=11),
            }
        )

    def _exchange_rate(self, base, quote, on, rate):
        """The table entry of a monthly rate, recorded by finance the evening before and
        confirmed by a manager at once, so it is nobody's alone; return its id."""
        uid = self.uid()
        recorded = min(datetime.combine(on, datetime.min.time()) - timedelta(hours=8), self.now)
        return self.tables[ExchangeRate].add(
            {
                "uid": uid,
                "fund_id": self.fund.id,
                "on_date": on,
                "base": base,
                "quote": quote,
                "rate": rate,
                "source": self.enc(
                    "exchange_rates", "source", uid, "Demo reference rates, monthly"
                ),
                "set_by_id": self.finance,
                "needs_second": False,
                "confirmed_by_id": self.managers[0],
                "confirmed_at": recorded + timedelta(minutes=30),
                "created_at": recorded,
            }
        )
