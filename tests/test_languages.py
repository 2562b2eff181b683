"""Which language pages speak: chosen from the browser's preference among the languages
offered, changed from a small form on every page (no JavaScript), kept for the browser and
for the account; staff and donor pages speak English, French and Spanish."""

import re
from datetime import date, datetime

import pytest
from flask_babel import force_locale, gettext

from hrdfund.auth.models import User
from hrdfund.cases.models import ApplicationStatus, Consent, ConsentKind
from hrdfund.core import times
from hrdfund.core.extensions import db
from tests.conftest import csrf_token, login, make_case, pay, signed_in


def _offered(html):
    select = re.search(r'<select id="page-language" name="language">(.*?)</select>', html, re.S)
    return re.findall(r'<option value="([a-z]{2})"', select.group(1))


def _choose(client, code, page="/login", back=None):
    """Choose ``code`` with the form on ``page``, its CSRF token checked as in production."""
    config = client.application.config
    config["WTF_CSRF_ENABLED"] = True
    try:
        token = csrf_token(client, page)
        data = {"csrf_token": token, "language": code, "next": back or page}
        return client.post("/language", data=data)
    finally:
        config["WTF_CSRF_ENABLED"] = False


def _html_tag(client, path):
    return re.search(r"<html [^>]*>", client.get(path).get_data(as_text=True)).group(0)


def test_the_sign_in_page_offers_nine_languages_and_keeps_the_choice(client):
    html = client.get("/login").get_data(as_text=True)
    assert _offered(html) == ["en", "ar", "ru", "fr", "es", "fa", "pt", "zh", "tr"]
    assert 'lang="ar">العربية</option>' in html
    response = _choose(client, "ar")
    assert response.status_code == 303 and response.location.endswith("/login")
    assert _html_tag(client, "/login") == '<html lang="ar" dir="rtl">'
    _choose(client, "fa")
    assert _html_tag(client, "/register") == '<html lang="fa" dir="rtl">'
    _choose(client, "tr")
    assert _html_tag(client, "/login") == '<html lang="tr" dir="ltr">'


