"""A real server started as `make run` starts it, sending its mail to an SMTP server on
127.0.0.1 the tests read, and Debian's chromium driven by Playwright with JavaScript
disabled."""

import functools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from email import message_from_bytes
from email.policy import default as email_policy

import pyotp
import pytest
import sqlalchemy as sa

from hrdfund.auth.models import User
from hrdfund.core.extensions import db
from tests.conftest import missing_infrastructure

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM = os.environ.get("HRDFUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flask(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )


class Mailbox:
    """Every message the test's SMTP server accepted, parsed, with its envelope's
    recipients and the bytes as they came."""

    def __init__(self):
        self.received = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = message_from_bytes(envelope.content, policy=email_policy)
        with self._arrived:
            self.received.append((list(envelope.rcpt_tos), envelope.content, message))
            self._arrived.notify_all()
        return "250 OK"

    def to(self, address):
        """The messages sent to ``address``, parsed, in the order they came."""
        with self._arrived:
            return [message for rcpts, _raw, message in self.received if address in rcpts]

    def raw_to(self, address):
        """The same messages as the bytes the server received."""
        with self._arrived:
            return [raw for rcpts, raw, _message in self.received if address in rcpts]

    def wait_for(self, address, count=1, seconds=30):
        """The messages to ``address`` once there are ``count`` of them (or when
        ``seconds`` have passed: the caller checks how many came)."""
        with self._arrived:
            self._arrived.wait_for(
                lambda: sum(address in rcpts for rcpts, _r, _m in self.received) >= count,
                timeout=seconds,
            )
        return self.to(address)


#: The sender the live server's notices come from: an address that does not name the fund,
#: as a fund that keeps discreet notices discreet configures it.
NOTICE_MAIL_FROM = "Notices <news@mail.example>"


@pytest.fixture(scope="session")
def mail_server():
    """An SMTP server on 127.0.0.1 (aiosmtpd) the live server sends its staff alerts and
    the applicant side's notices to: ``mail_server["mailbox"]`` holds what arrived."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        missing_infrastructure("aiosmtpd is not installed (requirements-dev.txt)")
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield {"host": "127.0.0.1", "port": port, "mailbox": mailbox}
    controller.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, mail_server):
    """Migrate, load demo data and serve on 127.0.0.1, exactly the steps of `make run`,
    with the mail settings of a fund: the test's SMTP server, the server's own address in
    links, and a sender that does not name the fund."""
    instance = tmp_path_factory.mktemp("instance")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(HRDFUND_ENV="development", HRDFUND_INSTANCE_PATH=str(instance), FLASK_APP="app")
    env.update(
        HRDFUND_SMTP_HOST=mail_server["host"],
        HRDFUND_SMTP_PORT=str(mail_server["port"]),
        HRDFUND_SMTP_SECURITY="none",
        HRDFUND_BASE_URL=f"http://127.0.0.1:{port}",
        HRDFUND_NOTICE_MAIL_FROM=NOTICE_MAIL_FROM,
    )
    for name in ("HRDFUND_SMTP_USERNAME", "HRDFUND_SMTP_PASSWORD", "HRDFUND_SIGN_IN_URL"):
        env.pop(name, None)
    _flask(env, "db", "upgrade")
    _flask(env, "hrdfund", "demo-data", "--if-empty")
    log = open(instance / "server.log", "w")  # noqa: SIM115 (closed at teardown)
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/login", timeout=2)  # noqa: S310 (loopback only)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                log.close()
                raise RuntimeError(
                    "the server did not start: " + (instance / "server.log").read_text()[-2000:]
                ) from None
            time.sleep(0.2)
    with open(instance / "demo-accounts.json") as fh:
        accounts = json.load(fh)
    yield {
        "url": base,
        "accounts": accounts,
        "instance": instance,
        "mailbox": mail_server["mailbox"],
        # What the periodic `flask hrdfund alerts` does: send what waits in the outbox.
        # The server also sends after each response, but the development server calls a
        # response's close only once the browser lets go of the connection.
        "send_outbox": lambda: _flask(env, "hrdfund", "alerts"),
    }
    server.terminate()
    server.wait(timeout=10)
    log.close()


def _settled_content(page, *args, _content=None):
    """The page's HTML (or a measure taken in it) once the document being loaded has
    loaded: a click that sends a form returns when the answer starts to arrive, and on a
    busy machine reading the page at once can catch the new document still empty."""
    page.wait_for_load_state("load")
    return _content(page, *args)


def _settled_state(locator, _state=None):
    """How many elements match ``locator``, or whether it is visible, once its page has
    loaded: unlike a click or a text check, these do not wait, and right after a click
    that opens a page they would look in a document half read, or in the page being
    left."""
    locator.page.wait_for_load_state("load")
    return _state(locator)


@pytest.fixture(scope="session")
def browser():
    """Headless chromium from Debian; Playwright cannot download its own browsers here."""
    if not os.path.exists(CHROMIUM):
        missing_infrastructure(f"chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import Locator, Page, sync_playwright

    Page.content = functools.partialmethod(_settled_content, _content=Page.content)
    for state in ("count", "is_visible", "is_hidden", "is_checked"):
        setattr(
            Locator,
            state,
            functools.partialmethod(_settled_state, _state=getattr(Locator, state)),
        )
    Page.evaluate = functools.partialmethod(_settled_content, _content=Page.evaluate)

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    """A fresh browser context with JavaScript disabled, as on Tor Browser's safest level."""
    context = browser.new_context(java_script_enabled=False)
    tab = context.new_page()
    yield tab
    context.close()


def fresh_code(app, login, secret):
    """A code the server has not seen yet for this account (each code works once, as
    test_a_code_is_accepted_once shows). A journey signing the same account in again within
    the same 30 seconds forgets the step last used rather than wait for the clock."""
    step = int(time.time() // 30)
    with app.app_context():
        user = db.session.execute(sa.select(User).where(User.login == login)).scalar_one()
        if user.totp_last_step is not None and user.totp_last_step >= step:
            user.totp_last_step = step - 1
            db.session.commit()
        db.session.remove()
    return pyotp.TOTP(secret).at(step * 30)
