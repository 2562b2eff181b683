"""hrdfund: grants and emergency funds for human rights defenders at risk."""

import json
import logging
import os
import sqlite3
import traceback

import sqlalchemy as sa
from babel.lists import format_list
from flask import (
    Flask,
    before_render_template,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_babel.speaklater import LazyString
from flask_login import current_user
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from config import CONFIGS

from .auth.language import NAMES as LANGUAGE_NAMES
from .auth.language import RIGHT_TO_LEFT, offered, select_locale
from .cases.states import CaseMoved
from .cases.targets import check_config as check_target_config
from .core import crypto, geo, limits, quick_exit, times
from .core.extensions import (
    READ_METHODS,
    babel,
    csrf,
    db,
    end_read,
    has_unsaved,
    has_written,
    in_reading_mode,
    login_manager,
    migrate,
    note_write,
    read_by_default,
    restore_mode,
    sqlite_begin_statement,
)
from .core.request_limits import install_request_limits
from .core.static import install_static_versions
from .core.work import READS_FIRST

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_NAMES = ("SECRET_KEY", "HRDFUND_ENCRYPTION_KEY", "HRDFUND_AUDIT_KEY")
log = logging.getLogger("hrdfund")


def create_app(overrides=None):
    """Build the application: config, extensions, blueprints, CLI, filters, handlers."""
    instance_path = (overrides or {}).get("INSTANCE_PATH") or os.environ.get(
        "HRDFUND_INSTANCE_PATH", os.path.join(ROOT, "instance")
    )
    app = Flask(
        __name__,
        template_folder=os.path.join(ROOT, "templates"),
        instance_path=os.path.abspath(instance_path),
    )
    _configure(app, overrides or {})
    _install_transaction_modes(app)
    install_request_limits(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    _escape_lazy_strings()
    login_manager.init_app(app)
    app.after_request(_security_headers)
    install_static_versions(app)
    _assemble(app)
    app.register_error_handler(HTTPException, _http_error)
    # A row the request read and would write was deleted by another meanwhile: read again
    # (ObjectDeletedError, on SQLite) or updated as it was read (StaleDataError).
    for gone in (sa.orm.exc.ObjectDeletedError, sa.orm.exc.StaleDataError):
        app.register_error_handler(gone, _gone_meanwhile)
    app.register_error_handler(CaseMoved, _case_moved)
    app.register_error_handler(Exception, _server_error)
    return app


def _configure(app, overrides):
    """The settings of the environment named, refused at once when they cannot work."""
    env_name = overrides.get("ENV_NAME") or os.environ.get("HRDFUND_ENV", "production")
    if env_name not in CONFIGS:
        raise RuntimeError(f"HRDFUND_ENV must be one of {', '.join(CONFIGS)}")
    app.config.from_object(CONFIGS[env_name])
    app.config.update(overrides)
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    if app.config["ENV_NAME"] == "development":
        _load_development_secrets(app)
        app.config["SQLALCHEMY_DATABASE_URI"] = app.config["SQLALCHEMY_DATABASE_URI"] or (
            "sqlite:///" + os.path.join(app.instance_path, "hrdfund.sqlite3")
        )
    _check_secrets(app)
    check_target_config(app.config)
    limits.check_config(app.config)
    quick_exit.check_config(app.config)
    from .auth.budget import check_config as check_password_budget
    from .auth.invitations import check_config as check_invitations
    from .auth.throttle import check_config as check_sign_in_limits
    from .cases.documents import check_config as check_document_storage

    check_sign_in_limits(app.config)
    check_document_storage(app.config)
    check_password_budget(app.config)
    check_invitations(app.config)
    _configure_logging(app)
    _prepare_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])


