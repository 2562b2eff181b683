"""A case's parts: dependants, budget lines, references, consents, the thread of questions
and answers, and the use-of-funds report."""

from datetime import datetime, timedelta
from decimal import ROUND_DOWN

from ..cases import steps as form_steps
from ..cases.models import ApplicationStatus as S
from ..cases.models import (
    BudgetLine,
    Consent,
    ConsentKind,
    Dependant,
    Message,
    Reference,
    UseOfFundsReport,
    VerificationStatus,
)
from ..core.money import CENT


def add_parts(
    world, app_id, currency, budget, granted, dependants, times, org, owner, draft, saved
):
    """Dependants, budget lines, references and consents; a draft has the dependants and
    references only once their steps were saved (among ``saved``: its first four steps,
    the budget's included, always are). Their draws are made either way, so the seeded
    stream that builds the rest stays as it was."""
    _add_dependants(world, app_id, dependants, form_steps.DEPENDANTS in saved)
    _add_budget_lines(world, app_id, currency, budget, granted, times)
    _add_references(world, app_id, times, draft, form_steps.REFERENCES in saved)
    _add_consents(world, app_id, times, org, owner)


def _add_dependants(world, app_id, dependants, kept):
    """Each family member the case affects (drawn, and ``kept`` or not)."""
    rng, enc, uid = world.rng, world.enc, world.uid
    for relation, age in dependants:
        row_uid = uid()
        row = {
            "uid": row_uid,
            "application_id": app_id,
            "age": age,
            "relationship": enc("dependants", "relationship", row_uid, relation),
            "needs": enc("dependants", "needs", row_uid, "School and care (demo)")
            if relation == "child" and rng.random() < 0.5
            else None,
        }
        if kept:
            world.tables[Dependant].add(row)


def _add_budget_lines(world, app_id, currency, budget, granted, times):
    """The budget's lines, with the recommended and approved amounts shared out over them
    in proportion (the last line takes what rounding leaves)."""
    enc, uid = world.enc, world.uid
    requested, lines = budget["requested"], budget["lines"]
    approved = granted if S.APPROVED in times else None
    recommended = None
    if S.RECOMMENDED in times and S.REJECTED not in times:
        recommended = granted or requested
    left = {"approved": approved, "recommended": recommended}
    for n, (description, amount) in enumerate(lines):
        shares = {}
        for key, total in (("approved", approved), ("recommended", recommended)):
            if total is None:
                shares[key] = None
            elif n == len(lines) - 1:
                shares[key] = left[key]
            else:
                shares[key] = (amount * total / requested).quantize(CENT, ROUND_DOWN)
                left[key] -= shares[key]
        row_uid = uid()
        world.tables[BudgetLine].add(
            {
                "uid": row_uid,
                "application_id": app_id,
                "description": enc("budget_lines", "description", row_uid, description),
                "amount": amount,
                "currency": currency,
                "recommended_amount": shares["recommended"],
                "approved_amount": shares["approved"],
            }
        )


def _add_references(world, app_id, times, draft, kept):
    """Two references (a draft may have one), contacted during the review (drawn, and
    ``kept`` or not)."""
    rng, enc, uid = world.rng, world.enc, world.uid
    references = 1 if draft and rng.random() < 0.3 else 2
    reviewed = times.get(S.IN_REVIEW)
    for n in range(references):
        row_uid = uid()
        status, contacted, notes = VerificationStatus.PENDING, None, None
        if reviewed is not None:
            until = times.get(S.RECOMMENDED, world.now)
            contacted = reviewed + (until - reviewed) * rng.uniform(0.1, 0.9)
            contacted = contacted.replace(microsecond=0)
            status = rng.choices(
                (
                    VerificationStatus.CONFIRMED,
                    VerificationStatus.UNREACHABLE,
                    VerificationStatus.NOT_CONFIRMED,
                ),
                (85, 10, 5),
            )[0]
            notes = enc(
                "references",
                "notes",
                row_uid,
                f"Reference {status.value.replace('_', ' ')} by phone (demo)",
            )
        if not kept:
            continue
        world.tables[Reference].add(
            {
                "uid": row_uid,
                "application_id": app_id,
                "name": enc("references", "name", row_uid, f"Demo referee {n + 1}"),
                "organisation": enc(
                    "references", "organisation", row_uid, "Demo human rights network"
                ),
                "contact": enc(
                    "references", "contact", row_uid, f"referee{n + 1}@example.org (demo)"
                ),
                "status": status,
                "notes": notes,
                "contacted_at": contacted,
                "contacted_by_id": world.reviewer if contacted else None,
            }
        )


def _add_consents(world, app_id, times, org, owner):
    """The partner's submission, referral and story consents the applicant side gave."""
    rng, uid = world.rng, world.uid
    consents = []
    if org is not None:
        consents.append(
            (
                ConsentKind.PARTNER_SUBMISSION,
                rng.choice(("in_person", "phone", "secure_message")),
                times["created"],
            )
        )
    # Ticked in the application form: by the defender, or by the partner referring them.
    in_form = "form" if org is None else "partner_form"
    if S.SUBMITTED in times and rng.random() < 0.1:
        consents.append((ConsentKind.REFERRAL, in_form, times[S.SUBMITTED]))
    # Four defenders in five agree that donors may see their case, anonymised; taken
    # from the case number, so the seeded draws that build the rest stay as they were.
    if S.SUBMITTED in times and app_id % 5:
        consents.append((ConsentKind.STORY, in_form, times[S.SUBMITTED]))
    for kind, method, given in consents:
        world.tables[Consent].add(
            {
                "uid": uid(),
                "application_id": app_id,
                "kind": kind,
                "donor_id": None,
                "method": method,
                "recorded_by_id": owner,
                "given_at": given,
                "withdrawn_at": None,
            }
        )


def add_message(world, app_id, author, from_staff, at, body):
    """One message in a case's thread."""
    row_uid = world.uid()
    world.tables[Message].add(
        {
            "uid": row_uid,
            "application_id": app_id,
            "author_id": author,
            "from_staff": from_staff,
            "is_question": from_staff,
            "body": world.enc("messages", "body", row_uid, body),
            "created_at": at,
            "read_at": None,
        }
    )


def add_report(world, app_id, first_paid, before, owner):
    """The applicant side's use-of-funds report, after the first payment."""
    rng = world.rng
    start = datetime.combine(first_paid, datetime.min.time()) + timedelta(days=2)
    if owner is None or start >= before:
        return
    row_uid = world.uid()
    world.tables[UseOfFundsReport].add(
        {
            "uid": row_uid,
            "application_id": app_id,
            "felt_safer": rng.random() < 0.8,
            "continued_work": rng.random() < 0.7,
            "narrative": world.enc(
                "use_of_funds_reports",
                "narrative",
                row_uid,
                "The support let me keep working safely (demo)",
            ),
            "submitted_at": (start + (before - start) * rng.uniform(0.1, 0.9)).replace(
                microsecond=0
            ),
        }
    )
