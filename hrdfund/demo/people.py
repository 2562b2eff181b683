"""People and funds: the demo fund, its partner organisations, the demo accounts (through
the account service, listed with their passwords in instance/demo-accounts.json) and the
bulk of defenders and partner staff, who cannot sign in."""

import json
import os
import secrets

from flask import current_app

from ..auth import services as auth_services
from ..auth.models import Fund, PartnerOrganisation, Role, User
from ..core import geo
from ..core.extensions import db

ORGANISATIONS = (
    ("Coastal Defenders Network", "KE"),
    ("Andes Legal Collective", "CO"),
    ("Mekong Rights Watch", "KH"),
)


#: The network's other member funds: (name, kinds of support, countries, languages, its
#: accounts' tag). The demo fund is the international one and the network's intake fund.
MEMBER_FUNDS = (
    (
        "Coastal Local Fund",
        ["medical", "dependants", "legal", "prison_visits"],
        ["KE", "TZ"],
        ["en", "fr"],
        "local",
    ),
    (
        "East Africa Regional Fund",
        ["relocation", "longer_term", "medical", "digital_security"],
        ["KE", "UG", "TZ", "RW", "BI", "ET", "SO", "SS"],
        ["en", "fr", "ar"],
        "regional",
    ),
)


def add_fund(world, created_at):
    """The demo fund (the network's intake fund), the network's other member funds and the
    partner organisations, through the ORM."""
    world.fund = Fund(name="Demo Protection Fund", intake=True)
    world.fund.created_at = created_at
    db.session.add(world.fund)
    world.member_funds = {}
    for name, categories, countries, languages, tag in MEMBER_FUNDS:
        member = Fund(name=name, categories=categories, countries=countries, languages=languages)
        member.created_at = created_at
        db.session.add(member)
        world.member_funds[tag] = member
    world.orgs = [
        PartnerOrganisation(name=name, country=country, created_at=world.fund.created_at)
        for name, country in ORGANISATIONS
    ]
    db.session.add_all(world.orgs)
    db.session.flush()


def add_accounts(world):
    """The demo accounts, through the account service, and the file listing them."""
    fund = {"fund_id": world.fund.id}
    plan = [
        (Role.APPLICANT, "Amani (demo applicant)", {}),
        (Role.APPLICANT, "Lucia (demo applicant)", {}),
        (Role.APPLICANT, "Dara (demo applicant)", {}),
        (
            Role.PARTNER,
            "Coastal Defenders Network (demo partner)",
            {"partner_organisation_id": world.orgs[0].id},
        ),
        (Role.REVIEWER, "Rita Reviewer (demo)", fund),
        (Role.MANAGER, "Mona Manager (demo)", fund),
        (Role.MANAGER, "Marek Manager (demo)", fund),
        (Role.FINANCE, "Femi Finance (demo)", fund),
        (
            Role.DONOR,
            "Nordic Solidarity Foundation (demo donor)",
            {**fund, "donor_id": world.donors[0].id},
        ),
        (
            Role.DONOR,
            "Ministry of Foreign Affairs (demo donor)",
            {**fund, "donor_id": world.donors[2].id},
        ),
        (Role.ADMIN, "Ada Admin (demo)", fund),
        (Role.NETWORK_ADMIN, "Nia Network (demo)", {}),
    ]
    for tag, member in world.member_funds.items():
        plan += [
            (role, f"{label} (demo, {member.name})", {"fund_id": member.id, "tag": tag})
            for role, label in (
                (Role.REVIEWER, "Rafael Reviewer"),
                (Role.MANAGER, "Maya Manager"),
                (Role.FINANCE, "Farid Finance"),
                (Role.ADMIN, "Ali Admin"),
            )
        ]
    accounts, world.users, counters = [], {}, {}
    world.member_staff = {}
    for role, name, fields in plan:
        tag = fields.pop("tag", None)
        if tag:
            login = f"demo-{tag}-{role.value}"
        else:
            counters[role] = counters.get(role, 0) + 1
            login = f"demo-{role.value}{counters[role]}"
        password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
        user = auth_services.create_user(role, login, password, display_name=name, **fields)
        user.created_at = world.fund.created_at
        if user.needs_totp:
            # Enrolled already: the usual two-step sign-in applies from the first visit.
            user.totp_confirmed_at = world.fund.created_at
        if role in (Role.REVIEWER, Role.MANAGER):
            # Where staff alerts go (nowhere real: example.org never receives mail).
            user.contact = f"{login}@example.org"
            user.on_duty = tag is not None or counters[role] == 1
        if tag:
            world.member_staff.setdefault(tag, {})[role] = user.id
        else:
            world.users.setdefault(role, []).append(user.id)
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
    world.reviewer = world.users[Role.REVIEWER][0]
    world.managers = world.users[Role.MANAGER]
    world.finance = world.users[Role.FINANCE][0]
    world.staff = frozenset((world.reviewer, *world.managers, world.finance))
    world.accounts_file = _write_accounts(accounts)


def _write_accounts(accounts):
    """List the demo accounts with their passwords in a file only its owner reads."""
    path = os.path.join(current_app.instance_path, "demo-accounts.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(accounts, fh, indent=2)
    # An older file keeps its old mode through O_CREAT; the passwords are new.
    os.chmod(path, 0o600)
    return path


def add_user(world, role, created, login, org_id=None):
    """A user without a password (cannot sign in), written in bulk."""
    return world.tables[User].add(
        {
            "uid": world.uid(),
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


def add_partner_staff(world):
    """The other partner organisations' staff: they refer cases, without a demo login."""
    world.partner_users = {world.orgs[0].id: world.users[Role.PARTNER][0]}
    for org in world.orgs[1:]:
        world.partner_users[org.id] = add_user(
            world, Role.PARTNER, world.fund.created_at, f"partner-{world.uid()}", org.id
        )
    world.org_countries = {
        org.id: [c for c in geo.COUNTRIES if geo.region_of(c) == geo.region_of(org.country)]
        for org in world.orgs
    }
