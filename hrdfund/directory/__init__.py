"""The directory of providers and partners: who helps defenders where (medical and
psychosocial care, dependants' schooling and childcare, legal aid, relocation hosts and
shelters, digital security, trusted payment intermediaries), kept by member funds for
the whole network or for themselves, searched by every fund's staff."""

from flask import Blueprint

bp = Blueprint("directory", __name__, url_prefix="/directory")

from . import panels, views  # noqa: E402,F401
