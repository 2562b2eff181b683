"""Pools: donors, pools with their restrictions and the one eligibility rule, contributions
and their reversal, exchange rates, and the staff pool pages."""

from flask import Blueprint

bp = Blueprint("pools", __name__)

from . import page, views  # noqa: E402,F401
