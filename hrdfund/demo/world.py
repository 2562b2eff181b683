"""The demo world being built: the seeded generator, the clock, the keys, the reference data
and the bulk buffers that every part of the demo reads and fills."""

from datetime import timedelta
from decimal import Decimal

from flask import current_app

from ..auth.models import User
from ..cases import codes as case_codes
from ..cases.models import (
    Application,
    BudgetLine,
    Consent,
    Decision,
    Dependant,
    Message,
    Reference,
    StatusChange,
    UseOfFundsReport,
)
from ..core import limits
from ..core.columns import cipher, utcnow
from ..core.extensions import db
from ..core.money import quantize
from ..disbursements.bounds import Bounds
from ..grants.models import ApprovalDraw, Grant, Instalment, PaymentPlan
from ..ledger.models import (
    Allocation,
    Contribution,
    Disbursement,
    ReceiptAnswer,
    Release,
)
from ..pools.models import ExchangeRate
from ..reviews.models import Review
from . import bulk, cases, directory, network, people, pools, rates

#: Written in this order in each batch: parents before children.
BULK_MODELS = (
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
    ReceiptAnswer,
    UseOfFundsReport,
    Contribution,
)


class World:
    """The demo world being built: reference data, buffers and the seeded generator.

    The concept modules add to it as they build: ``people`` the fund, organisations and
    users, ``pools`` the donors and pools, ``cases`` everything hanging off a case.
    """

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
        self.uid = bulk.uids().__next__
        self.counts = {}

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

    def build(self):
        """Create everything, parents before children, and write it."""
        first = self.today - timedelta(days=pools.POOLS_OPEN_DAYS + 31)
        self.rates = rates.Rates(self.rng, first, self.today)
        people.add_fund(self, self.now - timedelta(days=pools.POOLS_OPEN_DAYS + 60))
        pools.open_pools(self)
        people.add_accounts(self)
        use_copy = db.session.get_bind().dialect.name == "postgresql"
        self.tables = {model: bulk.Table(model, use_copy) for model in BULK_MODELS}
        self.rates.record = lambda *entry: rates.add_exchange_rate(self, *entry)
        self.bounds = Bounds.in_force()
        people.add_partner_staff(self)
        # Gross allocations per pool and quarter of the pool's life, to time contributions.
        self.draws = {pool.id: {} for pool in self.pools}
        cases.add_applications(self)
        pools.add_contributions(self)
        self.flush_all()
        if use_copy:
            bulk.reset_sequences(self.tables)
        self.counts = {m.__tablename__: t.count for m, t in self.tables.items()}
        case_codes.give_missing_codes()
        network.add_referrals(self)
        directory.add_directory(self)

    def flush_all(self):
        """Write every queued row, parents before children."""
        for table in self.tables.values():
            table.flush()
