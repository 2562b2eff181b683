"""Services on applications. Each checks its rules, mutates, flushes and audits."""

import unicodedata
from decimal import Decimal

import sqlalchemy as sa
from babel.numbers import get_territory_currencies
from flask_babel import lazy_gettext as _l

from .. import audit
from ..alerts.models import AlertKind
from ..auth import funds
from ..auth.models import Role
from ..core import geo
from ..core.columns import cipher, utcnow
from ..core.extensions import db
from ..core.money import CURRENCIES, check_currency, check_units, total
from ..core.support import Category
from . import alerts, codes, steps, targets
from .categories import CATEGORY_FIELDS
from .consents import set_consent
from .models import (
    Application,
    BudgetLine,
    Consent,
    ConsentKind,
    Decision,
    DecisionOutcome,
    Dependant,
    Gender,
    Reference,
    StatusChange,
    Urgency,
    UseOfFundsReport,
)
from .models import ApplicationStatus as S
from .states import CaseMoved, check_transition

#: Timestamp columns set on the first move into these states.
_STAMPS = {
    S.SUBMITTED: "submitted_at",
    S.APPROVED: "decided_at",
    S.REJECTED: "decided_at",
    S.COMPLETED: "closed_at",
    S.WITHDRAWN: "closed_at",
}
#: Moves that count as the fund's first response to a submitted case.
_RESPONSES = frozenset({S.IN_REVIEW, S.INFO_REQUESTED, S.REJECTED, S.WITHDRAWN})


def _stored_status(application):
    """On PostgreSQL, the case's status as stored, its row locked FOR NO KEY UPDATE until
    the transaction ends; None on SQLite (a request that writes reads under the write
    lock), for a case not written yet, or one deleted meanwhile."""
    if db.session.get_bind().dialect.name != "postgresql" or application.id is None:
        return None
    # FOR NO KEY UPDATE: the rows a decision inserts that refer to the case hold its key
    # (FOR KEY SHARE); a FOR UPDATE would wait on the other decision's, as that one on
    # ours, and one of the two would be cut short as a deadlock.
    locked = (
        sa.select(Application.status)
        .where(Application.id == application.id)
        .with_for_update(key_share=True)
    )
    with db.session.no_autoflush:  # the case's changes are written once, with its move
        stored = db.session.execute(locked).scalar_one_or_none()
    return None if stored is None else S(stored)


def read_status_again(application):
    """Lock the case's row (PostgreSQL) and take its status as stored: for a service whose
    move depends on it but that must not be undone by a move made meanwhile (two answers
    of the applicant side sent at once: the second is kept, the case already back in
    review)."""
    stored = _stored_status(application)
    if stored is not None and stored != application.status:
        sa.orm.attributes.set_committed_value(application, "status", stored)
    return application.status


def _check_still(application, current):
    """On PostgreSQL, lock the case's row and refuse (:class:`CaseMoved`) a move from a
    status it no longer has: two managers deciding the same case at the same moment (one
    approves, the other rejects), or a form sent twice, take turns, and the second is
    undone rather than written over the first, which would leave a rejected case with
    money committed. On SQLite a request that writes reads the case under the write lock
    already."""
    if db.session.get_bind().dialect.name != "postgresql" or application.id is None:
        return
    stored = _stored_status(application)
    if stored is None or stored != current:  # moved on, or deleted meanwhile
        raise CaseMoved(application)


def change_status(application, target, actor=None, at=None):
    """Move ``application`` to ``target`` through the table of allowed moves.

    Raises :class:`~hrdfund.cases.states.InvalidTransition` for any other move;
    records the step with its time, and stamps submission, first response, decision and
    closing times the first time each happens.
    """
    target = S(target)
    current = S(application.status)
    check_transition(current, target)
    _check_still(application, current)
    at = at or utcnow()
    # The case is written once, with every change of the move, at the flush below.
    with db.session.no_autoflush:
        application.status = target
        application.updated_at = at
        if current == S.INFO_REQUESTED:
            targets.resume(application, at)
        if target == S.SUBMITTED:
            targets.set_targets(application, at)
            # Only a sent case takes part in the duplicate check across funds.
            application.network_key = network_key(application.defender_name, application.country)
            codes.assign_code(application, at)
        elif target == S.INFO_REQUESTED:
            targets.pause(application, at)
        stamp_times(application, current, target, at, actor is None or actor.is_staff)
        db.session.add(
            StatusChange(
                application=application,
                from_status=current,
                to_status=target,
                actor_id=actor.id if actor else None,
                at=at,
            )
        )
    db.session.flush()
    audit.record(
        "application.status",
        application,
        actor=actor,
        from_status=current.value,
        to_status=target.value,
    )
    return application


