"""The applicant side: sign up without a name, fill in, save, come back, send, follow."""

import html
import html.parser
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.auth.models import User
from hrdfund.cases.categories import CATEGORY_FIELDS
from hrdfund.cases.models import ApplicationStatus, Consent, ConsentKind, Message, Urgency
from hrdfund.cases.services import change_status
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from tests.conftest import (
    PASSWORD,
    application_by_uid,
    csrf_token,
    input_value,
    login,
    make_case,
    refused_page,
    start_application,
)

RELOCATION = {
    "country": "KE",
    "gender": "woman",
    "urgency": "urgent",
    "urgency_reason": "Men came to the house twice this week",
    "defender_work": "Documents evictions for land defenders",
    "threat": "Death threats after a radio interview",
    "details-scope": "region",
    "details-destination_country": "UG",
    "details-people": "3",
    "details-months": "6",
    "details-stay_plan": "Visa on arrival, then a permit",
    "details-security_plan": "Travel with a partner escort",
    "details-exit_plan": "Return when the trial ends",
    "currency": "KES",
    "budget-0-description": "Rent for six months",
    "budget-0-amount": "120000",
    "budget-1-description": "Bus tickets",
    "budget-1-amount": "30000.50",
    "dependants-0-relation": "daughter",
    "dependants-0-age": "7",
    "dependants-1-relation": "son",
    "dependants-1-age": "11",
    "references-0-name": "Reference One",
    "references-0-contact": "via the network",
    "references-1-name": "Reference Two",
    "references-1-contact": "Signal",
}


def test_a_defender_signs_up_with_no_name_email_or_phone(client):
    """The login name the page makes and a password are enough; the contact method is kept
    encrypted."""
    page = client.get("/register").get_data(as_text=True)
    suggestion = re.search(r"<code>([a-z0-9-]{24})</code>", page).group(1)
    made = input_value(page, "login")
    response = client.post(
        "/register",
        data={
            "login": made.upper(),
            "login_seal": input_value(page, "login_seal"),
            "password": suggestion,
            "password_again": suggestion,
            "contact": "Signal +000 canary 5521",
        },
    )
    assert response.status_code == 302
    user = db.session.execute(sa.select(User).where(User.login == made)).scalar_one()
    assert user.role.value == "applicant" and user.display_name is None
    assert user.contact == "Signal +000 canary 5521"
    assert b"canary" not in user._contact
    # The first session's home page says the login name to note down; the account page
    # always does; a later session's home page no longer does.
    home = client.get("/my").get_data(as_text=True)
    assert f'Your login name is:</p><p class="secret"><code>{made}</code>' in home
    assert f"<code>{made}</code>" in client.get("/account").get_data(as_text=True)
    # Noted down, it is hidden at once (someone looking later reads it there no more);
    # the account page keeps it. The button sent without its CSRF token (checked here as
    # deployed) hides nothing.
    client.application.config["WTF_CSRF_ENABLED"] = True
    try:
        assert client.post("/my/login-noted").status_code == 400
        assert made in client.get("/my").get_data(as_text=True)
        noted = client.post("/my/login-noted", data={"csrf_token": csrf_token(client, "/my")})
    finally:
        client.application.config["WTF_CSRF_ENABLED"] = False
    assert noted.status_code == 302 and noted.location == "/my"
    assert made not in client.get("/my").get_data(as_text=True)
    assert f"<code>{made}</code>" in client.get("/account").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/my")})
    login(client, user, password=suggestion)
    assert made not in client.get("/my").get_data(as_text=True)


