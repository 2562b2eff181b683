"""The demo directory: providers and partners kept by the demo's member funds, for the
whole network or one fund, written through the services as managers and finance would.
Among them a psychosocial provider in Kenya, a medical provider finance can pay, and an
entry last verified more than a year ago."""

from datetime import timedelta

from ..auth.models import Role, User
from ..core.extensions import db
from ..directory import services as directory

#: (name, services, countries, regions, languages, contact, who may refer, visibility,
#: days since it was verified, its keeper's tag (None: the demo fund), payment details).
ENTRIES = (
    (
        "Amani Counselling Collective",
        ["psychosocial"],
        ["KE", "TZ"],
        [],
        ["en", "sw"],
        "Signal +254 700 000 101 (demo); sessions in person in Nairobi or by video.",
        "Member funds and partner organisations",
        "network",
        45,
        "local",
        None,
    ),
    (
        "St Luke Medical Centre (demo)",
        ["medical"],
        ["KE"],
        [],
        ["en", "sw"],
        "Intake desk, encrypted mail intake@stluke.example; ask for the protection desk.",
        "Member funds",
        "network",
        20,
        None,
        "Equity Bank (demo), account 0100 2000 3000, reference: patient code only",
    ),
    (
        "Open Line Legal Aid (demo)",
        ["legal"],
        ["KE", "UG"],
        [],
        ["en", "fr"],
        "Signal +254 700 000 303 (demo), weekdays.",
        "Anyone who knows the defender",
        "network",
        460,
        None,
        None,
    ),
    (
        "Safe Homes Kampala (demo)",
        ["shelter", "relocation_host"],
        ["UG"],
        [],
        ["en"],
        "Only through the fund's protection officer; never give the address by phone.",
        "The regional fund only",
        "fund",
        90,
        "regional",
        None,
    ),
    (
        "Hawala Partners Network (demo)",
        ["payment_intermediary"],
        [],
        ["East Africa", "Middle East and North Africa"],
        ["ar", "en", "so"],
        "Wire +252 600 000 505 (demo)",
        "Member funds",
        "network",
        120,
        None,
        "Agent code HPN-DEMO-17, collection in Mogadishu or Nairobi",
    ),
    (
        "Kids First School Support (demo)",
        ["schooling", "childcare"],
        ["KE"],
        [],
        ["en", "sw"],
        "Email kidsfirst@example.org with the case code, no names.",
        "Member funds and partner organisations",
        "network",
        200,
        "local",
        None,
    ),
    (
        "Digital Shield Helpdesk (demo)",
        ["digital_security"],
        [],
        ["East Africa", "West Africa"],
        ["ar", "en", "fr"],
        "help@digitalshield.example (PGP key on request), replies within a day.",
        "Anyone",
        "network",
        30,
        "regional",
        None,
    ),
    (
        "Red Escucha Bogotá (demo)",
        ["psychosocial"],
        ["CO"],
        [],
        ["es"],
        "Signal +57 300 000 0808 (demo)",
        "Member funds",
        "network",
        60,
        None,
        None,
    ),
)


def add_directory(world):
    """Every entry of :data:`ENTRIES`, with the payment details finance recorded."""
    keepers = {None: (world.managers[0], world.finance)}
    for tag, roles in world.member_staff.items():
        keepers[tag] = (roles[Role.MANAGER], roles[Role.FINANCE])
    for (
        name,
        services,
        countries,
        regions,
        languages,
        contact,
        referrers,
        visibility,
        days,
        tag,
        payment,
    ) in ENTRIES:
        manager_id, finance_id = keepers[tag]
        entry = directory.create_entry(
            db.session.get(User, manager_id),
            name=name,
            services=services,
            countries=countries,
            regions=regions,
            languages=languages,
            contact=contact,
            referrers=referrers,
            visibility=visibility,
            verified_on=world.today - timedelta(days=days),
        )
        if payment:
            directory.set_payment_details(db.session.get(User, finance_id), entry, payment)