def stamp_times(application, current, target, at, by_staff):
    """Stamp submission, first response, decision and closing times the first time each
    happens, as the move from ``current`` to ``target`` at ``at`` does; only staff (or the
    system, ``by_staff`` True) give a first response."""
    stamp = _STAMPS.get(target)
    if stamp and getattr(application, stamp) is None:
        setattr(application, stamp, at)
    if (
        target in _RESPONSES
        and current != S.DRAFT
        and application.first_response_at is None
        and by_staff
    ):
        application.first_response_at = at


class NotEditableError(Exception):
    """Only a draft can be edited; a sent application changes through its messages."""


class IncompleteError(Exception):
    """The application lacks what the decision needs; ``missing`` lists it in plain words."""

    def __init__(self, missing):
        super().__init__("incomplete application")
        self.missing = missing


class FundClosedError(ValueError):
    """The fund chosen takes no applications (any more)."""


def start_application(actor, category, fund, consent_method=None):
    """Open a draft for ``actor`` (an applicant, or a partner referring a defender) at
    ``fund``, which must take applications."""
    if not funds.takes_applications(fund):
        raise FundClosedError(_l("This fund takes no applications at the moment: choose another."))
    application = Application(
        fund_id=fund.id,
        category=Category(category),
        status=S.DRAFT,
        # The defender chooses; nothing is chosen for them (NULL, not the column's
        # default, which a None would leave to fire).
        urgency=sa.null(),
        currency="USD",
        submitted_by_id=actor.id,
    )
    if actor.role == Role.PARTNER:
        application.partner_organisation_id = actor.partner_organisation_id
    else:
        application.applicant_id = actor.id
    db.session.add(application)
    db.session.flush()
    if actor.role == Role.PARTNER:
        db.session.add(
            Consent(
                application_id=application.id,
                kind=ConsentKind.PARTNER_SUBMISSION,
                method=consent_method,
                recorded_by_id=actor.id,
                given_at=utcnow(),
            )
        )
    db.session.add(
        StatusChange(
            application=application,
            from_status=None,
            to_status=S.DRAFT,
            actor_id=actor.id,
            at=utcnow(),
        )
    )
    db.session.flush()
    audit.record(
        "application.started", application, actor=actor, category=application.category.value
    )
    return application


def begin_application(actor, category, fund, data, consent_method=None):
    """Open a draft with the first step's answers (``data``, as the first step's form
    gives them): the draft exists from the first save, never from choosing a kind of
    support alone."""
    application = start_application(actor, category, fund, consent_method=consent_method)
    return save_draft(application, data, actor, step=steps.DEFENDER)


