"""A refused form comes back on its page by Post/Redirect/Get, losing nothing typed.

A view that refuses a form (a mistake in it, or a rule a service refuses) answers
``refuse(form, to=url)``: 303 See Other to the page the form is on, so the browser's
address is that page's, a reload shows the page rather than sending the form again, and the
address can be opened later. What was typed and what was wrong wait on the server,
encrypted with the field cipher, for ``REFUSED_FORM_MINUTES``: the session cookie holds only
a random token (no typed text travels in a cookie or a URL), and the row is named by a keyed
hash of that token and of who sent the form (the user and the browser; before sign-in, the
browser), so another user or browser holding the token finds nothing. Passwords, codes (a
form's ``SECRET_FIELDS``), CSRF tokens and files are never kept: a file field asks for its
file again.

The page takes its form back with ``restore(form)``: the form it builds for a clean page
comes back filled in as it was sent, with its errors (a page that no longer shows that form
says its errors at the top, ``left_unshown``). Reading writes nothing: the session
forgets the token, so a reload shows the page clean, and the row simply expires. Expired
rows are deleted when a form is next refused, and by ``flask hrdfund purge``.
"""

import secrets
from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, g, redirect, request, session
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from wtforms import FieldList, FileField, FormField, PasswordField, SubmitField
from wtforms.csrf.core import CSRFTokenField
from wtforms.widgets import HiddenInput

from ..core.columns import cipher, utcnow
from ..core.crypto import DecryptionError
from ..core.extensions import db, end_read, reading, writing
from ..core.forms import FORM_MARK, REFUSED_SHOWN, form_key, secret_field_names
from .client import client_token, cookie_token
from .models import RefusedForm

#: The session's key for the token of the form waiting for its page.
SESSION_KEY = "refused"
#: Expired rows deleted by each refusal, at most: cleaning never holds a lock for long.
FORGET_BATCH = 50
#: What is kept of each value a visitor not signed in typed: the sign-in and sign-up
#: forms take nothing longer, and anyone may send them, as often as they like.
VISITOR_VALUE_MAX = 500
FILE_AGAIN = _l("Choose the file again: a form sent back for correction does not keep it.")
UNSENT = _l(
    "Your session had ended, so this form was not sent and nothing in it was saved. It is "
    "filled in again as you typed it: check it, then send it."
)
TOO_OLD = _l(
    "This form had been open for hours, so it was not sent and nothing in it was saved. It "
    "is filled in again as you typed it: check it, then send it."
)
UNSENT_UNSHOWN = _l(
    "A form of this page was not sent and nothing in it was saved: fill it in and send it again."
)


def refuse(form, to, problems=(), about=None):
    """Keep ``form`` as it was sent, with its errors, for the page at ``to`` (a URL, with
    the form's anchor), and answer 303 See Other to it. Whatever the request wrote and did
    not commit is undone first. ``problems`` are messages the page lists apart from the
    form's errors; ``about`` names the row a page's form was sent for, where a page shows
    one such form per row (a payment, a contribution)."""
    # Who may read it back, asked before the transaction's end expires the signed-in
    # account. A request that wrote nothing ends as a read does (keeping PostgreSQL's
    # prepared statements); one that wrote, or holds changes, is rolled back.
    owner = _owner()
    end_read(db.session)
    content = {
        "page": urlsplit(to).path,
        "form": form_key(form),
        "values": _typed(form),
        "errors": _errors(form),
        "form_errors": [str(e) for e in form.form_errors],
        "problems": [str(p) for p in problems],
        "about": about,
    }
    token = secrets.token_urlsafe(32)
    previous = session.pop(SESSION_KEY, None)
    _keep(
        content,
        _row_key(token, owner),
        current_app.config["REFUSED_FORM_MINUTES"],
        previous_key=_row_key(previous, owner) if isinstance(previous, str) else None,
    )
    session[SESSION_KEY] = token
    return redirect(to, 303)


