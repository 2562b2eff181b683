"""Deny by default: every endpoint needs a signed-in user unless listed as public."""

import hmac
from functools import cache, wraps
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.orm import joinedload

from ..core.columns import utcnow
from ..core.extensions import db, login_manager
from . import language, refused
from .models import User

#: Endpoints a visitor may reach without signing in.
#: Reached before sign-in is complete; the second-step pages check the pending sign-in.
PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "auth.login",
        "auth.code",
        "auth.qr",
        "auth.reset_code",
        "auth.recovery",
        "auth.register",
        "auth.choose_language",
        "auth.invitation_link",
        "auth.invitation",
        "network.directory",
        "cases.before",
    }
)

#: Why Flask-WTF refuses a token that is well signed but older than WTF_CSRF_TIME_LIMIT,
#: and the name of the token, in the form and in the session.
CSRF_EXPIRED = "The CSRF token has expired."
CSRF_FIELD = "csrf_token"

#: How often activity moves the idle clock forward. Within this step a page sends no new
#: session cookie; a session may end up to this much before its idle timeout, never after.
SEEN_STEP_SECONDS = 60


@cache
def _account_query():
    """The account of a session, with its fund (whether it is suspended is asked at once):
    built once, as every request asks it (at first use, once every model is mapped)."""
    return sa.select(User).options(joinedload(User.fund)).where(User.id == sa.bindparam("id"))


@login_manager.user_loader
def _load_user(value):
    """Load the user of a session cookie, if its session version is still current."""
    try:
        user_id, version = (int(part) for part in value.split(":"))
    except (ValueError, AttributeError):
        return None
    user = db.session.execute(_account_query(), {"id": user_id}).scalar_one_or_none()
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


def install_guard(app):
    """Register the login requirement and the idle and absolute session timeouts."""
    login_manager.login_view = "auth.login"
    login_manager.session_protection = None  # the session version does this job
    app.register_error_handler(CSRFError, _form_too_old)

    @app.before_request
    def require_login():
        if _holds_nul():
            abort(400)
        if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        if _session_expired():
            return end_session(keep_form=request.method == "POST")
        now = int(utcnow().timestamp())
        if now - session.get("seen_at", 0) >= SEEN_STEP_SECONDS:
            session["seen_at"] = now
        return None


def end_session(keep_form=False):
    """End the session that timed out and send its person to sign in again, in the language
    the account read in, as after signing out (a defender is not sent back to English).
    With ``keep_form``, the form this request sent is kept for them (``keep_unsent``)."""
    user = current_user._get_current_object()
    reading_in = user.language if user.language in language.offered(None) else None
    reading_in = reading_in or session.get(language.SESSION_KEY)
    kept = keep_form and refused.keep_unsent(refused.UNSENT)
    logout_user()
    session.clear()
    if reading_in:
        session[language.SESSION_KEY] = reading_in
    with force_locale(reading_in or "en"):
        flash(_("Your session ended. Please sign in again."), "info")
        if kept:
            flash(
                _(
                    "What you were sending was not saved, but it is kept for %(minutes)d "
                    "minutes: sign in again in this browser to go back to it.",
                    minutes=current_app.config["UNSENT_FORM_MINUTES"],
                ),
                "info",
            )
    return redirect(url_for("auth.login"))


def _form_too_old(exc):
    """A form refused for its CSRF token. One whose token was signed for this very session
    and is only past its hours came from one of this site's pages in it: a signed-in
    person's is kept and goes back to its page filled in, or, when the session has ended
    too, waits for them to sign in again. Any other gets the error page, which says to
    open the page again."""
    if (
        exc.description == CSRF_EXPIRED
        and current_user.is_authenticated
        and _token_of_this_session()
    ):
        if _session_expired():
            return end_session(keep_form=True)
        if refused.keep_unsent(refused.TOO_OLD):
            page = refused.resume_unsent()
            if page:
                return redirect(page, 303)
    return render_template("errors/400.html", code=400, language_back="/", form_refused=True), 400


def _token_of_this_session():
    """Whether the CSRF token sent was signed for this session, checked as Flask-WTF
    checks a token within its hours (it stops at the age and checks nothing else): the
    same raw token as the session's, and over HTTPS a page of this site sending it."""
    sent = request.form.get(CSRF_FIELD)
    held = session.get(CSRF_FIELD)
    if not isinstance(sent, str) or not isinstance(held, str):
        return False
    secret = current_app.config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    try:
        raw = URLSafeTimedSerializer(secret, salt="wtf-csrf-token").loads(sent)
    except BadData:
        return False
    if not isinstance(raw, str) or not hmac.compare_digest(raw, held):
        return False
    if request.is_secure and current_app.config.get("WTF_CSRF_SSL_STRICT", True):
        referrer = urlsplit(request.referrer or "")
        return referrer.scheme == "https" and referrer.netloc == request.host
    return True


def _holds_nul():
    """A NUL character anywhere in the address or the form: no page of ours takes one, and
    PostgreSQL text cannot hold it, so the request is refused before any query."""
    if "\x00" in request.path:
        return True
    for source in (request.args, request.form):
        for key, values in source.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return True
    return False


def _session_expired():
    cfg = current_app.config
    now = utcnow().timestamp()
    idle = (
        cfg["IDLE_TIMEOUT_APPLICANT"]
        if current_user.is_applicant_side
        else cfg["IDLE_TIMEOUT_STAFF"]
    )
    seen_at = session.get("seen_at", 0)
    auth_at = session.get("auth_at", 0)
    return (
        now - seen_at > idle.total_seconds()
        or now - auth_at > cfg["ABSOLUTE_SESSION_LIFETIME"].total_seconds()
    )


def role_required(*roles):
    """Allow the view only to users with one of ``roles``; others get 403."""
    allowed = frozenset(roles)

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        # Who the view lets in, readable from the URL map (the phone-width test visits
        # each page as each of these roles).
        wrapped.roles = allowed
        return wrapped

    return decorator
