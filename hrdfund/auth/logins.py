"""Login names: their normal form, the names and passphrases the server makes for sign-up,
and the seal a sign-up form carries beside the login made for it."""

import re
import secrets

from ..core.columns import cipher

#: The session's mark of an account made in it by sign-up: the account's home page says
#: its login name (the mark, not the login, is in the session).
NEW_LOGIN_KEY = "new_login"


def normalise_login(login):
    """A login as stored: trimmed, in lower case."""
    return (login or "").strip().lower()


LOGIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
#: Letters and digits that cannot be mistaken for one another when copied by hand.
SUGGESTION_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
#: The shape of the login names the server makes for sign-up: three groups of four of
#: those characters (about 59 bits). Sign-up takes no other login, and only applicant
#: accounts may have one (:func:`create_user`), so sign-up never reaches a staff, donor
#: or partner account.
MADE_LOGIN_PATTERN = re.compile(
    rf"^[{SUGGESTION_ALPHABET}]{{4}}-[{SUGGESTION_ALPHABET}]{{4}}-[{SUGGESTION_ALPHABET}]{{4}}$"
)


def _random_groups(groups, size=4):
    return "-".join(
        "".join(secrets.choice(SUGGESTION_ALPHABET) for _ in range(size)) for _ in range(groups)
    )


def suggest_passphrase():
    """A random passphrase easy to copy by hand (about 100 bits), offered at sign-up."""
    return _random_groups(5)


def make_login():
    """A random login name for a new applicant account (about 59 bits): nobody can guess
    one, so asking about one tells nothing."""
    return _random_groups(3)


def is_made_login(login):
    """Whether ``login`` has the shape of the login names the server makes for sign-up."""
    return MADE_LOGIN_PATTERN.match(normalise_login(login)) is not None


def login_seal(login):
    """What the sign-up form carries beside a login the server made for it: a keyed hash
    that only the server can compute, so the form cannot name any other login."""
    return cipher().blind_index(f"sign-up-login|{normalise_login(login)}")


def made_login(login, seal):
    """``login``, normalised, when the server made it for a sign-up form (its shape, and
    the seal the form carried with it); else None."""
    login = normalise_login(login)
    if not is_made_login(login):
        return None
    if not secrets.compare_digest((seal or "").encode(), login_seal(login).encode()):
        return None
    return login
