"""What a case asks for: its currency, itemised budget, the family it affects and the
category's own answers, with the keys the application form uses."""

from decimal import Decimal

from ..core import geo
from ..core.support import Category
from ..grants.models import PlanKind

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


def request_currency(world, region):
    """The currency a case asks in: mostly dollars or euros, as funds usually grant."""
    if region in ("Andean region", "Central America and Mexico", "South America"):
        return world.rng.choices(("USD", "EUR"), (85, 15))[0]
    return world.rng.choices(("USD", "EUR", "GBP", "SEK"), (45, 40, 6, 9))[0]


def budget(world, category, currency, minimum):
    """Itemised lines in ``currency``; a stipend's lines cover all its months."""
    rng = world.rng
    _, low, high, kind, fewest, most = CATEGORIES[category]
    months = rng.randint(fewest, most) if kind == PlanKind.STIPEND else None
    items = BUDGET_ITEMS[category]
    items = rng.sample(items, k=rng.randint(1, min(3, len(items))))
    weights = [rng.randint(1, 4) for _ in items]
    usd = rng.randint(low, high)
    factor = 1
    while True:
        total = usd * factor
        parts = [world.nice(Decimal(total * w) / sum(weights), currency) for w in weights]
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


def dependants(world, category):
    """(relationship, age) of each family member the case affects."""
    rng = world.rng
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


def details(world, category, country, budget, dependants):
    """The category's own answers, with the keys the application form uses."""
    rng = world.rng

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
