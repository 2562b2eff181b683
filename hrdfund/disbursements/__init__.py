"""Disbursements: recording and reversing payments, receipts, statements and follow-up."""

from flask import Blueprint

#: Payments live under /payments; a case's own payment steps stay under the case's address
#: (a case owns /applications/<uid>/...), on a second blueprint without a prefix.
bp = Blueprint("disbursements", __name__, url_prefix="/payments")
case_bp = Blueprint("case_payments", __name__)

from . import (  # noqa: E402,F401
    case_views,
    due_views,
    panels,
    pool_rows,
    problem_views,
    receipt_views,
    views,
)
