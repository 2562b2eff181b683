"""A small fund with money in it, built through the services as staff would build it:
a donor with a EUR pool and a USD pool, a rate table, managers, finance, and approved
grants on demand."""

from datetime import date
from decimal import Decimal

from hrdfund.applications.models import Application, ApplicationStatus, Category
from hrdfund.applications.review_models import Recommendation, Review, RiskLevel
from hrdfund.applications.services import defender_key
from hrdfund.core.extensions import db
from hrdfund.disbursements import holds
from hrdfund.disbursements import services as payments
from hrdfund.disbursements.models import Channel, PayeeType
from hrdfund.grants import plans
from hrdfund.grants.services import approve_with_recorded_rates
from hrdfund.pools import services as pools

#: 1 EUR buys this many USD in the table (and 1 USD this many KES).
EUR_USD = Decimal("1.10000000")
USD_KES = Decimal("130.00000000")


class MoneyWorld:
    """Pools with money, the staff who move it, and a helper to approve grants."""

    def __init__(self, fund, make_user, make_donor):
        self.fund = fund
        self.make_user = make_user
        self.admin = make_user("admin")
        self.m1 = make_user("manager")
        self.m2 = make_user("manager")
        self.finance = make_user("finance")
        self.reviewer = make_user("reviewer")
        self.applicant = make_user("applicant")
        self.donor = make_donor("Protection Donor")
        # Finance keeps the table and a manager confirms each entry: no rate in it is one
        # person's alone, so it is a reference for everyone.
        for base, quote, rate, source in (
            ("EUR", "USD", EUR_USD, "ECB"),
            ("USD", "KES", USD_KES, "CBK"),
        ):
            entry = pools.record_rate(
                fund.id, self.finance, date(2026, 1, 1), base, quote, rate, source
            )
            pools.confirm_rate(entry, self.m2)
        self.eur = pools.create_pool(self.donor, self.m1, "Emergency EUR", "EUR")
        self.usd = pools.create_pool(self.donor, self.m1, "Relocation USD", "USD")
        pools.record_contribution(self.eur, self.m1, Decimal("20000"), "EUR", date(2026, 1, 2))
        pools.record_contribution(self.usd, self.m1, Decimal("30000"), "USD", date(2026, 1, 2))
        db.session.commit()

    @classmethod
    def around(cls, fund, applicant, reviewer, manager):
        """The grant helper over a fund that exists already (the demo's)."""
        world = cls.__new__(cls)
        world.fund, world.applicant, world.reviewer, world.m1 = fund, applicant, reviewer, manager
        return world

    def recommended(
        self,
        name=None,
        category=Category.RELOCATION,
        currency="EUR",
        applicant=None,
        reviewer=None,
    ):
        """A case that ``reviewer`` (the world's reviewer by default) reviewed and
        recommended for approval, flushed; ``name`` also gives it a defender key."""
        case = Application(
            fund_id=self.fund.id,
            applicant_id=(applicant or self.applicant).id,
            category=category,
            country="KE",
            region="East Africa",
            currency=currency,
            status=ApplicationStatus.RECOMMENDED,
        )
        if name:
            case.defender_name = name
            case.defender_key = defender_key(name, "KE")
        db.session.add(case)
        db.session.flush()
        db.session.add(
            Review(
                application_id=case.id,
                reviewer_id=(reviewer or self.reviewer).id,
                risk_level=RiskLevel.HIGH,
                recommendation=Recommendation.APPROVE,
                currency=currency,
            )
        )
        db.session.flush()
        return case

    def grant(
        self,
        amount="3000",
        pool=None,
        category=Category.RELOCATION,
        currency="EUR",
        name="Defender One",
        applicant=None,
    ):
        """An approved grant of ``amount`` for a recommended case, drawn from ``pool``."""
        case = self.recommended(name, category, currency, applicant)
        pool = pool or self.eur
        grant = approve_with_recorded_rates(
            case, self.m1, Decimal(amount), [(pool.id, Decimal(amount))]
        )
        db.session.commit()
        return grant

    def plan(self, grant, kind="tranches", count=2, starts_on=date(2026, 2, 1), **options):
        """A payment plan made by a manager."""
        plan = plans.create_plan(grant, self.m1, kind, starts_on, count=count, **options)
        db.session.commit()
        return plan


_keys = iter(range(1, 10**6))


def pay(world, grant, amount, currency="EUR", instalment=1, key=None, **options):
    """Finance records a payment; returns the payment, or the payment held for a second
    person (committed)."""
    instalments = payments.grant_instalments(grant)
    payment, _created = payments.record_disbursement(
        grant,
        options.pop("actor", world.finance),
        allocation=options.pop("allocation", payments.grant_allocations(grant)[0]),
        instalment=instalments[instalment - 1] if instalment else None,
        payee_type=options.pop("payee_type", PayeeType.HOST_ORGANISATION),
        payee_details=options.pop("payee_details", "IBAN DE00 1234"),
        channel=options.pop("channel", Channel.BANK),
        amount_paid=Decimal(amount),
        currency_paid=currency,
        paid_on=options.pop("paid_on", date(2026, 2, 3)),
        idempotency_key=key or f"key-{next(_keys)}",
        **options,
    )
    db.session.commit()
    return payment


def confirm(world, held, by=None):
    """A second person (the second manager by default) confirms a held payment; returns
    the payment it booked (committed)."""
    payment = holds.confirm_held_payment(held, by or world.m2)
    db.session.commit()
    return payment
