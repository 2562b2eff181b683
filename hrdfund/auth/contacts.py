"""The applicant side's safe contact, as notices read it: an email address, or a channel
(Signal, a phone, "through my partner organisation") notices do not use yet."""

import re

#: An email address and nothing else: one @, a dot after it, no space, and none of the
#: characters that would make a header list several recipients or a display name.
EMAIL = re.compile(r"[^@\s,;:<>()\[\]\"\\]+@[^@\s,;:<>()\[\]\"\\]+\.[^@\s,;:<>()\[\]\"\\]+")

#: Longest address a notice goes to (RFC 5321's limit on a path).
EMAIL_MAX = 254


def email_address(contact):
    """``contact`` when it is an email address, else None."""
    contact = (contact or "").strip()
    if len(contact) <= EMAIL_MAX and EMAIL.fullmatch(contact):
        return contact
    return None