def _assemble(app):
    """The features, imported once the app exists: every table, the blueprints, the
    commands, the guard, the template filters and the alerts sent after a response."""
    from . import models  # noqa: F401  (registers every table on the metadata)
    from .auth import bp as auth_bp
    from .auth import refused
    from .auth.guard import install_guard
    from .cases import bp as cases_bp
    from .cases.alerts import send_after_response
    from .cli import hrdfund_cli
    from .core.money import format_money, rate_figure
    from .core.moved import register_moved
    from .core.support import CATEGORY_LABELS
    from .directory import bp as directory_bp
    from .disbursements import bp as disbursements_bp
    from .disbursements import case_bp as case_payments_bp
    from .grants import bp as grants_bp
    from .network import bp as network_bp
    from .pools import bp as pools_bp
    from .reports import bp as reports_bp
    from .reviews import bp as reviews_bp

    for blueprint in (
        auth_bp,
        pools_bp,
        cases_bp,
        reviews_bp,
        grants_bp,
        disbursements_bp,
        case_payments_bp,
        reports_bp,
        network_bp,
        directory_bp,
    ):
        app.register_blueprint(blueprint)
    register_moved(app)
    app.cli.add_command(hrdfund_cli)
    install_guard(app)

    # The reader's Locale as it is: a language code would be parsed again for each amount.
    app.jinja_env.filters["money"] = lambda amount, code: format_money(
        amount, code, locale=get_locale() or "en"
    )
    app.jinja_env.filters["rate"] = rate_figure
    app.jinja_env.filters["country"] = lambda code: geo.country_name(
        code, str(get_locale() or "en")
    )
    app.jinja_env.filters["region"] = geo.region_label
    # A list of words as the reader's language joins one: Kenya, Tanzania and Uganda;
    # 肯尼亚、坦桑尼亚和乌干达; کنیا، تانزانیا و اوگاندا.
    app.jinja_env.filters["words"] = lambda items: format_list(
        [str(item) for item in items], locale=get_locale() or "en"
    )
    # Dates in the reader's language: a day, a month, a short month.
    app.jinja_env.filters["day"] = times.day
    app.jinja_env.filters["month"] = times.month
    app.jinja_env.filters["short_month"] = times.short_month
    app.jinja_env.filters["day_and_time"] = times.day_and_time
    # A time of day with its time zone.
    app.jinja_env.filters["moment"] = times.moment
    app.jinja_env.filters["clock"] = times.clock
    app.jinja_env.globals["time_zone_name"] = times.zone_name
    app.jinja_env.globals["text_direction"] = _text_direction
    app.jinja_env.globals["lang_code"] = _lang_code
    app.jinja_env.globals["category_labels"] = CATEGORY_LABELS
    app.jinja_env.globals["refused_left_unshown"] = refused.left_unshown
    app.jinja_env.globals["language_names"] = LANGUAGE_NAMES
    app.jinja_env.globals["languages_offered"] = lambda: offered(current_user)
    app.after_request(send_after_response)


def _load_development_secrets(app):
    """Generate the three secrets once into instance/secrets.json (0600) when unset."""
    path = os.path.join(app.instance_path, "secrets.json")
    stored = {}
    if os.path.exists(path):
        with open(path) as fh:
            stored = json.load(fh)
    missing = [name for name in SECRET_NAMES if name not in stored]
    if missing:
        stored.update({name: crypto.generate_key() for name in missing})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
    for name in SECRET_NAMES:
        if not app.config.get(name):
            app.config[name] = stored[name]


def _check_secrets(app):
    """Refuse to start without the three secrets, each the base64 of 32 random bytes."""
    try:
        crypto.parse_key(app.config.get("SECRET_KEY"), "SECRET_KEY")
        field_key = crypto.parse_key(
            app.config.get("HRDFUND_ENCRYPTION_KEY"), "HRDFUND_ENCRYPTION_KEY"
        )
        old_keys = [
            crypto.parse_key(k, "HRDFUND_ENCRYPTION_OLD_KEYS")
            for k in app.config.get("HRDFUND_ENCRYPTION_OLD_KEYS", "").split(",")
            if k.strip()
        ]
        audit_key = crypto.parse_key(app.config.get("HRDFUND_AUDIT_KEY"), "HRDFUND_AUDIT_KEY")
    except crypto.KeyConfigError as exc:
        raise RuntimeError(f"hrdfund refuses to start: {exc}") from exc
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        raise RuntimeError("hrdfund refuses to start: DATABASE_URL is not set")
    app.extensions["hrdfund_cipher"] = crypto.FieldCipher(field_key, old_keys, index_key=audit_key)
    app.extensions["hrdfund_audit_key"] = audit_key


def _configure_logging(app):
    """Log ids only; no request line, so no address or URL of anyone is written."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    log.setLevel(app.config["LOG_LEVEL"])


def _prepare_sqlite_file(uri):
    """Create an SQLite database file readable by its owner only (0600)."""
    url = sa.engine.make_url(uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
    os.close(os.open(url.database, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(url.database, 0o600)


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_connect(dbapi_connection, _record):
    """Foreign keys, secure delete and WAL on every SQLite connection."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Transactions are begun explicitly below, as BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "foreign_keys=ON",
        "secure_delete=ON",
        "journal_mode=WAL",
        "synchronous=FULL",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


@sa.event.listens_for(sa.engine.Engine, "begin")
def _sqlite_begin(conn):
    """On SQLite a transaction that may write takes the write lock first, so a balance read
    inside it cannot go stale before the write that depends on it; inside :func:`reading`,
    and in a request that only reads (outside ``writing()``), it begins deferred instead
    and takes none. A connection asked to autocommit (a migration turning
    foreign keys off around a table rebuild, which only works outside a transaction) begins
    none."""
    if conn.dialect.name != "sqlite":
        return
    if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        conn.exec_driver_sql(sqlite_begin_statement())


