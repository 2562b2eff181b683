"""Applications: the applicant's and partner's cases, and the staff queue."""

from flask import Blueprint

bp = Blueprint("applications", __name__)

from . import review_views, views  # noqa: E402,F401