def save_draft(application, data, actor, step=None):
    """Store what the applicant typed so far; anything may still be missing. With
    ``step`` (one of ``steps.STEPS``) only that step's answers are written and the others
    stay as they were; without, the whole form's. Budget lines adding up to more than one
    amount can hold, or in cents of a currency that has none, are refused
    (:class:`MoneyError`) before anything changes."""
    if application.status != S.DRAFT:
        raise NotEditableError()
    parts = steps.STEPS if step is None else (steps.STEPS[steps.STEPS.index(step)],)
    saved_before = steps.saved_steps(application)
    if steps.BUDGET in parts:
        lines = [line for line in data.get("budget", []) if line.get("amount")]
        requested = total(line["amount"] for line in lines)
        country = data.get("country") if steps.DEFENDER in parts else application.country
        currency = check_currency(data.get("currency") or currency_for_country(country))
        for line in lines:
            check_units(line["amount"], currency)
    with db.session.no_autoflush:  # one UPDATE of the case, not one per collection
        if steps.DEFENDER in parts:
            for name in ("defender_name", "defender_work", "threat"):
                setattr(application, name, _text(data.get(name)))
            application.country = data.get("country") or None
            application.region = geo.region_of(application.country) if application.country else None
            application.defender_key = defender_key(application.defender_name, application.country)
            application.gender = Gender(data["gender"]) if data.get("gender") else None
            if steps.BUDGET not in saved_before:
                # Until the budget is written, its currency follows the country.
                application.currency = currency_for_country(application.country)
        if steps.URGENCY in parts:
            application.urgency = Urgency(data["urgency"]) if data.get("urgency") else None
            application.urgency_reason = _text(data.get("urgency_reason"))
        if steps.SUPPORT in parts:
            application.details = _clean_details(data.get("details") or {})
        if steps.BUDGET in parts:
            application.currency = currency
            application.budget_lines = [
                BudgetLine(
                    description=_text(line.get("description")),
                    amount=line["amount"],
                    currency=application.currency,
                )
                for line in lines
            ]
            application.amount_requested = requested or None
        if steps.DEPENDANTS in parts:
            people = [
                p
                for p in data.get("dependants", [])
                if p.get("relation") or p.get("age") is not None
            ]
            application.dependants = [
                Dependant(age=p.get("age"), relation=p.get("relation") or None) for p in people
            ]
            application.dependants_count = len(people)
        if steps.REFERENCES in parts:
            application.references = [
                Reference(
                    name=r.get("name") or None,
                    organisation=r.get("organisation") or None,
                    contact=r.get("contact") or None,
                )
                for r in data.get("references", [])
                if any(r.values())
            ]
        if steps.OTHER in parts:
            application.other_funders = _text(data.get("other_funders"))
            set_consent(application, ConsentKind.REFERRAL, data.get("consent_referral"), actor)
            set_consent(application, ConsentKind.STORY, data.get("consent_story"), actor)
        steps.mark_saved(application, parts)
        application.updated_at = utcnow()
    # Written at the next flush, with whatever else the request changes on the case (the
    # sending's status move): one UPDATE of it, not two.
    if step is None:
        audit.record("application.saved", application, actor=actor)
    else:
        audit.record("application.saved", application, actor=actor, step=step)
    return application


def _text(value):
    """Typed text without its outer spaces; nothing typed is None."""
    return (value or "").strip() or None


def currency_for_country(country):
    """The currency a budget from ``country`` is most likely in: the one payments there
    are usually made in (``geo.local_currency``), else the first legal tender the locale
    data names for it, when the fund pays in it; US dollars otherwise."""
    if not country:
        return "USD"
    found = geo.local_currency(country)
    candidates = [found] if found else []
    try:
        candidates += get_territory_currencies(country, tender=True)
    except (ValueError, LookupError):
        pass
    return next((c for c in candidates if c in CURRENCIES), "USD")


def defender_key(name, country):
    """The blind index of a defender: the same name (whatever its case, accents or spacing)
    in the same country gives the same key; no name, no key."""
    if not name:
        return None
    return cipher().blind_index(_identity(name, country))


def network_key(name, country):
    """The defender's key in the duplicate check across member funds: the same name and
    country as :func:`defender_key` reads them, hashed under the network's own key (the
    form asks for no date of birth, so name and country are all it can hold). No name, or
    no country, no key: a name alone would match strangers across the network."""
    if not name or not name.strip() or not country:
        return None
    return cipher().network_index("defender|" + _identity(name, country))


def network_identity(name, country):
    """What the duplicate check hashes of a defender (see :func:`network_key`), for a keyed
    hash under another key: the one two funds on different servers share. None when the
    network key would be None."""
    if not name or not name.strip() or not country:
        return None
    return "defender|" + _identity(name, country)


def _identity(name, country):
    """The name with case, accents and spacing taken out, and the country beside it."""
    letters = unicodedata.normalize("NFKD", name.casefold())
    letters = "".join(c for c in letters if not unicodedata.combining(c))
    return " ".join(letters.split()) + "|" + (country or "")


def _clean_details(details):
    """Keep answers that were given, as JSON-safe values."""
    cleaned = {}
    for key, value in details.items():
        if value is None or value == "":
            continue
        cleaned[key] = str(value) if isinstance(value, Decimal) else value
    return cleaned


#: A detail an earlier answer makes needless: (its name, the detail that decides, the
#: answer that does). A move within the defender's own country has no other country to go
#: to: the country the defender is in is where they go.
NOT_ASKED = {("destination_country", "scope", "in_country")}


def _not_asked(name, details):
    """Whether ``details`` already answer the question ``name`` asks, so it need not be."""
    return any(
        name == asked and details.get(decider) == answer for asked, decider, answer in NOT_ASKED
    )


