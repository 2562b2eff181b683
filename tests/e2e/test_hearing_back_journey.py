"""A defender on a 390x844 phone with JavaScript off, tried as a new user would: reads what
to expect before applying, signs up with an email address as the safe contact, applies
step by step and signs out; a reviewer asks a question; the notice reaches the mailbox (a
real SMTP server on 127.0.0.1) saying only that there is news and where to sign in; the
defender follows it, answers, is approved and paid, and says less arrived; finance finds
it on follow-up. Every page the defender sees fits the phone's width and has no script."""

import re
import time
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.auth.models import User
from hrdfund.core.extensions import db
from hrdfund.grants import services as grants
from tests.e2e.conftest import NOTICE_MAIL_FROM
from tests.e2e.test_applicant_journey import _case, _staff_app
from tests.e2e.test_review_journey import _sign_out, _staff_sign_in

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
CONTACT = "lantern.reader@mail.example"
NAME = "Wanjiru Achieng"
WORK = "Documents forced evictions in Mathare"
THREAT = "Followed home after a hearing"
HOSPITAL = "Mater Hospital in Nairobi"
QUESTION = "Which ward will treat the fractured wrist?"
ANSWER = "The orthopaedic ward, on the second floor."
LINES = (("Surgery on the wrist", "2475.35"), ("Physiotherapy sessions", "512.80"))
TOTAL = "2988.15"
RECEIVED = "2900.00"
NOTE = "The bank kept a charge"


def _fits(page, heading=None):
    """The page the defender sees: loaded, titled ``heading`` when given, no wider than
    the phone, without a script."""
    if heading is not None:
        assert page.get_by_role("heading", level=1).inner_text() == heading, page.url
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"
    assert "<script" not in page.content(), page.url


def _save(page, next_title):
    page.get_by_role("button", name="Save and continue").click()
    assert page.locator("nav.steps [aria-current=step]").inner_text() == next_title
    _fits(page)


def _content_of_the_case(app, uid):
    """What a notice must never carry: the case's codes, amounts, kind of support, the
    defender's name, country and answers, the question; and, with discretion, the fund."""
    with app.app_context():
        case = _case(uid)
        code, fund = case.code, case.fund.name
        instance = app.config["FUND_NAME"]
        db.session.remove()
        db.engine.dispose()
    amounts = [amount for _what, amount in LINES] + [TOTAL]
    amounts += [f"{Decimal(a):,}" for a in amounts] + [a.split(".")[0] for a in amounts]
    words = [uid, code, "Medical", "medical", NAME, *NAME.split(), "Kenya", "Nairobi"]
    words += [WORK, THREAT, HOSPITAL, QUESTION, "ward", "wrist", *[w for w, _a in LINES]]
    return words + amounts, [fund, instance]


def _check_notice(message, raw, url, forbidden, fund_names):
    """A discreet notice: from the bare sender address, a plain subject, no case content
    and no fund name anywhere, and one address only, where to sign in. Returns it."""
    assert message["To"] == CONTACT
    sender = NOTICE_MAIL_FROM.split("<")[1].rstrip(">")
    assert message["From"] == sender, "discretion: the address alone, no name"
    assert message["Subject"] == "There is news for you"
    body = message.get_content()
    seen = " ".join([str(v) for k, v in message.items() if k.lower() != "to"] + [body])
    text = raw.decode("utf-8", "replace")
    # The one address it carries, where to sign in, is checked below; the test server's
    # port in it (127.0.0.1:51289) is no amount of the case.
    address = url + "/login"
    for word in forbidden:
        assert word not in seen.replace(address, "") and word not in text.replace(address, ""), (
            f"the notice carries {word!r}"
        )
    for name in fund_names:
        assert name.casefold() not in seen.casefold(), f"the notice names {name!r}"
        assert name.casefold() not in text.replace(CONTACT, "").casefold()
    links = re.findall(r"https?://\S+", body)
    assert links == [url + "/login"], body
    return links[0]


def _recorded_as_sent(app, login, count, seconds=30):
    """Wait until the outbox has recorded ``count`` notices to ``login`` as sent: it does so
    once the mail server has taken the whole batch, a moment after the message arrives, and
    a sign-in before that moment would count the notice as not yet read."""
    deadline = time.monotonic() + seconds
    while True:
        with app.app_context():
            sent = db.session.execute(
                sa.select(sa.func.count(Alert.id))
                .join(User, User.id == Alert.user_id)
                .where(
                    User.login == login,
                    Alert.kind == AlertKind.APPLICANT_NEWS,
                    Alert.sent_at.is_not(None),
                )
            ).scalar_one()
            db.session.remove()
            db.engine.dispose()
        if sent >= count or time.monotonic() > deadline:
            assert sent == count, f"{sent} notices recorded as sent"
            return
        time.sleep(0.2)


