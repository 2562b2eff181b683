"""The client cookie: a random token naming this browser to the sign-in limits
(``throttle``). It holds nothing about anyone and never signs anyone in: a browser that
completed a sign-in to a login is only spared that login's limit on new browsers.

Sign-in pages give a browser without one a token that ends with the browser; a complete
sign-in keeps it for ``KNOWN_CLIENT_DAYS``. HttpOnly, SameSite=Lax, Secure outside
development, like the session cookie; only keyed hashes of it are stored.
"""

from flask import current_app, g, request
from flask_babel import gettext as _
from flask_babel import ngettext

from . import bp, throttle

CLIENT_COOKIE = "hrdfund_client"
#: The pages that count attempts: a browser reaching one without a token is given one.
SIGN_IN_ENDPOINTS = frozenset({"auth.login", "auth.code", "auth.recovery", "auth.register"})


def client_token():
    """This browser's client token: the one in its cookie, or a new one it is given with
    the response."""
    token = g.get("hrdfund_client_token")
    if token is None:
        token = _cookie_token()
        if token is None:
            token = throttle.new_client_token()
            g.hrdfund_client_new = True
        g.hrdfund_client_token = token
    return token


def cookie_token():
    """This browser's client token as its cookie holds it, or None: never a new one."""
    return g.get("hrdfund_client_token") or _cookie_token()


def remember_client(token):
    """Keep ``token`` in this browser beyond the session: it completed a sign-in."""
    g.hrdfund_client_token = token
    g.hrdfund_client_known = True


def refusal(exc, invalid=None):
    """The words for a refused attempt: the wait when the login is locked for this browser,
    else ``invalid``. The same whether the login has an account or not."""
    if exc.reason == "locked":
        return ngettext(
            "Too many failed attempts. Wait %(num)d minute, then try again.",
            "Too many failed attempts. Wait %(num)d minutes, then try again.",
            exc.wait_minutes,
        )
    return invalid or _("Login name or password is not right.")


def _cookie_token():
    return throttle.valid_client_token(request.cookies.get(CLIENT_COOKIE))


@bp.after_request
def _set_client_cookie(response):
    """Give the browser its token: kept for KNOWN_CLIENT_DAYS after a complete sign-in,
    else until the browser closes, when a sign-in page or an attempt found none."""
    known = g.pop("hrdfund_client_known", False)
    new = g.pop("hrdfund_client_new", False)
    token = g.pop("hrdfund_client_token", None)
    if not (known or new):
        if request.endpoint not in SIGN_IN_ENDPOINTS or _cookie_token() is not None:
            return response
        token = throttle.new_client_token()
    cfg = current_app.config
    response.set_cookie(
        CLIENT_COOKIE,
        token,
        max_age=cfg["KNOWN_CLIENT_DAYS"] * 86400 if known else None,
        secure=cfg["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
        path="/",
    )
    return response
