"""The stylesheet's address names its version, so a browser keeps it until it changes.

Without a lifetime, a browser asks again for the stylesheet at every page it loads (and
is answered "not modified"): a second round trip per page, on Tor one more trip through
three relays, and a second request for the server in a crisis wave. Every address the app
gives a static file carries ``v``, the start of the SHA-256 of the file's content; an
answer to an address naming the file's current version may be kept a year unasked
(``immutable``), and a new release's pages name the new version. An address without the
version, or with another, is answered as before, to be asked again each time.
"""

import functools
import hashlib
import os
import stat

from flask import request
from werkzeug.security import safe_join

#: How long a browser keeps a static file whose address names its current version.
KEPT_SECONDS = 365 * 24 * 3600


@functools.cache
def _digest(path, modified_ns, size):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


def version_of(app, filename):
    """The version of the static file ``filename`` as it is now; None when there is none.
    Worked out again only when the file's time or size changed."""
    path = safe_join(app.static_folder, filename) if app.static_folder else None
    if path is None:
        return None
    try:
        found = os.stat(path)
        if not stat.S_ISREG(found.st_mode):
            return None
        return _digest(path, found.st_mtime_ns, found.st_size)
    except OSError:
        # Unreadable, or gone between the look and the read (a release being put in
        # place): the address without a version, asked again each time, and the page
        # still shown.
        return None


def install_static_versions(app):
    """Add the version to every address of a static file, and let a browser keep the file
    answered at an address naming its current version."""

    @app.url_defaults
    def _versioned(endpoint, values):
        if endpoint == "static" and "v" not in values:
            version = version_of(app, values.get("filename", ""))
            if version is not None:
                values["v"] = version

    @app.after_request
    def _kept(response):
        if (
            request.endpoint == "static"
            and response.status_code in (200, 304)
            and request.args.get("v") is not None
            and request.args.get("v") == version_of(app, request.view_args.get("filename", ""))
        ):
            response.headers["Cache-Control"] = f"max-age={KEPT_SECONDS}, immutable"
        return response