def test_sign_up_errors_are_clear_and_keep_the_login(client):
    page = client.get("/register").get_data(as_text=True)
    made = {name: input_value(page, name) for name in ("login", "login_seal")}
    weak = client.post("/register", data={**made, "password": "short", "password_again": "short"})
    weak = refused_page(client, weak, "/register")
    assert "at least 12 characters" in weak.get_data(as_text=True)
    assert input_value(weak.get_data(as_text=True), "login") == made["login"]
    # A slip in the second typing: nothing is made, and the page says which field.
    slip = {"password": PASSWORD, "password_again": PASSWORD + "x"}
    slipped = refused_page(client, client.post("/register", data={**made, **slip}), "/register")
    slipped = slipped.get_data(as_text=True)
    assert "The two passwords differ: type the same one in both." in slipped
    assert 'id="password_again-error"' in slipped and PASSWORD not in slipped
    # The passphrase shown is new (none is kept); the page says the one noted still works.
    assert "one you noted before still works if you type it in both fields" in slipped
    # A password the rules refuse is said at once, even while the copies differ too.
    both = {"password": "short", "password_again": "shorter"}
    both = refused_page(client, client.post("/register", data={**made, **both}), "/register")
    both = both.get_data(as_text=True)
    assert "at least 12 characters" in both and "The two passwords differ" in both
    named = {"password": f"my {made['login']} pass", "password_again": "something else"}
    named = refused_page(client, client.post("/register", data={**made, **named}), "/register")
    assert "it contains the login name" in named.get_data(as_text=True)
    assert db.session.execute(sa.select(User).where(User.login == made["login"])).first() is None
    forged = client.post(
        "/register",
        data={"login": "taken-name", "password": PASSWORD, "password_again": PASSWORD},
    )
    forged = refused_page(client, forged, "/register")
    assert "Your login name is made for you by this page" in forged.get_data(as_text=True)
    assert input_value(forged.get_data(as_text=True), "login") != "taken-name"


def test_draft_is_saved_resumed_and_sent(client, make_user, fund):
    """Save, come back later to the same answers, send: the case says it was received."""
    login(client, make_user("applicant"))
    uid = start_application(client)
    saved = client.post(f"/applications/{uid}/edit", data={**RELOCATION, "save": "1"})
    assert saved.location == f"/applications/{uid}/edit"
    page = client.get(f"/applications/{uid}/edit").get_data(as_text=True)
    for typed in (
        "Death threats after a radio interview",
        "120000.00",
        "daughter",
        "Visa on arrival",
    ):
        assert typed in page
    case = application_by_uid(uid)
    assert case.amount_requested == pytest.approx(150000.50)
    assert case.currency == "KES" and case.dependants_count == 2 and case.region == "East Africa"
    sent = client.post(f"/applications/{uid}/edit", data={**RELOCATION, "submit": "1"})
    assert sent.location == f"/applications/{uid}"
    assert application_by_uid(uid).status == ApplicationStatus.SUBMITTED
    assert "Received" in client.get(f"/applications/{uid}").get_data(as_text=True)
    assert client.get(f"/applications/{uid}/edit").location == f"/applications/{uid}"
    # Once sent, the answers are not shown again on the applicant side (docs/security.md:
    # on the form while a draft), whoever holds the phone later.
    page = html.unescape(client.get(f"/applications/{uid}").get_data(as_text=True))
    for typed in ("Death threats after a radio interview", "Rent for six months", "daughter"):
        assert typed not in page


#: What a defender types into a question of each kind, as it shows back in the form.
DETAIL_ANSWERS = {
    "text": "Answer canary {name}",
    "long": "A longer answer canary {name}",
    "int": "7",
    "money": "1250.50",
    "scope": "region",
    "where": "exile",
    "country": "UG",
}


class _FormValues(html.parser.HTMLParser):
    """The values a page's form holds, by field name, as a browser would send them."""

    def __init__(self):
        super().__init__()
        self.values, self._select, self._textarea = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type")
            if kind == "submit":
                self.values.setdefault("buttons", []).append(name)
            elif kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.values[name] = attrs.get("value")
            elif kind != "hidden":
                self.values[name] = attrs.get("value")
        elif tag == "select":
            self._select = name
        elif tag == "option" and "selected" in attrs and self._select:
            self.values[self._select] = attrs.get("value")
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea] += data


def _form_values(page):
    """The non-empty values of the page's form fields (a textarea's first line break is
    the markup's, not the value's)."""
    parser = _FormValues()
    # The language form every page carries is not the application's.
    parser.feed(re.sub(r'<form[^>]*class="language".*?</form>', "", page, flags=re.S))
    values = {
        k: v.removeprefix("\r\n") if isinstance(v, str) else v for k, v in parser.values.items()
    }
    return {k: v for k, v in values.items() if v and k != "buttons"}


