"""A defender who reads Arabic, in a real browser with JavaScript off on a phone-sized
screen (390 by 844): the language chosen on the sign-in page, an account made, a medical
application written and sent, every step in Arabic, right to left, nothing wider than the
screen."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.messages.pofile import read_po

from hrdfund import ROOT, create_app
from hrdfund.auth.models import Role, User
from hrdfund.cases.models import Application
from hrdfund.core.extensions import db
from hrdfund.grants import services as grants
from hrdfund.reviews import services as reviews
from tests.e2e.conftest import fresh_code

pytestmark = pytest.mark.e2e


def _words(code):
    """What the catalog of ``code`` says for an English message."""
    path = Path(ROOT) / "hrdfund" / "translations" / code / "LC_MESSAGES" / "messages.po"
    with open(path, "rb") as fh:
        catalog = read_po(fh)
    return lambda english: catalog[english].string


def _fits(page):
    """Nothing runs past the right or the left edge of a 390-pixel screen (measured once
    the page and its stylesheet have loaded)."""
    page.wait_for_load_state("load")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    wide = page.evaluate(
        """() => [...document.querySelectorAll("body *")]
            .filter(e => {
                const r = e.getBoundingClientRect();
                return r.right > 391 || r.left < -1;
            })
            .slice(0, 5).map(e => e.outerHTML.slice(0, 120))"""
    )
    assert width <= 390, f"{page.url} is {width} px wide: {wide}"


def _fill_medical_case(page, typed, country, currency, references):
    """The medical application, step by step, filled by its fields' names (its labels are
    in the page's language), each step fitting the screen; ends on the last step, that
    sends. Returns the case code."""

    def save():
        page.locator("#save").click()
        page.wait_for_load_state("load")
        _fits(page)

    def fill(prefix):
        for name, value in typed.items():
            if name.startswith(prefix):
                page.fill(f"#{name}", value)

    page.select_option("#country", country)
    for name in ("defender_name", "defender_work", "threat"):
        page.fill(f"#{name}", typed[name])
    save()
    uid = re.search(r"/applications/([0-9a-f]+)/steps/urgency", page.url).group(1)
    assert page.locator("input[name=urgency]:checked").count() == 0
    page.check("input[name=urgency][value=normal]")
    save()
    fill("details-")
    save()
    page.select_option("#currency", currency)
    fill("budget-")
    save()
    save()  # no dependants
    for n, (name, contact) in enumerate(references):
        page.fill(f"#references-{n}-name", name)
        page.fill(f"#references-{n}-contact", contact)
    save()
    save()  # other funders and consents: none
    assert page.url.endswith(f"/applications/{uid}/steps/review")
    return uid


def test_an_arabic_speaking_defender_applies_in_arabic(live_server, browser):
    ar = _words("ar")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    url = live_server["url"]
    page.goto(url + "/login")
    page.select_option("#page-language", "ar")
    page.locator("form.language button").click()
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "ar"
    _fits(page)

    page.get_by_role("link", name=ar("Create an account"), exact=True).click()
    passphrase = page.locator("#passphrase-suggestion code").inner_text()
    page.fill("#password", passphrase)
    page.fill("#password_again", passphrase)
    page.get_by_role("button", name=ar("Create account")).click()
    assert page.get_by_role("heading", level=1).inner_text() == ar("Your applications")
    _fits(page)

    page.get_by_role("link", name=ar("Ask for support")).click()
    page.check("input[value=medical]")
    page.get_by_role("button", name=ar("Continue")).click()
    _fits(page)
    uid = _fill_medical_case(
        page,
        {
            "defender_name": "مدافعة من حلب",
            "defender_work": "توثيق الاعتقالات التعسفية",
            "threat": "تهديدات بعد نشر تقرير",
            "details-provider": "مستشفى الأمل، عمّان",
            "details-treatment": "جراحة في الكتف",
            "details-link_to_threat": "إصابة خلال اعتداء بعد التقرير",
            "budget-0-description": "العملية الجراحية",
            "budget-0-amount": "١٢٥٠٫٥٠",  # Arabic-Indic digits and decimal separator
        },
        country="JO",
        currency="JOD",
        references=[("منظمة شريكة", "سيغنال"), ("محامية", "عبر الشبكة")],
    )
    page.get_by_role("button", name=ar("Send application")).click()

    assert page.url.endswith(f"/applications/{uid}")
    html = page.content()
    assert '<html lang="ar" dir="rtl">' in html
    assert ar("Received") in html  # the status, in the applicant's words
    # The amount typed in Arabic-Indic digits, with the Arabic decimal separator, was read.
    app = create_app({"ENV_NAME": "development", "INSTANCE_PATH": str(live_server["instance"])})
    with app.app_context():
        case = db.session.execute(sa.select(Application).where(Application.uid == uid)).scalar_one()
        assert case.amount_requested == Decimal("1250.50")
        assert case.applicant.language == "ar"
    _fits(page)
    context.close()


def _choose(page, code):
    """The language form at the top of the page, as a person uses it."""
    page.select_option("#page-language", code)
    page.locator("form.language button").click()
    page.wait_for_load_state("load")


def _sign_in_by_ids(page, url, account):
    """Sign in with the form's fields by their names: the labels are in the page's language."""
    page.fill("#login", account["login"])
    page.fill("#password", account["password"])
    page.locator("form[action='/login'] button[type=submit]").click()


def test_a_farsi_speaking_partner_refers_a_case_and_a_french_speaking_manager_decides_it(
    live_server, browser
):
    fa, fr = _words("fa"), _words("fr")
    url = live_server["url"]
    partner = next(a for a in live_server["accounts"] if a["role"] == "partner")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(url + "/login")
    _choose(page, "fa")
    _sign_in_by_ids(page, url, partner)
    # The second factor's page in Farsi too, the code typed in Persian digits.
    app = create_app({"ENV_NAME": "development", "INSTANCE_PATH": str(live_server["instance"])})
    code = fresh_code(app, partner["login"], partner["totp_secret"])
    assert fa("Six-digit code from your authenticator app") in page.content()
    page.fill("#code", code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")))
    page.locator("form[action='/login/code'] button[type=submit]").click()
    assert page.locator("html").get_attribute("dir") == "rtl"
    page.get_by_role("link", name=fa("Refer a defender")).click()
    page.check("input[value=medical]")
    page.check("#consent")
    page.select_option("#consent_method", "in_person")
    page.get_by_role("button", name=fa("Continue")).click()
    _fits(page)
    uid = _fill_medical_case(
        page,
        {
            "defender_name": "مدافع از هرات",
            "defender_work": "دفاع از حقوق زنان",
            "threat": "تهدید پس از یک گزارش",
            "details-provider": "کلینیکی در نایروبی",
            "details-treatment": "درمان دست",
            "details-link_to_threat": "آسیب در یک حمله",
            "budget-0-description": "درمان",
            "budget-0-amount": "۳۰۰",  # Persian digits
        },
        country="KE",
        currency="EUR",
        references=[("رهبر محلی", "از طریق دفتر ما"), ("وکیل", "سیگنال")],
    )
    page.get_by_role("button", name=fa("Send application")).click()
    assert page.url.endswith(f"/applications/{uid}")
    assert fa("Received") in page.content()
    _fits(page)
    context.close()

    # The fund's reviewer recommends the case; a manager who reads French decides it.
    with app.app_context():
        case = db.session.execute(sa.select(Application).where(Application.uid == uid)).scalar_one()
        assert case.amount_requested == Decimal("300.00")
        reviewer = db.session.execute(
            sa.select(User).where(User.role == Role.REVIEWER).order_by(User.id).limit(1)
        ).scalar_one()
        reviews.assign_reviewer(case, reviewer, reviewer)
        reviews.recommend(case, reviewer, "high", "approve", Decimal(300), "Vérifié")
        pool = next(
            o["pool"]
            for o in grants.pool_options(case, Decimal(300))
            if not o["reasons"] and o["available"] >= Decimal(300)
        )
        db.session.commit()
        pool_id = pool.id
        db.session.remove()
    manager = next(a for a in live_server["accounts"] if a["login"] == "demo-manager1")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(url + "/login")
    _choose(page, "fr")
    _sign_in_by_ids(page, url, manager)
    page.fill("#code", fresh_code(app, manager["login"], manager["totp_secret"]))
    page.locator("form[action='/login/code'] button[type=submit]").click()
    assert page.locator("html").get_attribute("lang") == "fr"
    page.goto(f"{url}/applications/{uid}")
    html = page.content()
    assert fr("Language of the applicant side") in html, html[html.find("<dl>") :][:600]
    assert "persan (فارسی)" in html  # named in French, and in its own words
    page.select_option("#approve-draws-0-pool", str(pool_id))
    page.fill("#approve-draws-0-amount", "300.00")
    page.get_by_role("button", name=fr("Approve"), exact=True).click()
    assert "300,00" in page.content() and fr("Approved") in page.content()
    _fits(page)
    context.close()
    with app.app_context():  # the accounts as they were, for the other journeys
        for login in (partner["login"], manager["login"]):
            db.session.execute(
                sa.select(User).where(User.login == login)
            ).scalar_one().language = None
        db.session.commit()
