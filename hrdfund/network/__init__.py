"""The network of funds in one instance: member funds and what each covers, the network's
administrator, and the public list of funds a defender or a partner applies to."""

from flask import Blueprint

bp = Blueprint("network", __name__)

from . import exchange_views, outbox_views, referral_views, support, views  # noqa: E402,F401
