"""Addresses that moved, each answering with a redirect to where the page lives now, so a
bookmark, a link in an email or a form left open in another tab still works.

A GET (or HEAD) gets 301 Moved Permanently with its query string kept; any other method
gets 308 Permanent Redirect, which keeps the method and the body, so a form sent to the
old address is sent again, CSRF token and all, to the new one. An old address asks for
sign-in first, like every page; the new one then checks the role and the fund as before.
"""

import re
from typing import NamedTuple
from urllib.parse import quote

from flask import redirect, request


class Moved(NamedTuple):
    """An old URL rule, the path it moved to (with the same ``<variables>``) and the
    methods it answered."""

    old: str
    new: str
    methods: tuple

    @property
    def endpoint(self):
        return f"moved:{self.old}"


#: Every address that moved, and where it went.
MOVED = (
    Moved("/rates", "/pools/rates", ("GET", "POST")),
    Moved("/rates/<uid>/confirm", "/pools/rates/<uid>/confirm", ("POST",)),
    Moved("/rates/<uid>/refuse", "/pools/rates/<uid>/refuse", ("POST",)),
    Moved("/pools/<uid>/report", "/reports/pools/<uid>", ("GET",)),
    Moved("/follow-up", "/payments/follow-up", ("GET",)),
)

_VARIABLE = re.compile(r"<([a-z_]+)>")


def _redirect_to(new):
    def view(**values):
        path = _VARIABLE.sub(lambda m: quote(values[m[1]], safe=""), new)
        if request.query_string:
            path = f"{path}?{request.query_string.decode('latin-1')}"
        return redirect(path, 301 if request.method in ("GET", "HEAD") else 308)

    return view


def register_moved(app):
    """Answer every old address in :data:`MOVED` with its redirect."""
    for moved in MOVED:
        app.add_url_rule(
            moved.old,
            endpoint=moved.endpoint,
            view_func=_redirect_to(moved.new),
            methods=list(moved.methods),
        )