def missing_items(application):
    """What still has to be filled in before the application can be sent, in plain words,
    each with the step and the field that answer it (:class:`steps.Missing`)."""
    missing = []

    def need(step, field, words):
        missing.append(steps.Missing(step, field, words))

    if application.partner_organisation_id and not application.defender_name:
        need(steps.DEFENDER, "defender_name", _l("The defender's name or pseudonym"))
    if not application.country:
        need(steps.DEFENDER, "country", _l("The country where the defender is now"))
    if not application.defender_work:
        need(steps.DEFENDER, "defender_work", _l("The defender's human rights work"))
    if not application.threat:
        need(steps.DEFENDER, "threat", _l("The threat or attack linked to that work"))
    if application.urgency is None:
        need(steps.URGENCY, "urgency", _l("How urgent it is: choose one answer"))
    elif application.urgency == Urgency.URGENT and not application.urgency_reason:
        need(steps.URGENCY, "urgency_reason", _l("Why it is urgent"))
    details = application.details or {}
    for name, _kind, label, required in CATEGORY_FIELDS[application.category]:
        if required and details.get(name) in (None, "") and not _not_asked(name, details):
            need(steps.SUPPORT, f"details-{name}", label)
    lines = application.budget_lines
    if not lines:
        need(steps.BUDGET, "budget-0-amount", _l("At least one budget line with an amount"))
    else:
        blank = next((i for i, line in enumerate(lines) if not line.description), None)
        if blank is not None:
            need(steps.BUDGET, f"budget-{blank}-description", _l("What each budget line pays for"))
    references = application.references
    for index in range(2):
        reference = references[index] if index < len(references) else None
        if reference is None or not (reference.name and reference.contact):
            which = "contact" if reference is not None and reference.name else "name"
            need(
                steps.REFERENCES,
                f"references-{index}-{which}",
                _l("A name and a safe way to reach each of the two"),
            )
            break
    return missing


def submit_application(application, actor):
    """Send a complete draft to the fund."""
    if application.status != S.DRAFT:
        raise NotEditableError()
    missing = missing_items(application)
    if missing:
        raise IncompleteError(missing)
    change_status(application, S.SUBMITTED, actor=actor)
    if application.urgency == Urgency.URGENT:
        alerts.notify(application, AlertKind.URGENT_CASE)
    return application


def case_rows(model, application, *options):
    """Every row of ``model`` that belongs to the case, oldest first (``options``: loader
    options, such as the rows' authors loaded with them)."""
    return (
        db.session.execute(
            sa.select(model)
            .where(model.application_id == application.id)
            .options(*options)
            .order_by(model.id)
        )
        .scalars()
        .all()
    )


class ReportNotDueError(Exception):
    """A use-of-funds report comes once, after payments have started."""


def submit_report(application, actor, felt_safer, continued_work, narrative=None):
    """Record the applicant's short report on how the support was used and what it changed."""
    if application.status not in (S.PAYING, S.COMPLETED) or latest_report(application):
        raise ReportNotDueError()
    answers = {"yes": True, "no": False}
    report = UseOfFundsReport(
        application_id=application.id,
        felt_safer=answers.get(felt_safer),
        continued_work=answers.get(continued_work),
        narrative=(narrative or "").strip() or None,
        submitted_at=utcnow(),
    )
    db.session.add(report)
    db.session.flush()
    audit.record(
        "report.submitted", report, actor=actor, fund=application.fund_id, case=application.uid
    )
    return report


def latest_report(application):
    """The applicant's use-of-funds report, if one was sent."""
    return (
        db.session.execute(
            sa.select(UseOfFundsReport)
            .where(UseOfFundsReport.application_id == application.id)
            .order_by(UseOfFundsReport.id.desc())
        )
        .scalars()
        .first()
    )


def latest_decision(application):
    """The last approval or rejection of the case, if any."""
    return (
        db.session.execute(
            sa.select(Decision)
            .where(
                Decision.application_id == application.id,
                Decision.outcome.in_([DecisionOutcome.APPROVE, DecisionOutcome.REJECT]),
            )
            .order_by(Decision.id.desc())
        )
        .scalars()
        .first()
    )


def amount_asked(application):
    """What the application asks in all, in its currency: the amount it states, else its
    budget lines added up; None when it names neither (nothing to hold a decision to)."""
    if application.amount_requested is not None:
        return application.amount_requested
    lines = [line.amount for line in application.budget_lines if line.amount is not None]
    return total(lines) if lines else None
