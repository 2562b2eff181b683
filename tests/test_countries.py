"""One list of countries wherever a country is offered or filtered: the codes ISO 3166-1
assigns, and Kosovo, less the territories where nobody lives; never Babel's pseudo-locales,
groupings or the codes ISO only reserves for parts of other countries."""

import html
import re

from babel import Locale
from wtforms import SelectField

from hrdfund.core import geo
from hrdfund.core.extensions import db
from hrdfund.pools.models import Donor
from tests.conftest import login, start_application

#: Babel names them, but nobody lives there or they are no country at all.
NEVER = {
    "XA": "Pseudo-Accents",
    "XB": "Pseudo-Bidi",
    "ZZ": "Unknown Region",
    "EU": "European Union",
    "EZ": "Eurozone",
    "UN": "United Nations",
    "QO": "Outlying Oceania",
    "AC": "Ascension Island",
    "CP": "Clipperton Island",
    "CQ": "Sark",
    "DG": "Diego Garcia",
    "EA": "Ceuta & Melilla",
    "IC": "Canary Islands",
    "TA": "Tristan da Cunha",
    "AQ": "Antarctica",
    "BV": "Bouvet Island",
    "GS": "South Georgia & South Sandwich Islands",
    "HM": "Heard & McDonald Islands",
    "TF": "French Southern Territories",
    "UM": "U.S. Outlying Islands",
    "IO": "British Indian Ocean Territory",
}


def test_the_rule_names_every_territory_babel_knows():
    """The 249 codes ISO 3166-1 assigns, less the 7 where nobody lives for good, plus
    Kosovo; every other two-letter territory of Babel is one the rule sets aside, so a
    new one in a later Babel has to be decided here."""
    listed = dict(geo.countries("en"))
    assert len(listed) == 243
    for code, name in NEVER.items():
        assert code not in listed, name
    for code, name in {
        "XK": "Kosovo",
        "PS": "Palestinian Territories",
        "EH": "Western Sahara",
        "TW": "Taiwan",
        "HK": "Hong Kong SAR China",
        "KE": "Kenya",
        "GG": "Guernsey",
    }.items():
        assert listed[code] == name
    babel = {c for c in Locale.parse("en").territories if len(c) == 2 and c.isalpha()}
    assert babel == set(listed) | geo.NOT_COUNTRIES | geo.UNINHABITED
    assert set(NEVER) == geo.NOT_COUNTRIES | geo.UNINHABITED


def test_names_are_in_the_readers_language_and_sorted_as_read():
    french = [name for _code, name in geo.countries("fr")]
    assert french[:3] == ["Afghanistan", "Afrique du Sud", "Albanie"]
    english = [name for _code, name in geo.countries("en")]
    assert english.index("Åland Islands") == english.index("Albania") - 1


def test_turkish_and_persian_lists_follow_their_own_alphabets():
    """A Turkish reader finds Çad (Chad) after every C, and Irak before İran; a Persian
    reader finds پاکستان (Pakistan) among the پ, after the ب, not at the end where
    Unicode's order puts the letters Arabic does not have; a name that is a word of
    another comes before it."""
    turkish = [name for _code, name in geo.countries("tr")]
    c_names = [n for n in turkish if n[0] == "C"]
    assert turkish.index(c_names[-1]) < turkish.index("Çad") < turkish.index("Çin")
    assert turkish.index("Irak") < turkish.index("İran") < turkish.index("İzlanda")
    assert turkish.index("Amerika Birleşik Devletleri") < turkish.index("Amerikan Samoası")
    persian = [name for _code, name in geo.countries("fa")]
    first_letters = [name[0] for name in persian]
    assert first_letters.index("پ") == len(first_letters) - first_letters[::-1].index("ب")
    assert first_letters.index("ت") > persian.index("پاکستان")
    assert persian.index("آلمان") < persian.index("اتریش")  # آ first, as dictionaries
    assert first_letters[-1] == "ی"


def _options(html, name):
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    return [v for v in re.findall(r'<option value="([^"]*)"', select.group(1)) if v]


def test_every_country_list_offers_the_same_countries(app, client, fund, make_user):
    codes = [code for code, _name in geo.countries("en")]
    applicant = app.test_client()
    login(applicant, make_user("applicant"))
    edit = f"/applications/{start_application(applicant, 'relocation')}/edit"
    form = applicant.get(edit).get_data(as_text=True)
    assert _options(form, "country") == codes
    assert _options(form, "details-destination_country") == codes
    for name in NEVER.values():
        assert name not in form
    refused = applicant.post(edit, data={"country": "XA", "save": "y"}, follow_redirects=True)
    assert "Not a valid choice" in refused.get_data(as_text=True)

    db.session.add(Donor(fund_id=fund.id, name="Donor"))
    db.session.commit()
    login(client, make_user("manager"))
    assert _options(client.get("/pools/new").get_data(as_text=True), "pool-countries") == codes


def test_the_country_list_drawn_once_is_drawn_as_the_plain_select_draws_it(app):
    """The countries' options are kept once drawn: each page still shows the list of its
    own language with its own answer chosen, exactly as WTForms' select would."""
    from wtforms import Form
    from wtforms.widgets import Select

    from hrdfund.cases.forms import COUNTRY_SELECT, country_choices

    def drawn(language, answer):
        with app.test_request_context(headers={"Accept-Language": language}):
            from flask_babel import refresh

            refresh()

            class Asked(Form):
                country = SelectField("Country", choices=country_choices, widget=COUNTRY_SELECT)

            field = Asked(data={"country": answer}).country
            return str(field(**{"aria-describedby": "hint"})), str(
                Select()(field, **{"aria-describedby": "hint"})
            )

    for language, answer in [("en", "KE"), ("en", "KE"), ("en", "UG"), ("fr", "KE"), ("en", None)]:
        kept, plain = drawn(language, answer)
        assert kept == plain
        if answer:
            assert f'<option selected value="{answer}">' in kept
    assert drawn("fr", "KE")[0] != drawn("en", "KE")[0], "each language its own names"


def test_the_forms_own_refusals_speak_the_applicants_language(app, make_user):
    """WTForms' own words for a choice not offered come in the applicant's language, in
    each language's words whatever the language of the request before."""
    for language, words in (("fr", "N'est pas un choix valide"), ("es", "Opción inválida")):
        applicant = make_user("applicant")
        applicant.language = language
        db.session.commit()
        client = app.test_client()
        login(client, applicant)
        edit = f"/applications/{start_application(client, 'relocation')}/edit"
        refused = client.post(edit, data={"country": "XA", "save": "y"}, follow_redirects=True)
        assert words in html.unescape(refused.get_data(as_text=True)), language


def test_a_name_with_another_in_brackets_is_found_by_either():
    """Spanish shows "Myanmar (Birmania)": a reader typing Myanmar or Birmania finds it;
    a bracketed word two names share ("RAE de Hong Kong (China)") still means China."""
    assert geo.country_code("Myanmar", "es") == "MM"
    assert geo.country_code("birmania", "es") == "MM"
    assert geo.country_code("Burma", "en") == "MM"
    assert geo.country_code("China", "es") == "CN"
    assert geo.country_code("Hong Kong", "es") is None
