"""The case page: only the parts of a case its reader needs to know
(``access.sections``), the panels higher features add (``panels``), and the page's own
forms, from the classes the view hands over, each as the user sent it when it was refused a
moment ago (``refused.restore``)."""

from dataclasses import dataclass

from babel import Locale
from flask import render_template
from flask_babel import get_locale

from ..auth import refused
from ..auth.language import NAMES as LANGUAGE_NAMES
from ..auth.models import Role
from . import access, consents, labels, messages, services, steps, withdrawal
from .access import Section
from .categories import CATEGORY_FIELDS, detail_text
from .forms import (
    CONSENT_LABELS,
    DOCUMENT_LABELS,
    REFERENCE_STATUSES,
    SUBMISSION_LABEL,
    ConsentChangeForm,
    PartnerLabelForm,
)
from .models import ApplicationStatus, ConsentKind, Document, Urgency
from .panels import collect_panels
from .states import (
    APPLICANT_LABELS,
    COMPLETE_AND_REPORTED,
    DRAFT_COMPLETE,
    NEXT_STEPS,
    NEXT_STEPS_NOT_URGENT,
    OPEN_STATES,
    STAFF_LABELS,
)

#: Where a use-of-funds report may be due: once payments have started.
REPORTING = (ApplicationStatus.PAYING, ApplicationStatus.COMPLETED)


def render_case(application, user, forms):
    """The case page for ``user``; ``forms`` maps ``message``, ``document`` and ``report``
    to the form classes the page shows (each restored only where it is shown)."""
    shown = access.sections(application, user)
    restore = refused.restore
    consents_shown = Section.CONSENTS in shown
    report = services.latest_report(application) if consents_shown else None
    report_due = consents_shown and report is None and application.status in REPORTING
    documents = _documents(application, shown)
    missing = (
        services.missing_items(application) if application.status == ApplicationStatus.DRAFT else []
    )
    return render_template(
        "cases/case.html",
        application=access.CaseView(application, shown),
        sections=shown,
        form=restore(forms["message"](formdata=None)),
        document_form=restore(forms["document"](formdata=None)),
        documents=documents,
        document_labels=DOCUMENT_LABELS,
        messages=_thread(application, shown),
        # Staff read the status by its name; the applicant side in its own words, with
        # what happens next.
        labels=STAFF_LABELS if user.is_staff else APPLICANT_LABELS,
        next_step=None if user.is_staff else _next_step(application, report, missing),
        # Which fund has it, for the applicant side: a partner applies to one of several.
        fund_name=None if user.is_staff else application.fund.name,
        missing=missing,
        ending=_ending(application, user, documents),
        resume_step=steps.resume_step(application),
        decision=services.latest_decision(application),
        panels=_panels(application, user, shown),
        report=report,
        report_form=restore(forms["report"](formdata=None)) if report_due else None,
        consents=_consents(application, user) if consents_shown else [],
        submission=_submission(application, user) if consents_shown else None,
        how_labels=consents.HOW_LABELS,
        partner_label=_label(application, user) if consents_shown else None,
        consent_record=_consent_record(application, shown) if user.is_staff else None,
        category_fields=CATEGORY_FIELDS[application.category],
        detail_text=detail_text,
        reference_labels=REFERENCE_STATUSES,
        applicant_language=_applicant_language(application) if user.is_staff else None,
    )


def _panels(application, user, shown):
    """The panels of higher features by slot: a purged case keeps the summary and the
    history of its figures, but no action."""
    slots = collect_panels(application, user, shown)
    if application.purged_at:
        slots["work"] = []
    return slots


def _applicant_language(application):
    """The language the applicant side reads the case in (the account that sent it), named
    in the reader's language and in its own, so staff answer in it or find someone who
    can; None when the account never chose one."""
    sides = (application.applicant, application.submitted_by)
    code = next(
        (u.language for u in sides if u is not None and u.is_applicant_side and u.language),
        None,
    )
    if code is None:
        return None
    own = LANGUAGE_NAMES.get(code, code)
    named = Locale.parse(code).get_display_name(str(get_locale() or "en"))
    return own if named == own else f"{named} ({own})"


