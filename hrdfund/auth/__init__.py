"""Users, roles, login with a second factor, sessions and the deny-by-default guard."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import account_views, client, invitation_views, views  # noqa: E402,F401