def _everything(category):
    """Every field of the form of ``category`` filled in, details included."""
    data = {
        **{k: v for k, v in RELOCATION.items() if not k.startswith("details-")},
        "defender_name": "Canary Defender",
        "other_funders": "Asked another fund, no answer yet",
        "consent_referral": "y",
        "consent_story": "y",
    }
    for n in range(5):
        data[f"budget-{n}-description"] = f"Cost canary {n}"
        data[f"budget-{n}-amount"] = f"{n + 1}000.2{n}"
    for n in range(4):
        data[f"dependants-{n}-relation"] = f"relative {n}"
        data[f"dependants-{n}-age"] = str(n + 3)
    for n in range(2):
        data[f"references-{n}-organisation"] = f"Organisation {n}"
    for name, kind, _label, _required in CATEGORY_FIELDS[category]:
        data[f"details-{name}"] = DETAIL_ANSWERS[kind].format(name=name)
    return data


@pytest.mark.parametrize("category", list(Category))
def test_every_kind_of_draft_with_every_answer_reopens_and_is_sent(
    client, make_user, fund, category
):
    """A draft holding every answer of its kind, money details included (the monthly
    amount of longer-term support comes back from the draft as text), opens again with
    those answers in the form, and is sent."""
    login(client, make_user("applicant"))
    uid = start_application(client, category.value)
    data = _everything(category)
    saved = client.post(f"/applications/{uid}/edit", data={**data, "save": "1"})
    assert saved.location == f"/applications/{uid}/edit", saved.get_data(as_text=True)[:2000]
    reopened = client.get(f"/applications/{uid}/edit")
    assert reopened.status_code == 200
    assert _form_values(reopened.get_data(as_text=True)) == data
    sent = client.post(f"/applications/{uid}/edit", data={**data, "submit": "1"})
    assert sent.location == f"/applications/{uid}", sent.get_data(as_text=True)[:2000]
    case = application_by_uid(uid)
    assert case.status == ApplicationStatus.SUBMITTED
    assert case.amount_requested == sum(Decimal(f"{n + 1}000.2{n}") for n in range(5))
    assert client.get(f"/applications/{uid}").status_code == 200


def test_a_money_detail_a_draft_kept_as_text_shows_again_as_it_was(client, make_user, fund):
    """A draft keeps its details as text; an amount saved before the money rules held
    ("1E+3") is shown as it was, for its owner to correct, and refused when saved."""
    login(client, make_user("applicant"))
    uid = start_application(client, "longer_term")
    for kept, shown in (("120.5", "120.50"), ("1E+3", "1E+3"), ("１２", "12.00")):
        case = application_by_uid(uid)
        case.details = {"monthly_amount": kept, "months": 6}
        db.session.commit()
        page = client.get(f"/applications/{uid}/edit")
        assert page.status_code == 200, kept
        assert _form_values(page.get_data(as_text=True))["details-monthly_amount"] == shown
    refused = client.post(
        f"/applications/{uid}/edit", data={"details-monthly_amount": "1E+3", "save": "1"}
    )
    refused = refused_page(client, refused, f"/applications/{uid}/edit")
    assert "Enter the amount in figures" in refused.get_data(as_text=True)