def _thread(application, shown):
    """The whole thread for those who read it; finance reads what was written from the
    decision on."""
    if Section.THREAD in shown:
        return messages.thread(application)
    if Section.PAYMENT_MESSAGES in shown and application.decided_at is not None:
        return messages.thread(application, since=application.decided_at)
    return None


def _next_step(application, report, missing):
    """What happens next, as the applicant side reads it: a case that is not urgent is
    promised no first answer within a day; a draft ``missing`` nothing is only to send;
    support complete whose ``report`` came asks for it no more."""
    if application.status == ApplicationStatus.DRAFT and not missing:
        return DRAFT_COMPLETE
    if application.urgency != Urgency.URGENT and application.status in NEXT_STEPS_NOT_URGENT:
        return NEXT_STEPS_NOT_URGENT[application.status]
    if application.status == ApplicationStatus.COMPLETED and report is not None:
        return COMPLETE_AND_REPORTED
    return NEXT_STEPS.get(application.status)


def _ending(application, user, documents):
    """What the applicant side may end on the case (``withdrawal``): withdraw it, delete
    it (a draft), and which of its ``documents`` it may take out."""
    if not withdrawal.holds_case(application, user):
        return {"withdraw": False, "delete": False, "documents": set()}
    documents = documents if application.status in OPEN_STATES else ()
    roles = withdrawal.uploaders_roles(documents or ())
    return {
        "withdraw": application.status in withdrawal.WITHDRAWABLE,
        "delete": application.status == ApplicationStatus.DRAFT,
        "documents": {
            d.id for d in documents or () if withdrawal.removable(application, d, user, roles)
        },
    }


def _documents(application, shown):
    if Section.DOCUMENTS not in shown:
        return None
    return services.case_rows(Document, application)


def _consents(application, user):
    """For the applicant side of a sent case: each consent the defender may give or take
    back, whether it stands, every time it was given and withdrawn, and the form that
    changes it (a partner says how the defender told them)."""
    if (
        not user.is_applicant_side
        or application.status == ApplicationStatus.DRAFT
        or not consents.holds_consent(application, user)
    ):
        return []
    grants = consents.history(application)
    rows = []
    for kind in consents.WITHDRAWABLE:
        form = ConsentChangeForm(formdata=None, prefix=kind.value)
        if user.role != Role.PARTNER:
            del form.how
        rows.append(
            ConsentRow(
                kind=kind,
                label=CONSENT_LABELS[kind],
                current=consents.active_consent(application, kind),
                grants=[g for g in grants if g.kind == kind],
                form=refused.restore(form),
            )
        )
    return rows


@dataclass(frozen=True)
class ConsentRow:
    kind: object
    label: object
    current: object
    grants: list
    form: object


def _submission(application, user):
    """For the partner that referred the case: the defender's consent to it, as recorded."""
    if user.role != Role.PARTNER or application.partner_organisation_id is None:
        return None
    return consents.active_consent(application, ConsentKind.PARTNER_SUBMISSION)


def _label(application, user):
    """For an account of the partner that referred the case: its label and the form that
    changes it; None for everyone else."""
    if not labels.labels_case(application, user):
        return None
    form = PartnerLabelForm(formdata=None, data={"label": labels.label_of(application, user)})
    return refused.restore(form)


def _consent_record(application, shown):
    """For the fund's reviewers and managers: the organisation that referred the case and
    every consent recorded on it, by whom, how and when."""
    if Section.REVIEW not in shown or application.purged_at is not None:
        return None
    return {
        "organisation": application.partner_organisation,
        "grants": consents.history(application),
        "labels": {ConsentKind.PARTNER_SUBMISSION: SUBMISSION_LABEL, **CONSENT_LABELS},
    }
