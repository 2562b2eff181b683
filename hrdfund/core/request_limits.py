"""How much a request may make the server read and parse, decided before anything reads
its body.

Werkzeug bounds the parts of a multipart form but reads a URL-encoded form whole and splits
every field of it, so an 8 MB form of 800,000 empty fields cost seconds of CPU before any
view refused it. Here every form, of either encoding, has a bound on its bytes and on its
fields, chosen by who sends it and where: a visitor not signed in reaches only the sign-in,
code, recovery and sign-up forms and sends a few small fields; a signed-in form takes a few
dozen; the application form and the uploads take more. Past a bound the answer is 413 with
the app's own error page.
"""

from urllib.parse import parse_qsl

from flask import Request, abort, current_app, request, session
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

#: Where Flask-Login keeps the signed-in user's id in the session.
SESSION_USER_KEY = "_user_id"
#: Routes that take a file: the whole body may be as large as MAX_CONTENT_LENGTH.
UPLOADS = frozenset(
    {
        "cases.upload",
        "case_payments.record",
        "disbursements.add_proof",
        "disbursements.import_statement",
        "directory.import_entries",
    }
)
#: A packet from a partner fund on another server, documents included.
PACKETS = frozenset({"network.import_packet"})
#: The application form, with its budget, dependants and references rows.
APPLICATION_FORMS = frozenset({"cases.edit"})


class _BoundedFormDataParser(FormDataParser):
    """Werkzeug's parser, with the bound on parts applied to URL-encoded fields too."""

    def _parse_urlencoded(self, stream, mimetype, content_length, options):
        body = stream.read()
        # Counted before anything is split: a form with too many fields costs one pass.
        if self.max_form_parts is not None and body and body.count(b"&") >= self.max_form_parts:
            raise RequestEntityTooLarge()
        items = parse_qsl(body.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
        return stream, self.cls(items), self.cls()


class BoundedRequest(Request):
    """The app's request: forms of either encoding are bounded in fields."""

    form_data_parser_class = _BoundedFormDataParser


def limits_for(endpoint, signed_in, config):
    """The (bytes, fields) a request to ``endpoint`` may send."""
    if not signed_in:
        return config["MAX_ANONYMOUS_REQUEST_BYTES"], config["MAX_ANONYMOUS_FORM_PARTS"]
    if endpoint in UPLOADS:
        return config["MAX_CONTENT_LENGTH"], config["MAX_FORM_PARTS"]
    if endpoint in PACKETS:
        return config["HRDFUND_MAX_PACKET_BYTES"] + 64 * 1024, config["MAX_FORM_PARTS"]
    if endpoint in APPLICATION_FORMS:
        return config["MAX_APPLICATION_FORM_BYTES"], config["MAX_APPLICATION_FORM_PARTS"]
    return config["MAX_FORM_BYTES"], config["MAX_FORM_PARTS"]


def bound_request():
    """Set this request's bounds, and refuse at once a body announced as larger.

    Signed in means a session cookie naming a user: reading it takes no query, so no
    transaction is open (and on SQLite no write lock held) while a body arrives. A cookie
    whose session has ended still gets only what any account may send, and is turned
    away by the guard."""
    signed_in = session.get(SESSION_USER_KEY) is not None
    max_bytes, max_parts = limits_for(request.endpoint, signed_in, current_app.config)
    # A body sent without its length (chunked) is cut off at the bound while it is read.
    request.max_content_length = max_bytes
    request.max_form_parts = max_parts
    if request.content_length is not None and request.content_length > max_bytes:
        abort(413)


def install_request_limits(app):
    """Bound every request; runs before any other hook, so before anything reads a form
    (the CSRF check and the sign-in guard both do)."""
    app.request_class = BoundedRequest
    app.before_request_funcs.setdefault(None, []).insert(0, bound_request)
