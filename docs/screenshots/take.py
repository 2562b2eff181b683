"""The application form on a 390-pixel phone screen in Arabic, Farsi, Chinese and French,
as docs/screenshots/form-<language>.png: `make screenshots`. A throwaway database in a
temporary folder; Debian's chromium, JavaScript off; nothing leaves 127.0.0.1."""

import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hrdfund import create_app  # noqa: E402
from hrdfund.auth import services  # noqa: E402
from hrdfund.auth.models import Fund  # noqa: E402
from hrdfund.core.extensions import db  # noqa: E402
from tests.conftest import make_config  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

LANGUAGES = ("ar", "fa", "zh", "fr")
PASSWORD = "a long passphrase for the screenshots"  # noqa: S105 (a throwaway account)


def _forms():
    """The medical application form, as each language shows it, with its stylesheet."""
    folder = tempfile.mkdtemp()
    app = create_app(make_config(f"sqlite:///{folder}/screens.sqlite3", folder))
    css = (ROOT / "hrdfund" / "static" / "style.css").read_text()
    pages = {}
    with app.app_context():
        db.create_all()
        db.session.add(Fund(name="hrdfund"))
        login = services.create_user("applicant", "scrn-shot-4you", PASSWORD).login
        db.session.commit()
        db.session.remove()
    # Each request then runs in an app context of its own, as when served.
    client = app.test_client()
    client.post("/login", data={"login": login, "password": PASSWORD})
    for code in LANGUAGES:
        client.post("/language", data={"language": code, "next": "/my"})
        started = client.post("/apply", data={"category": "medical"})
        # Choosing the kind of support answers with the form's first step, stored nothing.
        assert started.status_code == 200, started.status_code
        html = started.get_data(as_text=True)
        # The stylesheet's address names its version (hrdfund/core/static.py).
        link = re.search(r'<link rel="stylesheet" href="/static/style\.css\?v=[0-9a-f]+">', html)
        if link is None:
            raise SystemExit(f"no stylesheet link on the {code} form: its screenshot would be bare")
        pages[code] = html.replace(link.group(0), f"<style>{css}</style>")
    return pages


def main():
    pages = _forms()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, java_script_enabled=False
        )
        page = context.new_page()
        for code, html in pages.items():
            page.set_content(html)
            page.screenshot(path=str(Path(__file__).with_name(f"form-{code}.png")))
        browser.close()


if __name__ == "__main__":
    main()
