"""Cases: what the applicant or partner asks for, in their words, with its documents,
consents and messages; who may see which part of it (``access``); its states."""

from flask import Blueprint

bp = Blueprint("cases", __name__)

from . import applying, before, views, withdrawal_views  # noqa: E402,F401
