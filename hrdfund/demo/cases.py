"""The cases: the showcase every demo account follows, then a seeded mix of statuses and
categories; each case with its parts, history, staff side and money."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from ..auth.models import PartnerOrganisation, Role
from ..cases import services as app_services
from ..cases import steps as form_steps
from ..cases.models import Application, Gender, StatusChange, Urgency
from ..cases.models import ApplicationStatus as S
from ..core import geo
from ..core.support import Category
from . import answers, decisions, grants, parts, paths, people
from .answers import CATEGORIES, THREATS, WORK

#: Applications generated between two writes (about 20,000 rows in the largest tables).
BATCH = 2000
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
URGENCY_REASON = "The threats escalated after a court hearing last week (demo text)"
OTHER_FUNDERS = ("None asked yet (demo)", "Asked Demo Regional Fund (demo)")
FUNDED = frozenset({S.APPROVED, S.PAYING, S.COMPLETED})


def add_applications(world):
    """Every case: the showcase first, then a seeded mix; written every BATCH."""
    rng = world.rng
    statuses = list(STATUS_WEIGHTS)
    status_weights = list(STATUS_WEIGHTS.values())
    categories = list(CATEGORIES)
    category_weights = [spec[0] for spec in CATEGORIES.values()]
    countries = list(geo.COUNTRIES)
    named = world.users[Role.APPLICANT]
    for i in range(world.scale):
        org = None
        if i < len(SHOWCASE):
            who, status = SHOWCASE[i]
            # The showcase runs through the categories, so every one appears too.
            category = categories[i % len(categories)]
            applicant = named[who] if who != "partner" else None
            if who == "partner":
                org = world.orgs[0]
        else:
            status = rng.choices(statuses, status_weights)[0]
            category = rng.choices(categories, category_weights)[0]
            applicant = "new"
            if rng.random() < 0.28:
                org = rng.choice(world.orgs)
                applicant = "new" if rng.random() < 0.5 else None
        country = rng.choice(world.org_countries[org.id] if org else countries)
        add_case(world, i, status, category, country, applicant, org)
        if i % BATCH == BATCH - 1:
            world.flush_all()


@dataclass
class Case:
    """What the rows of one case are built from, once its amounts and times are drawn. It
    carries what the pool-eligibility rule reads of an application (fund, category,
    country, region), so the demo chooses pools by that rule."""

    number: int
    fund_id: int
    status: S
    category: Category
    country: str
    urgent: bool
    currency: str
    budget: dict
    times: dict
    applicant: int | None
    org: PartnerOrganisation | None
    owner: int
    #: The steps of the application form the applicant side saved: every one for a case
    #: sent, the first few for a draft (see :func:`draft_steps`).
    saved: tuple

    @property
    def region(self):
        """The region of the case's country, as the application records it."""
        return geo.region_of(self.country)


def draft_steps(number):
    """The steps of the application form a draft (the case ``number``) was saved at, as a
    person fills them: from the first, in order, stopping after four to all seven (taken
    from the case number, so the seeded draws that build the rest stay as they were)."""
    return form_steps.STEPS[: len(form_steps.STEPS) - number % 4]


def add_case(world, i, status, category, country, applicant, org):
    """One application with its parts, history, staff side and money."""
    urgent = world.rng.random() < 0.35
    currency = answers.request_currency(world, geo.region_of(country))
    budget, granted, plan, four_eyes = _amounts(world, status, category, currency)
    times = paths.timeline(world, status, urgent, four_eyes, plan)
    decided = times.get(S.AWAITING_SECOND_APPROVAL) or times.get(S.APPROVED)
    if decided is not None and currency != world.reporting:
        # The rate the managers weighed the amount at is in the fund's table.
        world.rates.rate(world.reporting, currency, decided.date())
    if applicant == "new":
        created = times["created"] - world.hours(0.1, 2)
        applicant = people.add_user(world, Role.APPLICANT, created, f"defender-{world.uid()}")
    owner = (world.partner_users[org.id] if org else None) or applicant
    case = Case(
        i,
        world.fund.id,
        status,
        category,
        country,
        urgent,
        currency,
        budget,
        times,
        applicant,
        org,
        owner,
        draft_steps(i) if status == S.DRAFT else form_steps.STEPS,
    )
    dependants = answers.dependants(world, category)
    row = _application_row(world, case, dependants)
    app_id = world.tables[Application].add(row)
    steps = paths.history(world, app_id, times, owner)
    draft = status == S.DRAFT
    parts.add_parts(
        world, app_id, currency, budget, granted, dependants, times, org, owner, draft, case.saved
    )
    approvals = decisions.add_staff_side(world, app_id, times, budget, granted, currency, owner)
    if status == S.AWAITING_SECOND_APPROVAL:
        _propose_split(world, case, approvals, granted)
    if plan is not None:
        _pay_out(world, case, row, steps, approvals, granted, plan)
    row.update(paths.stamps(world, steps))
    for step_from, step_to, actor, at in steps:
        world.tables[StatusChange].add(
            {
                "application_id": app_id,
                "from_status": step_from,
                "to_status": step_to,
                "actor_id": actor,
                "at": at,
            }
        )


