"""Pools: donors, pools with their restrictions and the one eligibility rule, contributions
and their reversal, exchange rates, and the staff pool pages."""

from flask import Blueprint

#: Everything about pools and rates lives under /pools.
bp = Blueprint("pools", __name__, url_prefix="/pools")

from . import page, views  # noqa: E402,F401
