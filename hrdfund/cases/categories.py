"""The extra questions each kind of support asks: only what the decision needs."""

from decimal import Decimal, InvalidOperation

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from ..core import geo
from ..core.money import format_money
from ..core.support import Category

#: Each field: (name, kind, label, required to submit). Kinds: text (one line, 200),
#: long (a paragraph, 2000), int (0 to 1000), money, scope, where, country.
CATEGORY_FIELDS = {
    Category.LONGER_TERM: [
        ("monthly_amount", "money", _l("Amount needed each month"), True),
        ("months", "int", _l("For how many months (3 to 24)"), True),
        ("where", "where", _l("Where you would live"), True),
    ],
    Category.RELOCATION: [
        ("scope", "scope", _l("Where to"), True),
        ("destination_country", "country", _l("Destination country"), True),
        ("host_organisation", "text", _l("Host organisation, if any"), False),
        ("people", "int", _l("How many people travel, the defender included"), True),
        ("months", "int", _l("For how many months"), True),
        ("stay_plan", "long", _l("Visa or stay plan"), True),
        ("security_plan", "long", _l("How the move will be kept safe"), True),
        ("exit_plan", "long", _l("Plan for return or for what comes after"), True),
    ],
    Category.MEDICAL: [
        ("provider", "text", _l("Hospital, clinic or therapist"), True),
        ("treatment", "long", _l("Treatment needed"), True),
        ("link_to_threat", "long", _l("How the treatment is linked to the threat or attack"), True),
    ],
    Category.DEPENDANTS: [
        ("needs", "long", _l("What the defender's family needs (school, housing, care)"), True),
    ],
    Category.LEGAL: [
        ("case_summary", "long", _l("The legal case and what the fees pay for"), True),
        ("lawyer", "text", _l("Lawyer or legal organisation"), False),
    ],
    Category.PRISON_VISITS: [
        ("visits", "int", _l("Number of visits"), True),
        ("costs", "long", _l("What the visits cost (travel, food, fees)"), True),
    ],
    Category.TRIAL_MONITORING: [
        ("trial", "long", _l("The trial and why monitoring protects the defender"), True),
    ],
    Category.PHYSICAL_SECURITY: [
        ("measures", "long", _l("Security measures needed"), True),
    ],
    Category.DIGITAL_SECURITY: [
        ("equipment", "long", _l("Equipment or help needed, and what was lost or seized"), True),
    ],
    Category.HUMANITARIAN: [
        ("needs", "long", _l("What the defender needs to get by (food, rent, transport)"), True),
    ],
    Category.OTHER: [
        ("description", "long", _l("What support is needed"), True),
    ],
}

#: Staff's words for the answers to the choice questions (the applicant's form asks them
#: in the applicant's words).
CHOICE_LABELS = {
    "scope": {
        "in_country": _l("Within the country"),
        "region": _l("To a nearby country"),
        "abroad": _l("Further abroad"),
    },
    "where": {"in_country": _l("In the country"), "exile": _l("In exile")},
}


def detail_text(kind, value, currency):
    """An answer to a category question as staff read it: plain words for a choice, a
    country's name, an amount with its currency."""
    locale = str(get_locale() or "en")
    if kind in CHOICE_LABELS:
        return CHOICE_LABELS[kind].get(value, value)
    if kind == "country":
        return geo.country_name(value, locale)
    if kind == "money" and currency:
        try:
            return format_money(Decimal(str(value)), currency, locale)
        except (InvalidOperation, ValueError):
            return value
    return value
