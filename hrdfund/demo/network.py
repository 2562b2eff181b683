"""The demo network at work: a relocation co-funded by the demo fund (months 1 to 6) and the
regional fund (months 7 to 12, from its own pool), referrals in every other state (one
waiting, one declined with a reason, one withdrawn), and a defender who applied to two
funds for the same need. Written through the services, as
staff would, once the bulk of the demo is in the database."""

from datetime import timedelta
from decimal import Decimal

from ..auth.models import Role, User
from ..cases import services as case_services
from ..cases.models import (
    Application,
    ApplicationStatus,
    BudgetLine,
    Consent,
    ConsentKind,
    StatusChange,
    Urgency,
)
from ..core.extensions import db
from ..core.support import Category
from ..grants import plans
from ..grants.decisions import approve_with_recorded_rates
from ..network import referrals
from ..pools import services as pools
from ..reviews.models import Recommendation, Review, RiskLevel

#: What a month of the co-funded stay costs, in euros.
MONTHLY = Decimal(500)


def _user(user_id):
    return db.session.get(User, user_id)


def _case(world, category, name, fund=None):
    """A case of the demo fund (or ``fund``) sent by demo-applicant1, who agreed to
    referral."""
    applicant = _user(world.users[Role.APPLICANT][0])
    case = Application(
        fund_id=(fund or world.fund).id,
        applicant_id=applicant.id,
        submitted_by_id=applicant.id,
        category=category,
        status=ApplicationStatus.DRAFT,
        urgency=Urgency.URGENT,
        country="KE",
        region="East Africa",
        currency="EUR",
        amount_requested=MONTHLY * 12,
    )
    db.session.add(case)
    db.session.flush()
    db.session.add(
        StatusChange(
            application=case,
            from_status=None,
            to_status=ApplicationStatus.DRAFT,
            actor_id=applicant.id,
            at=world.now,
        )
    )
    case.defender_name = name
    case.defender_key = case_services.defender_key(name, "KE")
    case.defender_work = "Documents land evictions on the coast."
    case.threat = "Followed and threatened after a public hearing."
    # As every application sent through the forms, an itemised budget: one line.
    line = BudgetLine(amount=case.amount_requested, currency="EUR")
    line.description = "Twelve months of support, as asked"
    case.budget_lines.append(line)
    db.session.add(
        Consent(
            application_id=case.id,
            kind=ConsentKind.REFERRAL,
            method="form",
            given_at=world.now,
        )
    )
    case_services.change_status(case, ApplicationStatus.SUBMITTED, actor=applicant)
    return case


def _recommended(case, reviewer):
    """Taken in review and recommended by ``reviewer`` (every line as asked), each step
    recorded."""
    for line in case.budget_lines:
        line.recommended_amount = line.amount
    case_services.change_status(case, ApplicationStatus.IN_REVIEW, actor=reviewer)
    case_services.change_status(case, ApplicationStatus.RECOMMENDED, actor=reviewer)
    db.session.add(
        Review(
            application_id=case.id,
            reviewer_id=reviewer.id,
            risk_level=RiskLevel.HIGH,
            recommendation=Recommendation.APPROVE,
            currency=case.currency,
        )
    )
    db.session.flush()


def add_referrals(world):
    """The co-funded relocation and a referral in each other state."""
    reviewer = _user(world.reviewer)
    manager = _user(world.managers[0])
    regional = world.member_funds["regional"]
    local = world.member_funds["local"]
    staff = {
        tag: {r: _user(i) for r, i in roles.items()} for tag, roles in world.member_staff.items()
    }
    first = world.today.replace(day=1) + timedelta(days=32)
    first = first.replace(day=1)
    answer_by = world.today + timedelta(days=10)
    part = referrals.Part(Category.RELOCATION, 7, 12, MONTHLY * 6, "EUR")
    # The regional fund's own money, in a pool of its own donor.
    donor = pools.create_donor(
        regional.id, "East Africa Solidarity Trust", staff["regional"][Role.MANAGER]
    )
    pool = pools.create_pool(donor, staff["regional"][Role.MANAGER], "Regional relocation", "EUR")
    pools.record_contribution(
        pool,
        staff["regional"][Role.MANAGER],
        Decimal(20000),
        "EUR",
        world.today - timedelta(days=30),
    )
    # Months 1 to 6 from the demo fund, 7 to 12 from the regional fund.
    stay = _case(world, Category.RELOCATION, "Wanjiru Demo (co-funded stay)")
    _recommended(stay, reviewer)
    own_pool = next(p for p in world.pools if p.currency == "EUR" and p.active)
    grant = approve_with_recorded_rates(stay, manager, MONTHLY * 6, [(own_pool.id, MONTHLY * 6)])
    plans.create_plan(grant, manager, "stipend", first, count=6)
    referral = referrals.refer_case(
        reviewer,
        stay,
        regional,
        part,
        ("answers",),
        "Our relocation pool pays six months; the defender cannot return before a year.",
        answer_by,
    )
    referrals.accept_referral(staff["regional"][Role.REVIEWER], referral)
    linked = referral.linked_application
    _recommended(linked, staff["regional"][Role.REVIEWER])
    theirs = approve_with_recorded_rates(
        linked, staff["regional"][Role.MANAGER], MONTHLY * 6, [(pool.id, MONTHLY * 6)]
    )
    plans.create_plan(
        theirs, staff["regional"][Role.MANAGER], "stipend", plans.months_after(first, 6), count=6
    )
    # Waiting for the local fund; declined by it; withdrawn from the regional fund.
    medical = referrals.Part(Category.MEDICAL, None, None, Decimal(800), "EUR")
    waiting = _case(world, Category.MEDICAL, "Otieno Demo (referral waiting)")
    # The same defender had already applied to the local fund: asking the network from the
    # demo fund's case finds it, open.
    _case(world, Category.MEDICAL, "Otieno Demo (referral waiting)", fund=local)
    referrals.refer_case(
        reviewer,
        waiting,
        local,
        medical,
        ("answers", "documents"),
        "Surgery in Mombasa: the local fund covers medical costs there.",
        answer_by,
    )
    declined = _case(world, Category.MEDICAL, "Achieng Demo (referral declined)")
    sent = referrals.refer_case(
        reviewer, declined, local, medical, (), "Physiotherapy after an assault.", answer_by
    )
    referrals.decline_referral(
        staff["local"][Role.REVIEWER], sent, "Our medical pool is spent until the next quarter."
    )
    withdrawn = _case(world, Category.RELOCATION, "Kamau Demo (referral withdrawn)")
    sent = referrals.refer_case(
        reviewer, withdrawn, regional, part, (), "Relocation within the region.", answer_by
    )
    referrals.withdraw_referral(reviewer, sent)
    db.session.flush()
