"""Grants: decisions that commit money, and allocations from donor pools."""

from flask import Blueprint

bp = Blueprint("grants", __name__)

from . import pool_rows, views  # noqa: E402,F401