def test_a_defender_hears_of_a_question_answers_and_says_less_arrived(live_server, browser):
    url = live_server["url"]
    mailbox = live_server["mailbox"]
    app = _staff_app(live_server)
    phone = browser.new_context(java_script_enabled=False, viewport=PHONE).new_page()

    # Before applying: what the fund covers, how fast it answers, what to prepare.
    phone.goto(url + "/login")
    _fits(phone, "Sign in")
    phone.get_by_role("link", name="Before you apply: what the fund covers").click()
    _fits(phone, "Before you apply")
    for heading in ("What the fund covers", "How fast the fund answers", "What to prepare"):
        assert phone.get_by_role("heading", name=heading, level=2).is_visible()
    phone.get_by_role("link", name="Create an account to apply").click()
    _fits(phone, "Create an account to ask for support")

    # Signing up with an email address as the safe contact: notices on, discreet.
    login_name = phone.locator("#login-suggestion code").inner_text()
    passphrase = phone.locator("#passphrase-suggestion code").inner_text()
    phone.get_by_label("Password or passphrase").fill(passphrase)
    phone.get_by_label("The same password again").fill(passphrase)
    phone.get_by_label("A safe way for the fund to reach you").fill(CONTACT)
    phone.get_by_role("button", name="Create account").click()
    _fits(phone, "Your applications")
    phone.goto(url + "/account")
    _fits(phone)
    assert phone.get_by_label("Your safe contact").input_value() == CONTACT
    assert phone.get_by_label("Send a notice to my email address when there is news").is_checked()
    assert phone.get_by_label("Discreet: the notice does not name the fund").is_checked()

    # Step by step: each step a plain form post, saved one at a time.
    phone.locator("a.brand").click()  # home: the list of the defender's cases
    _fits(phone, "Your applications")
    phone.get_by_role("link", name="Ask for support").click()
    _fits(phone)
    phone.get_by_label("Medical costs").check()
    phone.get_by_role("button", name="Continue").click()
    _fits(phone)
    assert "Nothing is stored until you save this step" in phone.content()
    phone.get_by_label("Name or pseudonym the fund may use").fill(NAME)
    phone.select_option("#country", "KE")
    phone.get_by_label("The defender's human rights work").fill(WORK)
    phone.get_by_label("The threat or attack linked to that work").fill(THREAT)
    _save(phone, "Urgency")
    uid = re.search(r"/applications/([0-9a-f]+)/steps/", phone.url).group(1)
    phone.get_by_label("Urgent: danger now or within days").check()
    phone.get_by_label("Why is it urgent").fill("The wrist must be set this week")
    _save(phone, "About this support")
    phone.fill("#details-provider", HOSPITAL)
    phone.fill("#details-treatment", "Surgery on a fractured wrist")
    phone.fill("#details-link_to_threat", "Beaten by the men who followed")
    _save(phone, "Budget")
    assert phone.locator("#currency").input_value() == "KES"  # from the country chosen
    phone.select_option("#currency", "EUR")
    for n, (what, amount) in enumerate(LINES, start=1):
        phone.get_by_label(f"Budget line {n}: what it pays for").fill(what)
        phone.get_by_label(f"Budget line {n}: amount").fill(amount)
    _save(phone, "Dependants affected")
    _save(phone, "Two references")
    phone.fill("#references-0-name", "Legal aid clinic")
    phone.fill("#references-0-contact", "Office phone")
    phone.fill("#references-1-name", "Neighbour")
    phone.fill("#references-1-contact", "Signal")
    _save(phone, "Other funders and consent")
    _save(phone, "Check and send")
    phone.get_by_role("button", name="Send application").click()
    _fits(phone)
    assert "Status: Received" in phone.content()
    phone.get_by_role("button", name="Sign out").click()
    _fits(phone, "Sign in")
    forbidden, fund_names = _content_of_the_case(app, uid)
    assert not mailbox.to(CONTACT), "nothing was news yet"

    # The fund asks a question.
    staff = browser.new_context(java_script_enabled=False).new_page()
    _staff_sign_in(staff, live_server, app, "demo-reviewer1")
    staff.goto(f"{url}/applications/{uid}")
    staff.get_by_role("button", name="Take this case").click()
    assert "The case is assigned." in staff.content()
    staff.get_by_label("Your message").fill(QUESTION)
    # In review, what the reviewer sends is a question, and the button says so.
    staff.get_by_role("button", name="Send as a question").click()
    assert QUESTION in staff.content()

    # The notice reaches the safe contact: news, and where to sign in; nothing else.
    live_server["send_outbox"]()
    notices = mailbox.wait_for(CONTACT, 1)
    assert len(notices) == 1, "the question sends one notice"
    link = _check_notice(notices[0], mailbox.raw_to(CONTACT)[0], url, forbidden, fund_names)
    _recorded_as_sent(app, login_name, 1)

    # The defender follows it, signs in, sees what waits, and answers.
    phone.goto(link)
    _fits(phone, "Sign in")
    phone.get_by_label("Login name").fill(login_name)
    phone.get_by_label("Password").fill(passphrase)
    phone.get_by_role("button", name="Sign in").click()
    _fits(phone, "Your applications")
    row = phone.locator("tr", has=phone.locator(f"a[href='/applications/{uid}']"))
    assert "The fund asked you a question: please answer it." in row.inner_text()
    row.get_by_role("link").click()
    _fits(phone)
    assert "The fund has a question for you" in phone.content() and QUESTION in phone.content()
    phone.get_by_label("Your message").fill(ANSWER)
    phone.get_by_role("button", name="Send message").click()
    _fits(phone)
    assert "Status: Being reviewed" in phone.content()

    # The reviewer reads the answer and recommends; a manager approves (below the
    # four-eyes threshold, one manager decides).
    staff.reload()
    assert ANSWER in staff.content()
    staff.get_by_label("Risk to the defender").select_option("high")
    staff.get_by_label("Recommendation", exact=True).select_option("approve")
    staff.get_by_label("Assessment (staff only)").fill("The clinic confirmed the fracture")
    staff.get_by_role("button", name="Recommend").click()
    assert "Recommendation recorded" in staff.content()
    _sign_out(staff)
    with app.app_context():
        pool_id = next(
            o["pool"].id
            for o in grants.pool_options(_case(uid), Decimal(TOTAL))
            if not o["reasons"] and o["available"] >= Decimal(TOTAL) * o["rate"]
        )
        code = _case(uid).code
        db.session.remove()
        db.engine.dispose()
    _staff_sign_in(staff, live_server, app, "demo-manager1")
    staff.goto(f"{url}/applications/{uid}")
    assert staff.get_by_label("Amount approved").input_value() == TOTAL
    if staff.locator("#approve-draws-0-pool").input_value() == "":
        staff.select_option("#approve-draws-0-pool", str(pool_id))
        staff.fill("#approve-draws-0-amount", TOTAL)
    staff.get_by_role("button", name="Approve", exact=True).click()
    assert "Approved: €2,988.15 committed." in staff.content()
    _sign_out(staff)

    # The decision is news again (the defender signed in since the last notice), and
    # just as bare.
    live_server["send_outbox"]()
    notices = mailbox.wait_for(CONTACT, 2)
    assert len(notices) == 2, "the decision sends a second notice"
    _check_notice(notices[1], mailbox.raw_to(CONTACT)[1], url, forbidden, fund_names)

    # Finance pays it from the grants to pay.
    _staff_sign_in(staff, live_server, app, "demo-finance1")
    staff.get_by_role("link", name="Grants to pay").first.click()
    staff.get_by_role("link", name=f"Pay {code}", exact=True).click()
    staff.get_by_label("Paid to").select_option("vendor")
    staff.get_by_label("Payee details").fill("The hospital's account KE00 5678")
    staff.get_by_label("Channel").select_option("bank")
    staff.get_by_label("Amount paid").fill(TOTAL)
    staff.get_by_label("Currency paid").select_option("EUR")
    staff.fill("#pay-paid_on", date.today().isoformat())
    staff.get_by_label("Payment reference").fill("E2E-HEAR-1")
    staff.get_by_role("button", name="Record the payment").click()
    assert "Payment recorded." in staff.content()

    # The defender sees the payment and says less of it arrived.
    phone.locator("a.brand").click()
    _fits(phone, "Your applications")
    assert "A payment was sent: please say whether it arrived." in row.inner_text()
    row.get_by_role("link").click()
    _fits(phone)
    html = phone.content()
    assert "Status: Approved, payments under way" in html and "€2,988.15" in html
    phone.get_by_label("Amount you received").fill(RECEIVED)
    phone.get_by_label("A short note for the fund").fill(NOTE)
    phone.get_by_role("button", name="I received less").click()
    _fits(phone)
    assert "now knows that less arrived" in phone.content()
    assert "received less, €2,900.00" in phone.content()
    phone.locator("a.brand").click()
    _fits(phone, "Your applications")
    assert "Nothing waits for you at the moment." in phone.content()
    assert "please say whether it arrived" not in row.inner_text()

    # Finance finds it on follow-up at once, with what is missing.
    staff.goto(f"{url}/payments/follow-up")
    reported = staff.locator("#mismatches + p + table tr", has_text="E2E-HEAR-1").first
    text = reported.inner_text()
    assert "received short" in text and "88.15" in text and NOTE in text

    # The payment made no third notice: it was booked before the defender signed in
    # after the second.
    live_server["send_outbox"]()
    assert len(mailbox.to(CONTACT)) == 2
