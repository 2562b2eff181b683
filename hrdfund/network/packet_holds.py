"""A packet checked for its preview waits here, encrypted under the instance's key and
bound to the account that checked it, until that account confirms the import (or for
``HOLD_MINUTES``): no personal data in a URL, a cookie or a file name."""

import os
import secrets
import time

from flask import current_app

from ..core.columns import cipher

#: How long a checked packet waits, encrypted, for its importer to confirm the preview.
HOLD_MINUTES = 30


def _holds():
    path = os.path.join(current_app.instance_path, "packet_holds")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _hold_aad(user, token):
    return f"packet-hold\x1f{user.uid}\x1f{token}".encode()


def hold_packet(data, user):
    """Keep ``data``, encrypted under the instance's key and bound to ``user``, while they
    read its preview; returns the random token that names it (no personal data)."""
    folder = _holds()
    now = time.time()
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        try:
            if now - os.path.getmtime(path) > HOLD_MINUTES * 60:
                os.unlink(path)
        except FileNotFoundError:
            pass
    token = secrets.token_hex(16)
    fd = os.open(os.path.join(folder, token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(cipher().encrypt_bytes(bytes(data), _hold_aad(user, token)))
    return token


def held_packet(token, user):
    """The packet ``user`` holds under ``token``, or None (expired, another user's, gone)."""
    if not isinstance(token, str) or len(token) != 32 or not token.isalnum():
        return None
    path = os.path.join(_holds(), token)
    try:
        if time.time() - os.path.getmtime(path) > HOLD_MINUTES * 60:
            os.unlink(path)
            return None
        with open(path, "rb") as fh:
            blob = fh.read()
    except FileNotFoundError:
        return None
    try:
        return cipher().decrypt_bytes(blob, _hold_aad(user, token))
    except ValueError:
        return None


def drop_hold(token):
    if isinstance(token, str) and len(token) == 32 and token.isalnum():
        try:
            os.unlink(os.path.join(_holds(), token))
        except FileNotFoundError:
            pass
