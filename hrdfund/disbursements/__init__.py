"""Disbursements: payments, reversals, receipts, and the ledger's invariants."""

from flask import Blueprint

bp = Blueprint("disbursements", __name__)

from . import ledger, panels, views  # noqa: E402,F401
