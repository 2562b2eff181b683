"""The application form in steps: a defender on a phone answers one short section at a
time, saves it, and sends the whole application from a last step that shows every answer.

Each step holds some of the whole form's fields, under the same names, so a step and the
whole form save the same way (``services.save_draft``). A step counts as done once it was
saved and nothing it asks for sending is missing.
"""

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

DEFENDER = "defender"
URGENCY = "urgency"
SUPPORT = "support"
BUDGET = "budget"
DEPENDANTS = "dependants"
REFERENCES = "references"
OTHER = "other"
#: The last step: every answer, what sending still needs, and the button that sends.
REVIEW = "review"

#: The steps that save answers, in the order the form walks them.
STEPS = (DEFENDER, URGENCY, SUPPORT, BUDGET, DEPENDANTS, REFERENCES, OTHER)

TITLES = {
    DEFENDER: _l("The defender"),
    URGENCY: _l("Urgency"),
    SUPPORT: _l("About this support"),
    BUDGET: _l("Budget"),
    DEPENDANTS: _l("Dependants affected"),
    REFERENCES: _l("Two references"),
    OTHER: _l("Other funders and consent"),
    REVIEW: _l("Check and send"),
}

#: The whole form's fields each step holds.
FIELDS = {
    DEFENDER: ("defender_name", "country", "gender", "defender_work", "threat"),
    URGENCY: ("urgency", "urgency_reason"),
    SUPPORT: ("details",),
    BUDGET: ("currency", "budget"),
    DEPENDANTS: ("dependants",),
    REFERENCES: ("references",),
    OTHER: ("other_funders", "consent_referral", "consent_story"),
}


@dataclass(frozen=True)
class Missing:
    """Something sending needs: in plain words, with the step and the field (its id on
    the step's page) where it is answered."""

    step: str
    field: str
    words: object

    def __str__(self):
        return str(self.words)


def saved_steps(application):
    """The steps the applicant side saved at least once."""
    return set(filter(None, (application.steps_saved or "").split(",")))


def saved_value(steps):
    """What an application keeps of ``steps`` saved: their names in the form's order."""
    return ",".join(s for s in STEPS if s in set(steps))


def mark_saved(application, steps):
    """Note that ``steps`` were saved, keeping the form's order."""
    application.steps_saved = saved_value(saved_steps(application) | set(steps))


def next_step(step):
    """The step after ``step``: the review after the last one."""
    index = STEPS.index(step)
    return STEPS[index + 1] if index + 1 < len(STEPS) else REVIEW


def previous_step(step):
    """The step before ``step``, or None for the first."""
    if step == REVIEW:
        return STEPS[-1]
    index = STEPS.index(step)
    return STEPS[index - 1] if index else None


def resume_step(application):
    """Where to carry on: the first step not saved yet, or the review."""
    saved = saved_steps(application)
    return next((s for s in STEPS if s not in saved), REVIEW)