def keep_unsent(message):
    """Keep the form this POST sent, though it was not taken (its session had ended, or its
    page had been open past the CSRF token's hours), for its page to show it back filled in,
    with ``message``, to the same person in this browser once signed in again
    (``resume_unsent``). Only a form that names itself (``FORM_MARK``: forms holding no
    password or code) and has something typed is kept, and only for a page a GET reaches:
    the one it was sent to, else the one the browser says it came from. An account has one
    such form kept at most: a later one replaces it. Returns whether it was kept. Called
    while the account is still signed in: it is the owner."""
    mark = request.form.get(FORM_MARK)
    page = _page_of_form()
    if not isinstance(mark, str) or len(mark) > 200 or page is None:
        return False
    # A form names itself: a password or a code is left out whatever form it claims.
    secret = secret_field_names()
    values = [
        [name, value]
        for name, value in request.form.items(multi=True)
        if name not in (FORM_MARK, "csrf_token") and name.rsplit("-", 1)[-1] not in secret
    ]
    if not any(value.strip() for _name, value in values):
        return False
    content = {
        "page": page,
        "form": mark,
        "values": values,
        "errors": {
            name: [str(FILE_AGAIN)]
            for name, sent in request.files.items(multi=True)
            if sent.filename
        },
        "form_errors": [str(message)],
        "problems": [],
        "about": _row_of_form(),
        "unsent": True,
        "browser": _browser(),
    }
    key = _unsent_key()
    end_read(db.session)
    _keep(content, key, current_app.config["UNSENT_FORM_MINUTES"], previous_key=key)
    return True


def _row_of_form():
    """The row a form shown on each row of a page was sent for (a payment to reverse, a
    held payment to confirm): the ``uid`` of the address it was sent to, as the view would
    name it when refusing it; None for a form sent to an address that names no row."""
    uid = (request.view_args or {}).get("uid")
    return uid if isinstance(uid, str) and len(uid) <= 64 else None


def resume_unsent():
    """The page of the form ``keep_unsent`` kept for the signed-in account, when it was sent
    from this browser and is still kept, else None. It becomes the form refused a moment ago
    for that page, this session's, as ``refuse`` leaves one."""
    key = _unsent_key()
    content = _content(key)
    if content is None or content.pop("browser", None) != _browser():
        return None
    token = secrets.token_urlsafe(32)
    owner = _owner()
    end_read(db.session)
    _keep(
        content,
        _row_key(token, owner),
        current_app.config["REFUSED_FORM_MINUTES"],
        previous_key=key,
    )
    session[SESSION_KEY] = token
    return content["page"]


def _unsent_key():
    """The key of the one form kept for the signed-in account (``keep_unsent``)."""
    return cipher().blind_index(f"unsent-form|user:{current_user.get_id()}")


def _browser():
    """This browser, as a form kept by ``keep_unsent`` names it: a keyed hash of its client
    token."""
    return cipher().blind_index(f"unsent-browser|{cookie_token() or ''}")


def _keep(content, key, minutes, previous_key=None):
    """Store ``content`` under ``key`` for ``minutes``, in place of the row at
    ``previous_key`` (a form refused before in the session, or kept before)."""
    now = utcnow()
    # What was typed is encrypted before the transaction that stores it begins: it holds
    # the write lock for a delete and an insert only.
    with reading():
        row = RefusedForm(key=key, expires_at=now + timedelta(minutes=minutes))
        row.content = content
    try:
        with writing():
            _forget(now, previous_key)
            db.session.add(row)
    except sa.exc.IntegrityError:
        # A form kept in its place by another request at the same moment (the same form
        # sent twice, with a double click, after the session ended): that one stands.
        db.session.rollback()
        if key != previous_key:
            raise


def _page_of_form():
    """The page a form sent by POST was on, as a path of this site that a GET shows: the
    address it was sent to, else the page the browser says sent it (same site only)."""
    candidates = [request.script_root + request.path]
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.scheme == request.scheme:
        candidates.append(referrer.path)
    adapter = current_app.url_map.bind(request.host, script_name=request.script_root or None)
    root = request.script_root
    for path in candidates:
        if root and not path.startswith(root + "/"):
            continue
        try:
            endpoint, _args = adapter.match(path[len(root) :], method="GET")
        except (HTTPException, RequestRedirect):
            continue
        if endpoint != "static":
            return path
    return None


def restore(form, rows=None):
    """``form``, built as for a clean page, filled in as it was sent and with its errors
    when it is the form refused a moment ago for this page (``form.refused`` then says
    so); else ``form`` as it is. Where a page shows the form on some of its rows, ``rows``
    names them: a form refused for another row is not taken (the page says its errors at
    the top)."""
    waiting = _waiting()
    if waiting is None or waiting["form"] != form_key(form):
        return form
    if rows is not None and waiting["about"] not in rows:
        return form
    form.process(formdata=MultiDict([(name, value) for name, value in waiting["values"]]))
    fields = {field.name: field for field in _fields(form)}
    stray = []
    for name, messages in waiting["errors"].items():
        field = fields.get(name)
        if field is None or isinstance(field, FormField) or isinstance(field.widget, HiddenInput):
            stray.extend(messages)  # no place beside a field: said above the form
        else:
            field.errors = list(messages)
    form.form_errors = [*waiting["form_errors"], *stray]
    form.problems = list(waiting["problems"])
    form.about = waiting["about"]
    form.refused = True
    return form


