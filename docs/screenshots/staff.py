"""The staff side as a manager sees it, on a 390x844 phone and on a 1280x800 desktop: the
dashboard (its top and its charts), a pool page, a case page and the queue, as
docs/screenshots/<page>-<phone|desktop>.png (`make screenshots`).

The application is started as `make run` starts it (migrate, demo data, flask run on
127.0.0.1) with a throwaway instance folder; Debian's chromium, JavaScript off. Each image
is reduced to a palette of 128 colours so that it stays small in git."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyotp
from PIL import Image
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SCREENS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
MANAGER = "demo-manager1"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flask(env, *args):
    subprocess.run(  # noqa: S603 (this interpreter, arguments written here)
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )


def _serve(instance):
    """Migrate, load the demo data and serve on a free port: (server, address)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(HRDFUND_ENV="development", HRDFUND_INSTANCE_PATH=instance, FLASK_APP="app")
    _flask(env, "db", "upgrade")
    _flask(env, "hrdfund", "demo-data", "--if-empty")
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 (this interpreter, arguments written here)
        [sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/login", timeout=2)  # noqa: S310 (loopback only)
            return server, base
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the server did not start") from None
            time.sleep(0.2)


def _sign_in(page, base, account):
    page.goto(base + "/login")
    page.get_by_label("Login name").fill(account["login"])
    page.get_by_label("Password").fill(account["password"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Six-digit code from your authenticator app").fill(
        pyotp.TOTP(account["totp_secret"]).now()
    )
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("load")
    if "/dashboard" not in page.url:
        raise RuntimeError(f"signing in as {account['login']} ended on {page.url}")


def _link(page, selector):
    """The address of the first link matching ``selector`` on the current page."""
    return page.locator(selector).first.get_attribute("href")


def _small(path):
    """The PNG at ``path`` reduced to a palette, written back optimised."""
    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(colors=128, dither=Image.Dither.NONE)
    reduced.save(path, optimize=True)


def main():
    with tempfile.TemporaryDirectory(prefix="hrdfund-screens-") as instance:
        server, base = _serve(instance)
        try:
            with open(os.path.join(instance, "demo-accounts.json")) as fh:
                account = next(a for a in json.load(fh) if a["login"] == MANAGER)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context(java_script_enabled=False, viewport=SCREENS["phone"])
                page = context.new_page()
                _sign_in(page, base, account)
                pool = _link(page, "#money tbody a, #money + .scroll tbody a")
                page.goto(base + "/cases?status=paying")
                case = _link(page, "tbody a[href^='/applications/']")
                pages = {
                    "dashboard": "/dashboard",
                    "dashboard-charts": "/dashboard#charts",
                    "pool": pool,
                    "case": case,
                    "queue": "/cases",
                }
                for screen, size in SCREENS.items():
                    page.set_viewport_size(size)
                    for name, address in pages.items():
                        page.goto(base + address)
                        page.wait_for_load_state("load")
                        path = HERE / f"{name}-{screen}.png"
                        page.screenshot(path=str(path))
                        _small(path)
                        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