def _amounts(world, status, category, currency):
    """The budget, the amount granted (None before a decision), how a funded case is paid,
    and whether its approval needs a second manager."""
    least, most = world.rates.worth_range(currency, world.reporting)
    minimum = Decimal(0)
    if status == S.AWAITING_SECOND_APPROVAL:
        # Worth the threshold in the reporting currency whatever the month's rate.
        minimum = (world.threshold / least).to_integral_value(ROUND_CEILING)
    budget = answers.budget(world, category, currency, minimum)
    granted = None
    if status in FUNDED or status == S.AWAITING_SECOND_APPROVAL:
        granted = decisions.granted_amount(world, budget, minimum)
        granted = decisions.clear_of_threshold(world, granted, budget["months"], least, most)
    plan = grants.plan_shape(world, category, budget) if status in FUNDED else None
    four_eyes = granted is not None and granted * least >= world.threshold
    return budget, granted, plan, four_eyes


def _application_row(world, case, dependants):
    """The application's own row, its free text encrypted as the model would, with the
    answers of the form's steps the applicant side saved and the others empty, as the
    steps page reads them; its steps' times are stamped once they are all known."""
    rng, times, uid = world.rng, case.times, world.uid()
    details = answers.details(world, case.category, case.country, case.budget, len(dependants))
    work = rng.choice(WORK)
    if case.status == S.DRAFT and rng.random() < 0.4:
        details.pop(rng.choice(list(details)))

    def enc(column, text):
        return world.enc("applications", column, uid, text)

    name = f"Demo defender {case.number + 1}"
    urgency = Urgency.URGENT if case.urgent else Urgency.NORMAL
    saved = set(case.saved)
    row = {
        "uid": uid,
        "fund_id": world.fund.id,
        "applicant_id": case.applicant,
        "partner_organisation_id": case.org.id if case.org else None,
        "submitted_by_id": case.owner,
        "category": case.category,
        "status": case.status,
        "urgency": urgency,
        "country": case.country,
        "region": geo.region_of(case.country),
        "gender": rng.choices(list(Gender), (45, 40, 5, 10))[0],
        "amount_requested": case.budget["requested"],
        "currency": case.currency,
        "dependants_count": len(dependants) if form_steps.DEPENDANTS in saved else 0,
        "assigned_reviewer_id": world.reviewer if S.IN_REVIEW in times else None,
        "defender_name": enc("defender_name", name),
        "defender_work": enc("defender_work", f"Works on {work} (demo text)"),
        "threat": enc("threat", "Faces " + rng.choice(THREATS).format(work=work) + " (demo text)"),
        "urgency_reason": enc("urgency_reason", URGENCY_REASON) if case.urgent else None,
        "other_funders": enc("other_funders", rng.choice(OTHER_FUNDERS))
        if rng.random() < 0.7
        else None,
        "details": enc("details", json.dumps(details, sort_keys=True)),
        "created_at": times["created"],
        "updated_at": times["last"],
        "submitted_at": None,
        "first_response_at": None,
        **paths.case_targets(case.category, urgency, times.get(S.SUBMITTED)),
        "clock_paused_at": times.get(S.INFO_REQUESTED) if case.status == S.INFO_REQUESTED else None,
        "defender_key": app_services.defender_key(name, case.country),
        "network_key": None
        if case.status == S.DRAFT
        else app_services.network_key(name, case.country),
        "decided_at": None,
        "closed_at": None,
        "steps_saved": form_steps.saved_value(saved),
    }
    # A draft holds no answer of a step not saved yet (the first four always are).
    if form_steps.OTHER not in saved:
        row["other_funders"] = None
    return row


def _propose_split(world, case, approvals, granted):
    """The first manager proposed one fitting pool, in the case's currency if any."""
    on = case.times[S.AWAITING_SECOND_APPROVAL].date()
    fitting = [p for p in world.pools if grants.pool_fits(case, p, on)]
    fitting.sort(key=lambda p: (p.currency != case.currency, p.cap_per_grant is not None))
    proposed = [
        grants.pool_share(world, case, pool, granted, case.currency, on) for pool in fitting
    ]
    decisions.add_approval_draws(
        world, approvals, [share for share in proposed if share][:1], case.currency
    )


def _pay_out(world, case, row, steps, approvals, granted, plan):
    """The grant of a funded case and its payments; the case moves to paying and completed
    as its money went out (it stays approved if nothing could be paid)."""
    grant = grants.GrantState()
    grant.category = case.category
    grant.owner = case.owner
    grant.approvals = approvals
    app_id = row["id"]
    paid = grants.add_grant(world, case, app_id, grant, granted, plan)
    if paid:
        first, last = paid
        at = datetime.combine(first, datetime.min.time()) + world.hours(9, 17)
        steps.append((S.APPROVED, S.PAYING, world.finance, at))
        if case.status == S.COMPLETED:
            done = min(
                datetime.combine(last, datetime.min.time()) + world.hours(24 * 3, 24 * 20),
                world.now - timedelta(hours=1),
            )
            steps.append((S.PAYING, S.COMPLETED, world.finance, done))
            grants.close_grant(world, grant, done)
            parts.add_report(world, app_id, first, done, case.owner)
        elif world.rng.random() < 0.2:
            parts.add_report(world, app_id, first, world.now, case.owner)
    row.update(status=steps[-1][1], updated_at=steps[-1][3])
