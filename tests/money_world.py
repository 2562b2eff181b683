"""A small fund with money in it, built through the services as staff would build it:
a donor with a EUR pool and a USD pool, a rate table, managers, finance, and approved
grants on demand."""

from datetime import date
from decimal import Decimal

from hrdfund.applications.models import Application, ApplicationStatus, Category
from hrdfund.applications.review_models import Recommendation, Review, RiskLevel
from hrdfund.applications.services import defender_key
from hrdfund.extensions import db
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
        pools.record_rate(fund.id, self.finance, date(2026, 1, 1), "EUR", "USD", EUR_USD, "ECB")
        pools.record_rate(fund.id, self.finance, date(2026, 1, 1), "USD", "KES", USD_KES, "CBK")
        self.eur = pools.create_pool(self.donor, self.m1, "Emergency EUR", "EUR")
        self.usd = pools.create_pool(self.donor, self.m1, "Relocation USD", "USD")
        pools.record_contribution(self.eur, self.m1, Decimal("20000"), "EUR", date(2026, 1, 2))
        pools.record_contribution(self.usd, self.m1, Decimal("30000"), "USD", date(2026, 1, 2))
        db.session.commit()

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
        case = Application(
            fund_id=self.fund.id,
            applicant_id=(applicant or self.applicant).id,
            category=category,
            country="KE",
            region="East Africa",
            currency=currency,
            status=ApplicationStatus.RECOMMENDED,
        )
        case.defender_name = name
        case.defender_key = defender_key(name, "KE")
        db.session.add(case)
        db.session.flush()
        db.session.add(
            Review(
                application_id=case.id,
                reviewer_id=self.reviewer.id,
                risk_level=RiskLevel.HIGH,
                recommendation=Recommendation.APPROVE,
                currency=currency,
            )
        )
        db.session.flush()
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