def test_an_incomplete_application_lists_what_is_missing_and_keeps_the_draft(
    client, make_user, fund
):
    login(client, make_user("applicant"))
    uid = start_application(client, "medical")
    response = client.post(
        f"/applications/{uid}/edit", data={"threat": "canary-threat-text", "submit": "1"}
    )
    page = refused_page(client, response, f"/applications/{uid}/edit").get_data(as_text=True)
    shown = html.unescape(page)
    for item in (
        "The defender's human rights work",
        "Hospital, clinic or therapist",
        "At least one budget line",
        "Two references",
    ):
        assert item in shown
    assert "canary-threat-text" in shown, "what was typed stays on the page"
    assert application_by_uid(uid).status == ApplicationStatus.DRAFT
    assert application_by_uid(uid).threat == "canary-threat-text"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("budget-0-amount", "twelve", "Enter the amount in figures"),
        ("budget-0-amount", "-5", "Enter an amount above zero"),
        ("dependants-0-age", "500", "Enter an age from 0 to 120, in years."),
        ("threat", "x" * 4001, "Field cannot be longer than 4000 characters"),
        ("details-months", "many", "Enter a whole number in figures, such as 12."),
        ("dependants-0-age", "\u00b2", "Enter a whole number in figures, such as 12."),
        ("dependants-0-relation", "", "Say who this is to the defender"),
        ("country", "XX", "Not a valid choice"),
        ("budget-1-amount", "", "Enter the amount for this line"),
    ],
)
def test_bad_input_gets_a_clear_error_and_loses_nothing(
    client, make_user, fund, field, value, message
):
    login(client, make_user("applicant"))
    uid = start_application(client)
    data = {**RELOCATION, field: value, "save": "1"}
    response = client.post(f"/applications/{uid}/edit", data=data)
    html = refused_page(client, response, f"/applications/{uid}/edit").get_data(as_text=True)
    assert message in html
    assert "Documents evictions for land defenders" in html
    assert application_by_uid(uid).defender_work is None, "nothing half-saved"


def test_a_dependant_answered_wrongly_gets_one_message_in_the_page_language_at_its_question(
    client, make_user, fund
):
    """An age in words, or past 120, is one message in the defender's language; an age with
    no one it belongs to is asked at "relationship", where the answer is missing."""
    login(client, make_user("applicant", language="pt"))
    uid = start_application(client)
    data = {
        **RELOCATION,
        "dependants-0-relation": "mãe",
        "dependants-0-age": "sessenta e dois",
        "dependants-1-relation": "pai",
        "dependants-1-age": "150",
        "dependants-2-relation": "",
        "dependants-2-age": "5",
        "save": "1",
    }
    response = client.post(f"/applications/{uid}/edit", data=data)
    page = html.unescape(
        refused_page(client, response, f"/applications/{uid}/edit").get_data(as_text=True)
    )
    assert "Number must be" not in page and "Enter an age" not in page

    def errors_after(name):
        """The messages shown under the input ``name``: none when no list follows it."""
        after = page.split(f'name="{name}"', 1)[1].split("</td>", 1)[0]
        found = re.search(r'<ul class="errors">(.*?)</ul>', after, re.S)
        return re.findall(r"<li>(.*?)</li>", found[1]) if found else []

    (words,) = errors_after("dependants-0-age")
    assert "Escreva um número inteiro" in words
    (past,) = errors_after("dependants-1-age")
    assert "120" in past
    assert errors_after("dependants-2-age") == []
    (who,) = errors_after("dependants-2-relation")
    assert who.startswith("Indique quem é em relação à pessoa defensora")


def test_only_an_urgent_case_is_told_of_a_first_answer_within_a_day(client, make_user, fund):
    applicant = make_user("applicant")
    normal = make_case(fund, applicant_id=applicant.id, urgency=Urgency.NORMAL)
    urgent = make_case(fund, applicant_id=applicant.id, urgency=Urgency.URGENT)
    login(client, applicant)
    page = client.get(f"/applications/{normal.uid}").get_data(as_text=True)
    assert "The fund has your application and will answer soon." in page
    assert "within a day" not in page
    page = client.get(f"/applications/{urgent.uid}").get_data(as_text=True)
    assert "Urgent cases get a first answer within a day." in page


def test_numbers_typed_in_persian_or_arabic_digits_are_kept(client, make_user, fund):
    """A phone set to Persian types ۱۲ for an age: the answer is kept as 12, where the
    number box of the browser sent nothing and the age was lost without a word."""
    login(client, make_user("applicant"))
    uid = start_application(client)
    page = client.get(f"/applications/{uid}/edit").get_data(as_text=True)
    age = re.search(r'<input[^>]*name="dependants-0-age"[^>]*>', page)[0]
    assert 'type="text"' in age and 'inputmode="numeric"' in age
    data = {**RELOCATION, "dependants-0-relation": "daughter", "dependants-0-age": "۱۲"}
    data |= {"details-months": "\u0666", "save": "1"}
    assert client.post(f"/applications/{uid}/edit", data=data).status_code in (302, 303)
    case = application_by_uid(uid)
    assert case.dependants[0].age == 12
    assert case.details["months"] == 6


