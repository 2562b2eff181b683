"""Which language a page speaks. The applicant side (and the sign-in pages everyone sees
first) speaks every language of ``LANGUAGES``; staff and donor pages those of
``STAFF_LANGUAGES``. A choice made on any page is kept for the browser (in the signed
session) and, once signed in, for the account (``User.language``); without one, the
browser's preference among the languages offered decides."""

from flask import current_app, has_request_context, request, session
from flask_login import current_user

from ..core.extensions import db
from .models import Role

#: Each language by its own name, as a reader of it looks for it in a list.
NAMES = {
    "en": "English",
    "ar": "العربية",
    "ru": "Русский",
    "fr": "Français",
    "es": "Español",
    "fa": "فارسی",
    "pt": "Português",
    "zh": "中文（简体）",
    "tr": "Türkçe",
}
#: Written right to left.
RIGHT_TO_LEFT = frozenset({"ar", "fa"})
#: The session's key for a choice made before signing in.
SESSION_KEY = "language"
#: Who reads the applicant side.
APPLICANT_SIDE = (Role.APPLICANT, Role.PARTNER)


def offered(user):
    """The languages ``user``'s pages speak: all of them for the applicant side and for
    someone not signed in yet; English, French and Spanish for staff and donors."""
    config = current_app.config
    if getattr(user, "is_authenticated", False) and user.role not in APPLICANT_SIDE:
        return list(config["STAFF_LANGUAGES"])
    return list(config["LANGUAGES"])


def select_locale():
    """The language of this request: the account's, else the browser's choice on a page,
    else its preference among those offered; English when nothing matches."""
    if not has_request_context():
        return None  # a command: the default locale
    languages = offered(current_user)
    if getattr(current_user, "is_authenticated", False) and current_user.language in languages:
        return current_user.language
    if session.get(SESSION_KEY) in languages:
        return session[SESSION_KEY]
    return request.accept_languages.best_match(languages) or "en"


def set_language(user, code):
    """Keep ``code`` as ``user``'s language; refuses (ValueError) one their pages do not
    speak."""
    if code not in offered(user):
        raise ValueError(code)
    if user.language != code:
        user.language = code
        db.session.flush()
    return user