#: How statements that write nothing begin: every other statement (an INSERT, UPDATE or
#: DELETE, and anything unusual: a WITH, a COPY, DDL, an EXPLAIN, which with ANALYZE runs
#: what it explains) counts as a write, so that a transaction that ran one is rolled back
#: rather than ended as a read.
_READS = ("SELECT", "BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "SHOW")
#: Where a request keeps the tokens of the reading modes it entered, undone at its end.
_MODES = "hrdfund_transaction_modes"


@sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _note_writes(conn, _cursor, statement, _parameters, _context, _executemany):
    """Keep whether the open transaction has written (see :func:`_render_without_lock`).
    A write in a transaction begun with no write lock, in a request, is named in the log:
    SQLite may refuse to upgrade it when another writer got there first, so every write of
    a request that reads belongs inside ``perform`` (or ``writing()``)."""
    if statement.lstrip()[:9].upper().startswith(_READS):
        return
    first = note_write(conn)
    if first and conn.dialect.name == "sqlite" and in_reading_mode() and has_request_context():
        log.warning("a write with no write lock taken first, on endpoint %s", request.endpoint)


@sa.event.listens_for(sa.engine.Engine, "begin")
@sa.event.listens_for(sa.engine.Engine, "commit")
@sa.event.listens_for(sa.engine.Engine, "rollback")
def _forget_writes(conn):
    note_write(conn, False)


def _install_transaction_modes(app):
    """A request that only reads (GET, HEAD) runs with no write lock: on SQLite its
    transactions begin deferred, readers beside the one writer, and what it must write
    (the audit entry of a download) goes through ``perform``, in a short transaction that
    takes the lock at its start. A form sent (POST) begins with the lock, as its service
    checks and then writes; once its page is being rendered, a transaction that wrote
    nothing is ended and the rest of the request reads with no lock. On SQLite a form
    whose view reads and checks everything before its one ``perform`` (``reads_first``:
    the application form's) runs those reads with no lock too, and takes it for the
    service's short transaction."""

    @app.before_request
    def read_only_requests():
        if request.method in READ_METHODS or (
            getattr(app.view_functions.get(request.endpoint), READS_FIRST, False)
            and db.engine.dialect.name == "sqlite"
        ):
            g.setdefault(_MODES, []).append(read_by_default())

    @app.teardown_request
    def end_modes(_exc):
        tokens = g.pop(_MODES, [])
        if tokens and not has_written() and not _unsaved():
            end_read(db.session)  # the read ends with the request, not when next used
        for token in reversed(tokens):
            restore_mode(token)

    before_render_template.connect(_render_without_lock, app)


def _unsaved():
    return has_unsaved(db.session())


def _render_without_lock(_app, **_extra):
    """Signal: a page is about to be rendered. Nothing is written while a page is rendered,
    so a transaction that wrote nothing is ended first (on SQLite it held the write lock
    from its first statement) and the page reads what it still needs with no lock. One
    that wrote, or holds unsaved changes, is left as it is for its view to commit."""
    if not has_request_context() or in_reading_mode():
        return
    if has_written() or _unsaved():
        return
    end_read(db.session)
    g.setdefault(_MODES, []).append(read_by_default())


def _escape_lazy_strings():
    """Flask-Babel's lazy strings declare themselves safe HTML (``__html__`` returns the
    text as it is), so a translated message that carries something a person typed (a
    payment reference, a pool's name) would reach a page unescaped. None of our messages
    holds markup: escape them like any other text."""
    LazyString.__html__ = _escaped_html


def _escaped_html(lazy):
    return escape(str(lazy))


def _lang_code():
    return str(get_locale() or "en").split("_")[0]


def _text_direction():
    return "rtl" if _lang_code() in RIGHT_TO_LEFT else "ltr"


def _security_headers(response):
    """Headers on every response, error pages and static files included."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    # An error page under /static is rendered for the user (with a CSRF token): no-store too.
    if request.endpoint != "static" or response.status_code >= 400:
        response.headers["Cache-Control"] = "no-store"
    if current_app.config["ENV_NAME"] == "production":
        response.headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    return response


def _http_error(exc):
    code = exc.code or 500
    template = (
        f"errors/{code}.html" if code in (400, 403, 404, 405, 413, 429) else "errors/generic.html"
    )
    return render_template(template, code=code, language_back="/"), code


def _case_moved(exc):
    """Another person moved the case on (a decision sent at the same moment) after this
    request read it: nothing of this one is kept, and the case page says what it is now."""
    db.session.rollback()
    flash(
        gettext(
            "Someone else changed this case at the same moment, so nothing you sent was "
            "saved. This page shows the case as it is now: check it before you act again."
        ),
        "error",
    )
    return redirect(url_for("cases.case", uid=exc.uid), code=303)


def _gone_meanwhile(exc):
    """What the request read was deleted by another before it wrote (a draft deleted from
    another tab while a step of it was saved): undone, and answered as a page not found."""
    db.session.rollback()
    return render_template("errors/404.html", code=404, language_back="/"), 404


def _server_error(exc):
    """Roll back, log the error's type only, and show a page that reveals nothing."""
    db.session.rollback()
    # The message may quote personal data (SQL parameters, form values): log frames only.
    log.error(
        "unhandled %s on endpoint %s\n%s",
        type(exc).__name__,
        request.endpoint,
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    try:
        return render_template("errors/500.html", code=500, language_back="/"), 500
    except Exception:  # noqa: BLE001  (the page itself failed: answer with plain text)
        return "Something went wrong.", 500, {"Content-Type": "text/plain; charset=utf-8"}