@pytest.mark.parametrize(
    "language, typed, refused",
    [
        ("ru", "15\u00a0000,50", "Запятая перед тремя цифрами"),
        ("tr", "20.000,50", "Üç rakamdan önce virgül"),
        ("pt", "1.500,50", "Uma vírgula antes de três algarismos"),
    ],
)
def test_a_defender_writes_cents_after_a_comma_as_their_language_does(
    client, make_user, fund, language, typed, refused
):
    """A budget typed as the defender's pages write amounts (15 000,50 ₽; 20.000,50 ₺) is
    kept to the cent; 1,500, which reads 1500 in English and 1.5 in theirs, is refused in
    their language and kept in its box to correct."""
    login(client, make_user("applicant", language=language))
    uid = start_application(client)
    data = {**RELOCATION, "budget-1-amount": typed, "save": "1"}
    assert client.post(f"/applications/{uid}/edit", data=data).status_code in (302, 303)
    expected = Decimal(typed.replace("\u00a0", "").replace(".", "").replace(",", "."))
    assert application_by_uid(uid).budget_lines[1].amount == expected
    # Opened again, the amount is written the language's way, and reads back the same.
    page = client.get(f"/applications/{uid}/edit").get_data(as_text=True)
    shown = input_value(page, "budget-1-amount")
    assert shown == format(expected, "f").replace(".", ",")
    data = {**RELOCATION, "budget-1-amount": shown, "save": "1"}
    assert client.post(f"/applications/{uid}/edit", data=data).status_code in (302, 303)
    assert application_by_uid(uid).budget_lines[1].amount == expected
    data = {**RELOCATION, "budget-1-amount": "1,500", "save": "1"}
    response = client.post(f"/applications/{uid}/edit", data=data)
    page = refused_page(client, response, f"/applications/{uid}/edit").get_data(as_text=True)
    assert refused in page and 'value="1,500"' in page


@pytest.mark.parametrize(
    "language, kenyan, chinese",
    [
        ("en", "KES · Kenyan Shilling", "CNY · Chinese Yuan"),
        ("ru", "KES · кенийский шиллинг", "CNY"),
    ],
)
def test_the_budgets_currency_is_chosen_by_its_name(
    client, make_user, fund, language, kenyan, chinese
):
    """The list of currencies names each in the reader's language beside its code, and
    holds the yuan, where China fell back to dollars."""
    login(client, make_user("applicant", language=language))
    uid = start_application(client, "relocation")
    page = html.unescape(client.get(f"/applications/{uid}/steps/budget").get_data(as_text=True))
    assert kenyan in page and chinese in page


def test_a_partner_refers_a_defender_with_recorded_consent(client, make_user, fund):
    partner = make_user("partner")
    login(client, partner)
    refused = client.get("/apply/new", query_string={"category": "medical"})
    page = html.unescape(refused.get_data(as_text=True))
    assert "needs the defender's consent" in page
    assert re.search(r'<input checked[^>]* value="medical"', page), "the choice stays"
    uid = start_application(client, "medical", consent="y", consent_method="in_person")
    case = application_by_uid(uid)
    assert case.partner_organisation_id == partner.partner_organisation_id
    assert case.applicant_id is None
    consent = db.session.execute(
        sa.select(Consent).where(Consent.application_id == case.id)
    ).scalar_one()
    assert consent.kind == ConsentKind.PARTNER_SUBMISSION and consent.method == "in_person"
    assert uid in client.get("/referrals").get_data(as_text=True)


