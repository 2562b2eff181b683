"""Member funds: created, suspended and resumed by the network's administrator, who names
the intake fund; each fund's administrator sets what it covers, whether it takes
applications, and its own four-eyes threshold and targets.

The network's administrator manages funds and never cases: no service here reads a case.
"""

import functools
from decimal import Decimal
from zoneinfo import available_timezones

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from .. import audit
from ..auth import services as accounts
from ..auth.funds import (  # noqa: F401  (the pages use intake_fund and open_funds here)
    fund_name_taken,
    intake_fund,
    open_funds,
)
from ..auth.models import Fund, Role, User
from ..core import limits
from ..core.columns import utcnow
from ..core.extensions import db
from ..core.money import money_words
from ..core.sql import lock_row
from ..core.support import CATEGORY_LABELS, Category
from ..core.text import tidy_name

#: A fund's own targets, in hours: each pair (response, decision) set whole or not at all.
TARGETS = (
    "target_response_hours_urgent",
    "target_decision_hours_urgent",
    "target_response_hours_normal",
    "target_decision_hours_normal",
)


class FundError(ValueError):
    """A change to a fund the rules refuse, in words for the page."""


def _check_network_admin(actor):
    if actor.role != Role.NETWORK_ADMIN:
        raise FundError(_l("Only the network's administrator manages member funds."))


def create_fund(actor, name, admin_login, admin_password_hash):
    """A new member fund and its first administrator (their password hashed before, with no
    transaction open), who enrols a second factor at first sign-in. The fund takes no
    applications until its administrator says what it covers."""
    _check_network_admin(actor)
    name = tidy_name(name)
    if not name:
        raise FundError(_l("Give the fund's name."))
    if fund_name_taken(name):
        raise FundError(_l("A fund is already named %(name)s.", name=name))
    fund = Fund(name=name, takes_applications=False, categories=[], countries=[], languages=[])
    db.session.add(fund)
    db.session.flush()
    audit.record("fund.created", fund, actor=actor, fund=None)
    admin = accounts.create_user(
        Role.ADMIN, admin_login, password_hash=admin_password_hash, actor=actor, fund_id=fund.id
    )
    return fund, admin


def suspend_fund(actor, fund):
    """No one of the fund signs in and no application reaches it; its records stay."""
    _check_network_admin(actor)
    fund = lock_row(Fund, fund.id)
    if fund.suspended:
        raise FundError(_l("This fund is suspended already."))
    fund.suspended_at = utcnow()
    # An intake fund suspended stays named: none takes its place meanwhile (applicants
    # choose a fund), and it is the intake fund again once resumed, unless the network
    # names another.
    # Every session of its accounts ends now, not only while it is suspended: a phone
    # or laptop taken meanwhile does not come back signed in when the fund resumes.
    db.session.execute(
        sa.update(User)
        .where(User.fund_id == fund.id)
        .values(session_version=User.session_version + 1)
        .execution_options(synchronize_session="fetch")
    )
    audit.record("fund.suspended", fund, actor=actor, fund=None)
    return fund


def resume_fund(actor, fund):
    _check_network_admin(actor)
    fund = lock_row(Fund, fund.id)
    if not fund.suspended:
        raise FundError(_l("This fund is not suspended."))
    fund.suspended_at = None
    audit.record("fund.resumed", fund, actor=actor, fund=None)
    return fund


def name_intake(actor, fund):
    """Applications whose applicant does not know which fund to choose go to ``fund``."""
    _check_network_admin(actor)
    fund = lock_row(Fund, fund.id)
    if fund.suspended or not fund.takes_applications:
        raise FundError(_l("The intake fund must take applications and not be suspended."))
    db.session.execute(sa.update(Fund).where(Fund.id != fund.id).values(intake=False))
    fund.intake = True
    audit.record("fund.intake_named", fund, actor=actor, fund=None)
    return fund


def _check_fund_admin(actor, fund):
    if actor.role != Role.ADMIN or actor.fund_id != fund.id:
        raise FundError(_l("Only this fund's administrator changes its settings."))


