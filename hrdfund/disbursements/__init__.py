"""Disbursements: recording and reversing payments, receipts, statements and follow-up."""

from flask import Blueprint

bp = Blueprint("disbursements", __name__)

from . import panels, views  # noqa: E402,F401
