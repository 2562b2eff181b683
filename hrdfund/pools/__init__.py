"""Pools: donors, pools with their restrictions, contributions and exchange rates."""

from flask import Blueprint

bp = Blueprint("pools", __name__)

from . import views  # noqa: E402,F401
