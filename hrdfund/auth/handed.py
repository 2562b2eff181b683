"""Codes a person is handed by someone of their fund, in person or by a message app with
end-to-end encryption, apart from the link or the password they already have: the code a
manager gives with an invitation, and the one an administrator gives when a lost
authenticator is reset. Only a keyed hash of each is kept; the code is shown once."""

import secrets

from ..core.digits import ascii_digits

#: The letters of a code: none two people could read as each other.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 10


def new_code():
    """A fresh code of ``LENGTH`` letters of ``ALPHABET`` (about 49 bits)."""
    return "".join(secrets.choice(ALPHABET) for _n in range(LENGTH))


def normalise(code):
    """A code as typed, read as written: any case, spaces and dashes ignored, digits of
    any script read as 0 to 9."""
    return "".join(ch for ch in ascii_digits(code).upper() if ch not in " -")[: 2 * LENGTH]


def shown(code):
    """A code in two groups of five, as it is read out."""
    return f"{code[:5]}-{code[5:]}"
