"""The staff side of a case before the decision: the queue, assignment, conflicts of
interest, reference checks, notes, the reviewer's assessment and other funders."""

from flask import Blueprint

bp = Blueprint("reviews", __name__)

from . import queue, views  # noqa: E402,F401