def left_unshown():
    """The messages of the form refused for this page when the page did not render that
    form (the case moved on, or the form is not one this user is offered), so that no
    refusal goes unsaid; base.html shows them at the top, once the page's content is
    rendered."""
    waiting = _waiting()
    if waiting is None or g.get(REFUSED_SHOWN):
        return []
    if waiting.get("unsent"):
        return [str(UNSENT_UNSHOWN)]
    fields = (m for messages in waiting["errors"].values() for m in messages)
    return [*waiting["form_errors"], *waiting["problems"], *fields]


def forget_expired(now=None):
    """Delete every refused form past its time; returns how many there were."""
    result = db.session.execute(
        sa.delete(RefusedForm).where(RefusedForm.expires_at <= (now or utcnow()))
    )
    return result.rowcount


def count_expired(now=None):
    """How many refused forms are past their time."""
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(RefusedForm)
        .where(RefusedForm.expires_at <= (now or utcnow()))
    )


def _owner():
    """Who may read a refused form back: the user and this browser; before sign-in, this
    browser (its client token, given by the sign-in pages)."""
    if current_user.is_authenticated:
        return f"user:{current_user.get_id()}|{cookie_token() or ''}"
    return f"visitor|{client_token()}"


def _row_key(token, owner=None):
    return cipher().blind_index(f"refused-form|{owner or _owner()}|{token}")


def _forget(now, previous_key):
    """Delete a few expired rows, and the session's previous refused form (its row's key)."""
    expired = (
        sa.select(RefusedForm.id)
        .where(RefusedForm.expires_at <= now)
        .order_by(RefusedForm.expires_at)
        .limit(FORGET_BATCH)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        expired = expired.with_for_update(skip_locked=True)
    condition = RefusedForm.id.in_(expired)
    if previous_key is not None:
        condition = sa.or_(condition, RefusedForm.key == previous_key)
    db.session.execute(sa.delete(RefusedForm).where(condition))


def _waiting():
    """The refused form waiting for this page, read once per request; the session forgets
    its token when it is this page's (or is gone). Only a GET reads it."""
    if "hrdfund_refused" in g:
        return g.hrdfund_refused
    found = None
    token = session.get(SESSION_KEY)
    if request.method == "GET" and isinstance(token, str):
        content = _content(_row_key(token))
        if content is None:
            session.pop(SESSION_KEY, None)
        elif content["page"] == request.script_root + request.path:
            session.pop(SESSION_KEY, None)
            found = content
    g.hrdfund_refused = found
    return found


def _content(key):
    """What the form kept at ``key`` holds, or None when nothing is (no such row, expired,
    or no longer readable)."""
    row = db.session.execute(
        sa.select(RefusedForm).where(RefusedForm.key == key, RefusedForm.expires_at > utcnow())
    ).scalar_one_or_none()
    try:
        return row.content if row is not None else None
    except DecryptionError:
        return None


def _fields(form):
    """Every field of ``form``, with the lines of its lists and the fields of its parts."""
    for field in form:
        yield from _walk(field)


def _walk(field):
    yield field
    if isinstance(field, FormField):
        for sub in field.form:
            yield from _walk(sub)
    elif isinstance(field, FieldList):
        for entry in field.entries:
            yield from _walk(entry)


def _never_kept(form, field):
    return isinstance(
        field, (CSRFTokenField, PasswordField, FileField, SubmitField, FormField, FieldList)
    ) or field.short_name in getattr(form, "SECRET_FIELDS", ())


def _typed(form):
    """What was typed into each field, as (name, value) pairs, but for what is never kept
    (and, from a visitor not signed in, no more of a value than those forms take)."""
    longest = None if current_user.is_authenticated else VISITOR_VALUE_MAX
    return [
        [field.name, value[:longest]]
        for field in _fields(form)
        if not _never_kept(form, field)
        for value in field.raw_data or ()
        if isinstance(value, str)
    ]


def _errors(form):
    """Each field's errors by its full name; a file field that had a file asks for it
    again."""
    found = {}
    for field in _fields(form):
        if isinstance(field, FormField):
            continue
        if isinstance(field, FieldList):
            # The list's own errors; its lines' errors are their fields'.
            messages = [e for e in field.errors if not isinstance(e, list | dict)]
        else:
            messages = list(field.errors)
        if isinstance(field, FileField) and not messages:
            if any(getattr(sent, "filename", None) for sent in field.raw_data or ()):
                messages = [FILE_AGAIN]
        if messages:
            found[field.name] = [str(e) for e in messages]
    return found