def test_without_a_choice_the_browser_preference_decides(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "pt-BR,pt;q=0.9,en;q=0.5"
    assert _html_tag(client, "/login") == '<html lang="pt" dir="ltr">'
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de-DE,de;q=0.9"
    assert _html_tag(client, "/login") == '<html lang="en" dir="ltr">'


def test_a_choice_without_its_token_or_outside_the_list_changes_nothing(app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    client.post("/language", data={"language": "ar", "next": "/login"})
    app.config["WTF_CSRF_ENABLED"] = False
    assert _html_tag(client, "/login") == '<html lang="en" dir="ltr">'
    _choose(client, "de")
    assert _html_tag(client, "/login") == '<html lang="en" dir="ltr">'


@pytest.mark.parametrize(
    "back",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "/\t/evil.example",  # a browser drops the tab and reads //evil.example
        "/\n/evil.example",
        "/x\r\nSet-Cookie: a=b",
    ],
)
def test_choosing_a_language_never_leaves_the_site(client, back):
    response = _choose(client, "fr", back=back)
    assert response.status_code == 303
    assert response.location in ("/", "http://localhost/")


def test_the_applicant_sides_choice_is_kept_for_the_account(app, client, make_user):
    applicant = make_user("applicant")
    _choose(client, "tr")  # chosen on the sign-in page, before signing in
    login(client, applicant)
    assert db.session.get(User, applicant.id).language == "tr"
    _choose(client, "fa", page="/my")
    assert db.session.get(User, applicant.id).language == "fa"
    elsewhere = app.test_client()  # another browser: the account's language
    login(elsewhere, applicant)
    assert _html_tag(elsewhere, "/my") == '<html lang="fa" dir="rtl">'


def test_signing_out_keeps_the_language_the_account_read_in(app, client, make_user):
    """A defender reading in Farsi signs out: the sign-in page that follows, and its
    message, are in Farsi, not English; the session holds nothing else of the account."""
    applicant = make_user("applicant")
    login(client, applicant)
    _choose(client, "fa", page="/my")
    signed_out = client.post("/logout", follow_redirects=True)
    html = signed_out.get_data(as_text=True)
    assert re.search(r"<html [^>]*>", html).group(0) == '<html lang="fa" dir="rtl">'
    with force_locale("fa"):
        assert gettext("You are signed out.") in html
    assert "You are signed out." not in html
    assert client.get("/my").location == "/login"
    with client.session_transaction() as kept:
        assert set(kept) <= {"language", "_flashes", "csrf_token"}


def test_staff_pages_speak_english_french_and_spanish(client, make_user):
    reviewer = make_user("reviewer")
    login(client, reviewer)
    assert _offered(client.get("/cases").get_data(as_text=True)) == ["en", "fr", "es"]
    _choose(client, "ar", page="/cases")
    assert db.session.get(User, reviewer.id).language is None
    assert _html_tag(client, "/cases") == '<html lang="en" dir="ltr">'
    _choose(client, "es", page="/cases")
    assert db.session.get(User, reviewer.id).language == "es"
    assert _html_tag(client, "/cases") == '<html lang="es" dir="ltr">'


def test_staff_see_the_language_the_applicant_side_reads(app, fund, make_user):
    applicant, reviewer = make_user("applicant"), make_user("reviewer")
    applicant.language = "ar"
    case = make_case(fund, applicant_id=applicant.id)
    db.session.commit()
    staff = app.test_client()
    login(staff, reviewer)
    html = staff.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "Language of the applicant side" in html
    assert "Arabic (العربية)" in html
    mine = app.test_client()
    login(mine, applicant)
    assert "Language of the applicant side" not in mine.get(f"/applications/{case.uid}").get_data(
        as_text=True
    )


def test_a_choice_made_before_signing_in_survives_the_second_step_and_wins(client, make_user):
    """Chosen on the sign-in page, the language holds through the code step and replaces
    the one the account kept."""
    manager = make_user("manager")
    manager.language = "en"
    db.session.commit()
    _choose(client, "es")
    login(client, manager)  # password, then the code from the authenticator
    assert _html_tag(client, "/cases") == '<html lang="es" dir="ltr">'
    assert db.session.get(User, manager.id).language == "es"


def test_words_follow_the_language_within_a_request_and_from_one_to_the_next(app, client):
    """The translations a request's words are looked up in are its language's: a notice
    written inside it in its reader's language has that language's words, the request's
    own words come back after it, and the next request in another language has its own."""
    # Each request in an app context of its own, as in a server (the test's is kept open).
    with app.app_context(), app.test_request_context(headers={"Accept-Language": "fr"}):
        french = gettext("Sign out")
        with force_locale("es"):
            spanish = gettext("Sign out")
        french_again = gettext("Sign out")
    with app.app_context(), app.test_request_context(headers={"Accept-Language": "en"}):
        english = gettext("Sign out")
    assert (french, spanish, french_again, english) == (
        "Se déconnecter",
        "Cerrar sesión",
        "Se déconnecter",
        "Sign out",
    )
    label = '<label for="page-language">{}</label>'
    for language, word in (("es", "Idioma"), ("fr", "Langue"), ("en", "Language")):
        page = client.get("/login", headers={"Accept-Language": language}).text
        assert label.format(word) in page, language


@pytest.mark.parametrize(
    ("code", "day", "month"),
    [
        ("en", "6 December 2026", "December 2026"),
        ("es", "6 de diciembre de 2026", "diciembre de 2026"),
        ("pt", "6 de dezembro de 2026", "dezembro de 2026"),
        ("fr", "6 décembre 2026", "décembre 2026"),
        ("ru", "6 декабря 2026\u202fг.", "декабрь 2026\u202fг."),
        ("zh", "2026年12月6日", "2026年12月"),
        ("ar", "6 ديسمبر 2026", "ديسمبر 2026"),
        ("fa", "6 دسامبر 2026", "دسامبر 2026"),
        ("tr", "6 Aralık 2026", "Aralık 2026"),
    ],
)
def test_days_and_months_are_written_as_each_language_writes_them(app, code, day, month):
    """Not one pattern with the words swapped in ("06 diciembre 2026", "06 十二月 2026"):
    each language's own order and words, and English day first."""
    with app.test_request_context(), force_locale(code):
        assert times.day(date(2026, 12, 6)) == day
        assert times.month(date(2026, 12, 1)) == month


def test_french_writes_the_first_of_a_month_as_an_ordinal(app):
    """ "1er juillet 2026", as French writes it, never "1 juillet"; other days as they are."""
    with app.test_request_context(), force_locale("fr"):
        assert times.day(date(2026, 7, 1)) == "1er juillet 2026"
        assert times.day(date(2026, 7, 11)) == "11 juillet 2026"
    with app.test_request_context(), force_locale("es"):
        assert times.day(date(2026, 7, 1)) == "1 de julio de 2026"


@pytest.mark.parametrize(
    ("code", "moment"),
    [
        ("en", "6 December 2026, 23:01 UTC"),
        ("zh", "2026年12月6日 23:01 UTC"),
        ("ar", "6 ديسمبر 2026، 23:01 UTC"),
        ("fa", "6 دسامبر 2026،\u200f 23:01 UTC"),
    ],
)
def test_a_day_and_its_time_are_joined_as_each_language_joins_them(app, code, moment):
    """A message's time in Chinese or Farsi with a Latin comma read ",2026" right to left:
    each language's own joining instead."""
    with app.test_request_context(), force_locale(code):
        assert times.day_and_time(datetime(2026, 12, 6, 23, 1)) == moment


def test_the_applicants_page_dates_its_consent_in_their_language(app, client, fund, make_user):
    """A defender reading Spanish reads when they gave their consent as Spanish writes a
    day."""
    applicant = make_user("applicant")
    case = make_case(fund, applicant_id=applicant.id)
    given = datetime(2026, 3, 4, 10)
    db.session.add(
        Consent(application_id=case.id, kind=ConsentKind.STORY, method="form", given_at=given)
    )
    db.session.commit()
    login(client, applicant)
    _choose(client, "es", page="/applications")
    html = client.get(f"/applications/{case.uid}").get_data(as_text=True)
    assert "4 de marzo de 2026" in html
    # The list says when each case was started the same way.
    started = client.get("/my").get_data(as_text=True).split('data-label="Fecha de inicio"')
    assert re.match(r">\d{1,2} de \w+ de \d{4}</td>", started[1]), started[1][:60]


def test_a_defender_reading_french_reads_their_application_in_agreeing_words(app, money_world):
    """Of their application (la demande) a defender reads "Approuvée", as "Reçue" and
    "Non approuvée", where staff read of the case "Approuvé"; a stipend is paid "entre
    juin et avril" (not "du juin au avril"), and a payment's day takes French's colon."""
    grant = money_world.grant("1200")
    money_world.plan(grant, kind="stipend", count=12, starts_on=date(2026, 6, 1))
    pay(money_world, grant, "100", paid_on=date(2026, 6, 2))
    applicant = signed_in(app, money_world.applicant)
    _choose(applicant, "fr", page="/my")
    page = applicant.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    assert "Versé chaque mois, entre juin 2026 et mai 2027." in page
    assert "2 juin 2026\u00a0: <strong>" in page
    assert "Prévu pour" in page and "Prévu le" not in page
    grant.application.status = ApplicationStatus.APPROVED
    db.session.commit()
    assert "Approuvée" in applicant.get("/my").get_data(as_text=True)
    manager = signed_in(app, money_world.m1)
    _choose(manager, "fr", page="/cases")
    case = manager.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    assert "Approuvé<" in case or "Approuvé " in case


#: Placeholders a day or a month of a year fills (times.day, times.month).
DATE_PLACEHOLDERS = re.compile(r"%\((day|start|end|month)\)s\.")


def test_a_date_that_ends_in_a_point_is_not_given_a_second(app):
    """Russian writes 23 июля 2025 г.: a sentence ending on such a date ends there, not
    on "г.." as it did. Each language whose days or months end in a point is checked."""
    ending = []
    for code in ("ar", "es", "fa", "fr", "pt", "ru", "tr", "zh"):
        with app.test_request_context(), force_locale(code):
            written = (times.day(date(2025, 7, 23)), times.month(date(2025, 6, 1)))
        if any(text.endswith(".") for text in written):
            ending.append(code)
    assert "ru" in ending
    doubled = []
    for code in ending:
        with open(f"hrdfund/translations/{code}/LC_MESSAGES/messages.po", encoding="utf-8") as fh:
            doubled += [
                (code, line)
                for line in fh
                if line.startswith("msgstr") and DATE_PLACEHOLDERS.search(line)
            ]
    assert doubled == []


def test_a_label_and_its_colon_read_as_each_language_writes_them(app, money_world):
    """French puts a space before a colon and Chinese writes its own colon; a word that
    names money received agrees as money does ("Reçu"), not as a case received does
    ("Reçue"), and the amount paid of a case reads "payé"."""
    grant = money_world.grant("1000")
    pay(money_world, grant, "400", instalment=None)
    manager = signed_in(app, money_world.m1)
    _choose(manager, "fr", page="/cases")
    pool = manager.get(f"/pools/{money_world.eur.uid}").get_data(as_text=True)
    assert "Bailleur de fonds\u00a0: Protection Donor" in pool
    assert '<th scope="row">Reçu</th>' in pool and '<th scope="row">Reçue</th>' not in pool
    case = manager.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    assert "Statut\u00a0:" in case and "Montant accordé\u00a0:" in case
    assert " · payé 400,00" in case
    # The application's urgency beside its reason.
    grant.application.urgency_reason = "Raid tomorrow"
    db.session.commit()
    case = manager.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    assert "Urgence</dt><dd>normal\u00a0: <bdi>Raid tomorrow</bdi>" in case
    applicant = signed_in(app, money_world.applicant)
    _choose(applicant, "zh", page="/my")
    mine = applicant.get(f"/applications/{grant.application.uid}").get_data(as_text=True)
    assert "状态：" in mine and "资助金额：" in mine