def update_profile(actor, fund, takes_applications, categories, countries, languages):
    """What the public list says the fund covers, and whether it takes applications."""
    _check_fund_admin(actor, fund)
    fund = lock_row(Fund, fund.id)
    fund.takes_applications = bool(takes_applications)
    fund.categories = sorted(set(categories))
    fund.countries = sorted(set(countries))
    fund.languages = sorted(set(languages))
    if not fund.takes_applications:
        fund.intake = False
    audit.record(
        "fund.profile_changed",
        fund,
        actor=actor,
        fund=fund,
        takes_applications=fund.takes_applications,
        categories=fund.categories,
        countries=fund.countries,
        languages=fund.languages,
    )
    return fund


def known_time_zone(name):
    """``name`` as the time zone database spells it (africa/nairobi: Africa/Nairobi), or
    None when it names none."""
    if not name:
        return None
    return _time_zones().get(name.strip().casefold())


@functools.cache
def _time_zones():
    """Every time zone of the machine's database, by its name folded (read once)."""
    return {zone.casefold(): zone for zone in available_timezones()}


def update_limits(actor, fund, threshold, targets, time_zone=None):
    """The fund's own four-eyes threshold (None: the environment's; never above it), the
    time zone its staff's pages give times in (an IANA name; None: UTC) and its
    targets in hours
    (each of response and decision, urgent and normal; None: the environment's). A target
    pair is set whole: a response target without its decision target is refused, as is a
    decision target shorter than its response target."""
    _check_fund_admin(actor, fund)
    if threshold is not None and (
        not isinstance(threshold, Decimal) or threshold < 0 or threshold != round(threshold, 2)
    ):
        raise FundError(_l("The threshold is an amount of 0 or more, in cents at most."))
    ceiling = limits.four_eyes_threshold()
    if threshold is not None and threshold > ceiling:
        # One person may make the control stricter, never looser: above the instance's
        # threshold fewer approvals would need a second manager.
        raise FundError(
            _l(
                "The fund's threshold can be at most the instance's, %(ceiling)s: a higher"
                " one would let one manager alone approve more.",
                ceiling=money_words(ceiling, limits.reporting_currency()),
            )
        )
    for kind in ("urgent", "normal"):
        response = targets.get(f"target_response_hours_{kind}")
        decision = targets.get(f"target_decision_hours_{kind}")
        if (response is None) != (decision is None):
            raise FundError(_l("Set both the response and the decision target, or neither."))
        if response is not None and not 0 < response <= decision:
            raise FundError(
                _l("A response target is at least an hour and no longer than its decision target.")
            )
    zone = known_time_zone(time_zone)
    if time_zone and time_zone.strip() and zone is None:
        raise FundError(
            _l(
                "%(zone)s is not a time zone this server knows: write it as a place, like"
                " Africa/Nairobi or America/Bogota.",
                zone=time_zone[:64],
            )
        )
    fund = lock_row(Fund, fund.id)
    before = {
        "threshold": fund.four_eyes_threshold,
        "time_zone": fund.time_zone,
        **{n: getattr(fund, n) for n in TARGETS},
    }
    fund.four_eyes_threshold = threshold
    fund.four_eyes_currency = None if threshold is None else limits.reporting_currency()
    for name in TARGETS:
        setattr(fund, name, targets.get(name))
    fund.time_zone = zone
    audit.record(
        "fund.limits_changed",
        fund,
        actor=actor,
        fund=fund,
        before={k: None if v is None else str(v) for k, v in before.items()},
        threshold=None if threshold is None else str(threshold),
        time_zone=zone,
        **{n: targets.get(n) for n in TARGETS},
    )
    return fund


def member_funds():
    """Every member fund of this server, by name (partner funds on other servers are not
    members)."""
    return (
        db.session.execute(sa.select(Fund).where(Fund.partner_of_id.is_(None)).order_by(Fund.name))
        .scalars()
        .all()
    )


def staff_counts():
    """Fund id -> number of its active accounts (no names: the network's administrator
    sees how many, not who)."""
    return dict(
        db.session.execute(
            sa.select(User.fund_id, sa.func.count(User.id))
            .where(User.fund_id.is_not(None), User.active.is_(True))
            .group_by(User.fund_id)
        ).all()
    )


def covers(fund, country_names):
    """What ``fund`` says it covers, in the reader's words: the kinds of support and the
    countries (``country_names`` maps codes to names); an empty list is every one."""
    return {
        "categories": [str(CATEGORY_LABELS[Category(c)]) for c in fund.categories],
        "countries": [country_names.get(c, c) for c in fund.countries],
    }
