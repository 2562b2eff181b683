"""Donor portal and reports: they read, but for keeping what reports issue about people
(``IssuedFigures``), and never reveal a defender."""

from flask import Blueprint

bp = Blueprint("reports", __name__)

from . import case_page, dashboard, export_views, network_views, search_views, views  # noqa: E402,F401
