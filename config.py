"""Configuration classes, read from the environment. No logic lives here."""

import os
from datetime import timedelta


def _env(name, default=None):
    return os.environ.get(name, default)


class Config:
    """Settings shared by every environment; production values by default."""

    ENV_NAME = "production"
    SECRET_KEY = _env("SECRET_KEY")
    #: Field encryption key (base64 of 32 bytes); older keys stay readable for rotation.
    HRDFUND_ENCRYPTION_KEY = _env("HRDFUND_ENCRYPTION_KEY")
    HRDFUND_ENCRYPTION_OLD_KEYS = _env("HRDFUND_ENCRYPTION_OLD_KEYS", "")
    #: Key of the audit hash chain and ledger seals (base64 of 32 bytes), never in the database.
    HRDFUND_AUDIT_KEY = _env("HRDFUND_AUDIT_KEY")

    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL")
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SQLALCHEMY_RECORD_QUERIES = False

    FUND_NAME = _env("HRDFUND_FUND_NAME", "hrdfund")
    #: Approvals worth this amount or more, in the reporting currency (converted at the
    #: fund's recorded rate), need a second manager.
    FOUR_EYES_THRESHOLD = _env("HRDFUND_FOUR_EYES_THRESHOLD", "5000")
    #: The currency the four-eyes threshold is read in and the queue compares amounts in.
    REPORTING_CURRENCY = _env("HRDFUND_REPORTING_CURRENCY", "EUR")
    #: Response and decision targets in hours, for urgent and for normal cases.
    TARGET_RESPONSE_HOURS_URGENT = int(_env("HRDFUND_TARGET_RESPONSE_HOURS_URGENT", "24"))
    TARGET_DECISION_HOURS_URGENT = int(_env("HRDFUND_TARGET_DECISION_HOURS_URGENT", "72"))
    TARGET_RESPONSE_HOURS_NORMAL = int(_env("HRDFUND_TARGET_RESPONSE_HOURS_NORMAL", "72"))
    TARGET_DECISION_HOURS_NORMAL = int(_env("HRDFUND_TARGET_DECISION_HOURS_NORMAL", "336"))
    #: Donor reports measure the hours from decision to first payment against this.
    TARGET_PAYMENT_HOURS = int(_env("HRDFUND_TARGET_PAYMENT_HOURS", "72"))
    #: Countries donor outputs show only as their region (ISO codes, comma-separated).
    HIGH_RISK_COUNTRIES = _env("HRDFUND_HIGH_RISK_COUNTRIES", "")
    #: Targets for some categories, as JSON: {"medical": {"urgent": [12, 48]}} gives urgent
    #: medical cases a first response within 12 h and a decision within 48 h.
    TARGETS_BY_CATEGORY = _env("HRDFUND_TARGETS_BY_CATEGORY", "{}")
    #: A case whose target falls due within this many hours alerts the staff on it.
    ALERT_HOURS_BEFORE_TARGET = int(_env("HRDFUND_ALERT_HOURS_BEFORE_TARGET", "6"))
    #: Another case of the same defender and category counts as a possible duplicate when
    #: open, or when closed less than this many days before this one was sent.
    DUPLICATE_WINDOW_DAYS = int(_env("HRDFUND_DUPLICATE_WINDOW_DAYS", "180"))
    #: A payment's rate further than this (percent) from the fund's table of its day (or
    #: any rate, when the table has none) needs a reason and a second person's confirmation.
    RATE_TOLERANCE_PERCENT = _env("HRDFUND_RATE_TOLERANCE_PERCENT", "2")
    #: A fee above this share (percent) of the payment, in the pool's currency, needs a
    #: second person's confirmation: remittance costs average about 6%, so 10 lets every
    #: ordinary fee through and stops a fee that is most of the payment.
    MAX_FEE_PERCENT = _env("HRDFUND_MAX_FEE_PERCENT", "10")
    #: An exchange difference (gain or loss) above this share (percent) of the commitment
    #: the payment settles needs a second person's confirmation: more than the rate of
    #: most currencies moves in the months a grant is paid over.
    MAX_EXCHANGE_DIFFERENCE_PERCENT = _env("HRDFUND_MAX_EXCHANGE_DIFFERENCE_PERCENT", "10")
    #: Stipends and relocations ending within this many days with nothing decided after
    #: them are listed on the coverage page.
    COVERAGE_WARNING_DAYS = int(_env("HRDFUND_COVERAGE_WARNING_DAYS", "30"))
    #: Follow-up lists: a payment nobody confirmed receiving this many days after it was
    #: made; a use-of-funds report not in this many days after the first payment;
    #: instalments falling due within this many days.
    RECEIPT_OVERDUE_DAYS = int(_env("HRDFUND_RECEIPT_OVERDUE_DAYS", "14"))
    REPORT_OVERDUE_DAYS = int(_env("HRDFUND_REPORT_OVERDUE_DAYS", "60"))
    INSTALMENT_NOTICE_DAYS = int(_env("HRDFUND_INSTALMENT_NOTICE_DAYS", "7"))

    #: Staff alerts by email. Without a server, alerts wait in the outbox.
    SMTP_HOST = _env("HRDFUND_SMTP_HOST")
    SMTP_PORT = int(_env("HRDFUND_SMTP_PORT", "587"))
    SMTP_USERNAME = _env("HRDFUND_SMTP_USERNAME")
    SMTP_PASSWORD = _env("HRDFUND_SMTP_PASSWORD")
    #: "starttls" (default), "ssl" or "none" (only for a server on the same machine).
    SMTP_SECURITY = _env("HRDFUND_SMTP_SECURITY", "starttls")
    SMTP_TIMEOUT = int(_env("HRDFUND_SMTP_TIMEOUT", "10"))
    MAIL_FROM = _env("HRDFUND_MAIL_FROM", "hrdfund@localhost")
    #: The address staff reach the app at, for the link in alerts.
    BASE_URL = _env("HRDFUND_BASE_URL", "http://127.0.0.1:5000")
    #: The sender of the applicant side's notices (an address, with or without a name).
    #: A discreet notice shows the address alone: choose one whose domain does not name
    #: the fund, or a discreet notice is held back rather than sent. Empty: MAIL_FROM.
    NOTICE_MAIL_FROM = _env("HRDFUND_NOTICE_MAIL_FROM")
    #: Where a notice tells the applicant side to sign in (the one address it carries).
    #: Empty: BASE_URL's sign-in page.
    SIGN_IN_URL = _env("HRDFUND_SIGN_IN_URL")

    #: Where "Leave this page", on every page of the applicant side, goes at once: an
    #: ordinary site a defender could be visiting, reachable where the fund's defenders
    #: are (an http or https address; anything else stops the start).
    QUICK_EXIT_URL = _env("HRDFUND_QUICK_EXIT_URL", "https://www.wikipedia.org/")
    #: How to reach the fund without this site's forms (a Signal number, an email address
    #: and its key...), shown on the before-you-apply page as written. Empty: none listed.
    FUND_CONTACT = _env("HRDFUND_FUND_CONTACT", "")

    BABEL_DEFAULT_LOCALE = "en"
    #: What the applicant side (and the sign-in pages) speaks; staff and donor pages speak
    #: STAFF_LANGUAGES, a part of it.
    LANGUAGES = ["en", "ar", "ru", "fr", "es", "fa", "pt", "zh", "tr"]
    STAFF_LANGUAGES = ["en", "fr", "es"]

    # Sessions: signed cookie holding only the user id, its session version and times (and,
    # for a moment after a form is refused, the random token naming it on the server).
    SESSION_COOKIE_NAME = "hrdfund_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    REMEMBER_COOKIE_DURATION = timedelta(seconds=0)
    IDLE_TIMEOUT_STAFF = timedelta(minutes=int(_env("HRDFUND_IDLE_MINUTES_STAFF", "30")))
    IDLE_TIMEOUT_APPLICANT = timedelta(minutes=int(_env("HRDFUND_IDLE_MINUTES_APPLICANT", "60")))
    ABSOLUTE_SESSION_LIFETIME = timedelta(hours=int(_env("HRDFUND_SESSION_HOURS", "12")))

    # CSRF tokens live long enough for a slow upload over Tor.
    WTF_CSRF_TIME_LIMIT = 4 * 3600
    #: Largest document accepted; a request body over MAX_CONTENT_LENGTH is refused (413).
    HRDFUND_MAX_DOCUMENT_BYTES = int(_env("HRDFUND_MAX_DOCUMENT_MB", "8")) * 1024 * 1024
    #: Where stored documents are kept: "database" (encrypted chunks in the database, which
    #: every app server shares) or "folder" (encrypted files in the instance's documents
    #: folder, one machine only). Unset: the database on PostgreSQL, the folder on SQLite.
    HRDFUND_DOCUMENT_STORAGE = _env("HRDFUND_DOCUMENT_STORAGE") or None
    #: Largest picture accepted, in pixels: a phone photo or a page scanned at 300 dpi is
    #: well under it; a larger one is refused from its header, before it is decoded.
    HRDFUND_MAX_IMAGE_PIXELS = int(_env("HRDFUND_MAX_IMAGE_PIXELS", "25000000"))
    #: Most pages a PDF may have.
    HRDFUND_MAX_PDF_PAGES = int(_env("HRDFUND_MAX_PDF_PAGES", "500"))

    # What a request may make the server read and parse, decided before anything reads
    # its body; past it the answer is 413. Uploads (a document, a proof of payment, a
    # statement) may send a file; the application form has its budget, dependants and
    # references rows; every other page takes a few fields.
    MAX_CONTENT_LENGTH = HRDFUND_MAX_DOCUMENT_BYTES + 256 * 1024
    #: Largest packet from a partner fund on another server (its documents included), as
    #: made and as imported.
    HRDFUND_MAX_PACKET_BYTES = int(_env("HRDFUND_MAX_PACKET_MB", "40")) * 1024 * 1024
    #: A visitor not signed in sends only the sign-in, code, recovery and sign-up forms.
    MAX_ANONYMOUS_REQUEST_BYTES = 16 * 1024
    MAX_ANONYMOUS_FORM_PARTS = 20
    #: A signed-in form without a file, and the application form.
    MAX_FORM_BYTES = 128 * 1024
    MAX_FORM_PARTS = 50
    MAX_APPLICATION_FORM_BYTES = 512 * 1024
    MAX_APPLICATION_FORM_PARTS = 150
    #: One text field of a form that carries a file. Werkzeug also holds each 64 KB read
    #: of a file's part against it, so it stays well above that.
    MAX_FORM_MEMORY_SIZE = 256 * 1024

    #: Failed passwords or codes at one login from one browser within the lock window
    #: that lock that login for that browser, for the lock window.
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCK_MINUTES = int(_env("HRDFUND_LOGIN_LOCK_MINUTES", "15"))
    #: Failures at one login from all browsers that never completed a sign-in to it, within
    #: the lock window, that lock it for every such browser (browsers it knows carry on).
    LOGIN_MAX_NEW_CLIENT_FAILURES = int(_env("HRDFUND_LOGIN_NEW_CLIENT_FAILURES", "10"))
    #: How long a browser that completed a sign-in stays known to that login.
    KNOWN_CLIENT_DAYS = int(_env("HRDFUND_KNOWN_CLIENT_DAYS", "30"))

    #: Argon2id parameters (RFC 9106 second recommended option).
    ARGON2_TIME_COST = 3
    ARGON2_MEMORY_COST = 65536
    ARGON2_PARALLELISM = 4
    #: Password checks (an Argon2id hash each, about 130 ms of a core and 64 MiB) the whole
    #: server makes in a minute, on average, for sign-ins, sign-ups and password changes;
    #: past it an attempt is answered "busy" (503) with nothing hashed. Browsers a login
    #: does not know get ten seconds' worth at once at most; browsers that completed a
    #: sign-in to the login may draw a minute ahead, so they are served first.
    PASSWORD_CHECKS_PER_MINUTE = int(_env("HRDFUND_PASSWORD_CHECKS_PER_MINUTE", "60"))
    #: Each process hashes one password at a time; another attempt waits this long for its
    #: turn, then is answered "busy" (503) with nothing hashed.
    PASSWORD_CHECK_WAIT_SECONDS = 2

    #: Closed cases are purged this many days after closing (`flask hrdfund purge`), down
    #: to the figures reports need; drafts never sent, this many days after the last edit.
    RETENTION_DAYS = int(_env("HRDFUND_RETENTION_DAYS", "730"))
    #: A refused form waits this long, encrypted on the server, for its page to show it
    #: back with what was typed; unread, it is then forgotten.
    REFUSED_FORM_MINUTES = int(_env("HRDFUND_REFUSED_FORM_MINUTES", "10"))
    #: A form sent after its session ended waits this long, encrypted on the server, for
    #: the person to sign in again and find it filled in as they sent it.
    UNSENT_FORM_MINUTES = int(_env("HRDFUND_UNSENT_FORM_MINUTES", "30"))

    #: An administrator's invitation to a new account opens for this many hours.
    INVITATION_HOURS = int(_env("HRDFUND_INVITATION_HOURS", "72"))

    LOG_LEVEL = _env("HRDFUND_LOG_LEVEL", "INFO")
    PAGE_SIZE = 50


class DevelopmentConfig(Config):
    """Local use: SQLite under instance/, keys generated once into instance/."""

    ENV_NAME = "development"
    SESSION_COOKIE_SECURE = False


class TestingConfig(Config):
    """The test suite: cheap password hashing, no cookie Secure flag."""

    ENV_NAME = "testing"
    TESTING = True
    SESSION_COOKIE_SECURE = False
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 8
    ARGON2_PARALLELISM = 1
    #: Tests sign in hundreds of times a minute; the tests of the bound set their own.
    PASSWORD_CHECKS_PER_MINUTE = 1_000_000


class ProductionConfig(Config):
    """Production: refuses to start without proper secrets."""


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
