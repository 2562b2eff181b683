"""Response and decision targets per category and urgency, and the clock that pauses while
a case waits for the applicant."""

import json
from datetime import timedelta

from flask import current_app

from ..core.support import Category
from .models import Urgency


class TargetConfigError(ValueError):
    """HRDFUND_TARGETS_BY_CATEGORY is not what the README describes."""


def _overrides(config):
    try:
        raw = json.loads(config["TARGETS_BY_CATEGORY"] or "{}")
    except ValueError as exc:
        raise TargetConfigError("HRDFUND_TARGETS_BY_CATEGORY is not valid JSON") from exc
    if not isinstance(raw, dict):
        raise TargetConfigError("HRDFUND_TARGETS_BY_CATEGORY maps categories to targets")
    return raw


def check_config(config):
    """Refuse a malformed target table at start-up rather than on the first case."""
    for category, by_urgency in _overrides(config).items():
        if category not in {c.value for c in Category} or not isinstance(by_urgency, dict):
            raise TargetConfigError(f"unknown category in targets: {category!r}")
        for urgency, hours in by_urgency.items():
            if urgency not in {u.value for u in Urgency}:
                raise TargetConfigError(f"unknown urgency in targets: {urgency!r}")
            if (
                not isinstance(hours, list)
                or len(hours) != 2
                or not all(isinstance(h, int) and h > 0 for h in hours)
            ):
                raise TargetConfigError("each target is [response hours, decision hours]")


def target_hours(category, urgency, config=None, fund=None):
    """(response hours, decision hours) for a case of this category and urgency: the
    fund's own targets where it sets them, else the environment's table by category, else
    the environment's targets."""
    config = config or current_app.config
    urgency = Urgency(urgency)
    kind = "URGENT" if urgency == Urgency.URGENT else "NORMAL"
    if fund is not None:
        own = (
            getattr(fund, f"target_response_hours_{kind.lower()}"),
            getattr(fund, f"target_decision_hours_{kind.lower()}"),
        )
        if None not in own:
            return own
    override = _overrides(config).get(str(category), {}).get(urgency.value)
    if override:
        return tuple(override)
    return (
        config[f"TARGET_RESPONSE_HOURS_{kind}"],
        config[f"TARGET_DECISION_HOURS_{kind}"],
    )


def set_targets(application, submitted_at):
    """Start the case's clocks at submission."""
    response, decision = target_hours(
        application.category, application.urgency, fund=getattr(application, "fund", None)
    )
    application.response_due_at = submitted_at + timedelta(hours=response)
    application.decision_due_at = submitted_at + timedelta(hours=decision)


def pause(application, at):
    """The case waits for the applicant: targets stop counting."""
    if application.clock_paused_at is None:
        application.clock_paused_at = at


def resume(application, at):
    """The applicant answered: targets move back by the time the case waited."""
    if application.clock_paused_at is None:
        return
    waited = max(at - application.clock_paused_at, timedelta(0))
    if application.first_response_at is None and application.response_due_at:
        application.response_due_at += waited
    if application.decision_due_at:
        application.decision_due_at += waited
    application.clock_paused_at = None


def next_target(row, now):
    """("response" or "decision", hours left, paused) for a case's next target, or None.
    ``row`` has the timestamp columns of an application (a model or a query row)."""
    if row.submitted_at is None or row.decision_due_at is None:
        return None
    if row.first_response_at is None and row.response_due_at is not None:
        what, due = "response", row.response_due_at
    else:
        what, due = "decision", row.decision_due_at
    reference = row.clock_paused_at or now
    return what, (due - reference).total_seconds() / 3600, row.clock_paused_at is not None
