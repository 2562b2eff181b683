"""A real server started as `make run` starts it, and Debian's chromium driven by
Playwright with JavaScript disabled."""

import functools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

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


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """Migrate, load demo data and serve on 127.0.0.1, exactly the steps of `make run`."""
    instance = tmp_path_factory.mktemp("instance")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(HRDFUND_ENV="development", HRDFUND_INSTANCE_PATH=str(instance), FLASK_APP="app")
    _flask(env, "db", "upgrade")
    _flask(env, "hrdfund", "demo-data", "--if-empty")
    port = _free_port()
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
    yield {"url": base, "accounts": accounts, "instance": instance}
    server.terminate()
    server.wait(timeout=10)
    log.close()


def _settled_content(page, *args, _content=None):
    """The page's HTML (or a measure taken in it) once the document being loaded has
    loaded: a click that sends a form returns when the answer starts to arrive, and on a
    busy machine reading the page at once can catch the new document still empty."""
    page.wait_for_load_state("load")
    return _content(page, *args)


def _settled_count(locator, _count=None):
    """How many elements match ``locator`` once its page has loaded: unlike a click or a
    text check, counting does not wait, and right after a click that opens a page it would
    count in a document half read, or in the page being left."""
    locator.page.wait_for_load_state("load")
    return _count(locator)


@pytest.fixture(scope="session")
def browser():
    """Headless chromium from Debian; Playwright cannot download its own browsers here."""
    if not os.path.exists(CHROMIUM):
        missing_infrastructure(f"chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import Locator, Page, sync_playwright

    Page.content = functools.partialmethod(_settled_content, _content=Page.content)
    Locator.count = functools.partialmethod(_settled_count, _count=Locator.count)
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
