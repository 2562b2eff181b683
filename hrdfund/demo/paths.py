"""Cases and their paths: the steps a case went through to reach its status, when each
happened, who made it, and the targets counted from submission."""

from datetime import timedelta
from types import SimpleNamespace

from ..cases import targets
from ..cases.models import ApplicationStatus as S
from ..cases.services import stamp_times
from ..cases.states import OPEN_STATES, check_transition

#: How far back the demo world goes: about two and a half years.
HISTORY_DAYS = 913
#: Open cases someone on the staff side has started on.
OPEN = OPEN_STATES - {S.DRAFT, S.SUBMITTED}


def steps_to(world, status, four_eyes):
    """The steps a case now in ``status`` went through, in order."""
    rng = world.rng
    if status == S.DRAFT:
        return []
    if status == S.WITHDRAWN:
        return rng.choice(
            (
                [S.WITHDRAWN],
                [S.SUBMITTED, S.WITHDRAWN],
                [S.SUBMITTED, S.IN_REVIEW, S.WITHDRAWN],
            )
        )
    if status == S.SUBMITTED:
        return [S.SUBMITTED]
    path = [S.SUBMITTED, S.IN_REVIEW]
    if rng.random() < 0.2:
        path += [S.INFO_REQUESTED, S.IN_REVIEW]
    if status in (S.IN_REVIEW, S.INFO_REQUESTED):
        return path + ([S.INFO_REQUESTED] if status == S.INFO_REQUESTED else [])
    path.append(S.RECOMMENDED)
    if status in (S.RECOMMENDED, S.REJECTED):
        return path + ([S.REJECTED] if status == S.REJECTED else [])
    if status == S.AWAITING_SECOND_APPROVAL or four_eyes:
        path.append(S.AWAITING_SECOND_APPROVAL)
    return path + ([] if status == S.AWAITING_SECOND_APPROVAL else [S.APPROVED])


def step_gap(world, step, previous, urgent):
    """Hours a step took after the one before it."""
    if step == S.IN_REVIEW and previous == S.INFO_REQUESTED:
        return world.hours(3, 120)
    low, high = {
        S.SUBMITTED: (0.2, 72),
        S.IN_REVIEW: (0.3, 20) if urgent else (2, 90),
        S.INFO_REQUESTED: (2, 72),
        S.RECOMMENDED: (4, 40) if urgent else (24, 240),
        S.AWAITING_SECOND_APPROVAL: (1, 24),
        S.APPROVED: (1, 24) if urgent else (4, 96),
        S.REJECTED: (2, 96),
        S.WITHDRAWN: (1, 240),
    }[step]
    return world.hours(low, high)


def timeline(world, status, urgent, four_eyes, plan):
    """Creation and step times: strictly increasing, all in the past, within the
    history window, and leaving room for a funded case's payments."""
    rng = world.rng
    day = timedelta(days=1)
    if status == S.DRAFT:
        created = world.now - world.hours(1, 24 * 150)
        last = created + (world.now - created) * rng.uniform(0.05, 0.5)
        return {"created": created, "steps": [], "last": last.replace(microsecond=0)}
    path = steps_to(world, status, four_eyes)
    gaps, previous = [], S.DRAFT
    for step in path:
        gaps.append(step_gap(world, step, previous, urgent))
        previous = step
    if status == S.SUBMITTED:
        end = world.now - world.hours(0.2, 40)
    elif status in OPEN:
        end = world.now - world.hours(0.5, 24 * 12)
    elif status == S.APPROVED:
        end = world.now - world.hours(3, 24 * 6)
    elif status == S.PAYING:
        end = world.now - day * rng.uniform(5, max(6, plan["days"]))
    elif status == S.COMPLETED:
        end = world.now - day * rng.uniform(plan["days"] + 30, HISTORY_DAYS - 35)
    else:
        end = world.now - day * rng.uniform(1, HISTORY_DAYS - 35)
    at = created = end - sum(gaps, start=timedelta(0))
    times = {"created": created, "steps": []}
    previous = S.DRAFT
    for step, gap in zip(path, gaps, strict=True):
        at += gap
        # The first time wins, as in the service: an answered question re-enters review.
        times.setdefault(step, at)
        times["steps"].append((previous, step, at))
        previous = step
    times["last"] = at
    return times


def history(world, app_id, times, owner):
    """Status steps with who made each; payment steps are added once money moved."""
    steps = [(None, S.DRAFT, owner, times["created"])]
    for previous, step, at in times["steps"]:
        if step in (S.SUBMITTED, S.WITHDRAWN) or previous == S.INFO_REQUESTED:
            actor = owner
        elif step in (S.IN_REVIEW, S.INFO_REQUESTED, S.RECOMMENDED):
            actor = world.reviewer
        elif step == S.AWAITING_SECOND_APPROVAL:
            actor = world.managers[0]
        elif step == S.APPROVED and S.AWAITING_SECOND_APPROVAL in times:
            actor = world.managers[1]
        else:
            actor = world.managers[app_id % 2]
        steps.append((previous, step, actor, at))
    return steps


def case_targets(category, urgency, submitted):
    """The response and decision targets the case's clocks started with at submission
    (none for a draft)."""
    clocks = SimpleNamespace(
        category=category, urgency=urgency, response_due_at=None, decision_due_at=None
    )
    if submitted is not None:
        targets.set_targets(clocks, submitted)
    return {"response_due_at": clocks.response_due_at, "decision_due_at": clocks.decision_due_at}


def stamps(world, steps):
    """The case's submission, first response, decision and closing times, stamped from its
    recorded steps as the status service stamps them; every step must be a move the table
    of allowed moves allows."""
    stamped = SimpleNamespace(
        submitted_at=None, first_response_at=None, decided_at=None, closed_at=None
    )
    for previous, step, actor, at in steps[1:]:
        check_transition(previous, step)
        stamp_times(stamped, previous, step, at, actor in world.staff)
    return vars(stamped)