def test_the_thread_carries_a_question_and_its_answer(app, client, make_user, fund):
    """The fund asks, the case waits; the applicant answers, the review resumes."""
    applicant = make_user("applicant")
    reviewer = make_user("reviewer")
    login(client, applicant)
    uid = start_application(client)
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "submit": "1"})
    change_status(application_by_uid(uid), ApplicationStatus.IN_REVIEW, actor=reviewer)
    db.session.commit()
    staff = app.test_client()
    login(staff, reviewer)
    # The reviewer is told before sending that the message asks, and pauses the case.
    before = staff.get(f"/applications/{uid}").get_data(as_text=True)
    thread = before.split('id="thread"')[1].split("</section>")[0]
    assert "a message from the fund is a question" in thread and "Send as a question" in thread
    staff.post(f"/applications/{uid}", data={"body": "Could you send the visa letter?"})
    assert application_by_uid(uid).status == ApplicationStatus.INFO_REQUESTED
    page = client.get(f"/applications/{uid}").get_data(as_text=True)
    assert "Could you send the visa letter?" in page and "question" in page
    # The question comes first, right under the status that points to it, before the
    # consents and documents a phone would otherwise scroll past.
    assert page.index('id="thread"') < page.index('id="consents"') < page.index('id="documents"')
    assert "Send message" in page and "Send as a question" not in page
    client.post(f"/applications/{uid}", data={"body": "The letter comes next week."})
    assert application_by_uid(uid).status == ApplicationStatus.IN_REVIEW
    staff_view = staff.get(f"/applications/{uid}").get_data(as_text=True)
    assert "The applicant side" in staff_view and "The letter comes next week." in staff_view
    for typed in (
        "Death threats after a radio interview",
        "Visa on arrival",
        "daughter",
        "Reference Two",
        "KES",
    ):
        assert typed in staff_view, typed
    bodies = [m.body for m in db.session.execute(sa.select(Message)).scalars()]
    assert bodies == ["Could you send the visa letter?", "The letter comes next week."]
    empty = client.post(f"/applications/{uid}", data={"body": ""})
    empty = refused_page(client, empty, f"/applications/{uid}#thread")
    assert "Write a message first" in empty.get_data(as_text=True)


@pytest.mark.parametrize("intruder", ["applicant", "partner", "reviewer", "donor", "admin"])
def test_nobody_else_reaches_a_case(app, client, make_user, make_fund, fund, intruder):
    """Another applicant, another partner, staff of another fund, donors, admins: all 404."""
    owner = make_user("applicant")
    login(client, owner)
    uid = start_application(client)
    client.post(f"/applications/{uid}/edit", data={**RELOCATION, "save": "1"})
    other_fund = make_fund("Other Fund")
    fields = {"fund_id": other_fund.id} if intruder in ("reviewer", "admin", "donor") else {}
    stranger = app.test_client()
    login(stranger, make_user(intruder, **fields))
    for path in (f"/applications/{uid}", f"/applications/{uid}/edit"):
        assert stranger.get(path).status_code in (403, 404)
        assert stranger.post(path, data={"body": "x", **RELOCATION}).status_code in (403, 404)
    assert stranger.get(f"/applications/{uid}").status_code == 404
    assert application_by_uid(uid).defender_work == RELOCATION["defender_work"]


def test_applicant_pages_have_no_script_and_stay_small(client, make_user, fund):
    login(client, make_user("applicant"))
    uid = start_application(client)
    with client.get("/static/style.css") as css:
        css_size = len(css.get_data())
    for path in ("/my", "/apply", f"/applications/{uid}/edit", f"/applications/{uid}"):
        html = client.get(path).get_data()
        assert b"<script" not in html.lower(), path
        assert len(html) + css_size < 100_000, path


def test_the_applicant_sides_pages_lead_back_to_its_list(client, make_user, fund):
    """From a case page (or any other), the main menu leads a defender back to their
    applications and a partner to the cases it referred (only the fund's name did)."""
    applicant = make_user("applicant")
    case = make_case(fund, applicant_id=applicant.id)
    login(client, applicant)
    menu = _main_menu(client.get(f"/applications/{case.uid}").get_data(as_text=True))
    assert '<a href="/my">Your applications</a>' in menu and "/referrals" not in menu
    client.post("/logout", data={"csrf_token": csrf_token(client, "/my")})
    login(client, make_user("partner"))
    menu = _main_menu(client.get("/account").get_data(as_text=True))
    assert '<a href="/referrals">Cases you referred</a>' in menu and 'href="/my"' not in menu


def _main_menu(html):
    return html.split('<nav aria-label="Main">')[1].split("</nav>")[0]
