"""Before you apply, and the way out: a public page that says what the fund covers and how
fast it answers from the settings it really uses, what the form asks, how the answers are
kept and the safer ways to ask, in every language of the applicant side; and "Leave this
page", a plain link to a neutral site on every page the applicant side reads."""

import json
import re
from html.parser import HTMLParser

import pytest
from babel.messages.mofile import read_mo

from config import Config
from hrdfund import ROOT
from hrdfund.core.extensions import db
from hrdfund.core.quick_exit import QuickExitConfigError
from tests.conftest import login, start_application

PAGE = "/before-you-apply"


class _Links(HTMLParser):
    """Every link of a page: its attributes and its text."""

    def __init__(self):
        super().__init__()
        self.links, self._open = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open = {**dict(attrs), "text": ""}
            self.links.append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._open = None


def links(html):
    parser = _Links()
    parser.feed(html)
    return parser.links


def exit_links(html):
    """The "Leave this page" links of a page, in whatever language it speaks: the links in
    the bar the exit link sits in."""
    bar = re.search(r'<p class="leave">(.*?)</p>', html, re.S)
    return links(bar.group(1)) if bar else []


def text(html):
    """What a reader sees of the page's main part, spaces folded."""
    main = html[html.index('<main id="main">') :]
    return " ".join(re.sub(r"<[^>]+>", " ", main).replace("&#39;", "'").split())


def test_anyone_reads_it_without_an_account_from_the_sign_in_and_sign_up_pages(
    app, fund, make_user
):
    visitor = app.test_client()
    for start in ("/login", "/register", "/funds"):
        page = visitor.get(start).get_data(as_text=True)
        assert PAGE in [link.get("href") for link in links(page)], start
    response = visitor.get(PAGE)
    assert response.status_code == 200
    seen = text(response.get_data(as_text=True))
    assert "Before you apply" in seen and "Create an account to apply" in seen
    # The site's start page sends a visitor to the sign-in page, which links here; and the
    # page where an application starts links here too.
    assert visitor.get("/").location == "/login"
    applicant = app.test_client()
    login(applicant, make_user("applicant"))
    assert PAGE in [
        link.get("href") for link in links(applicant.get("/apply").get_data(as_text=True))
    ]


def test_it_lists_the_funds_categories_and_the_form_questions_of_each(app, fund):
    fund.categories = ["medical", "legal"]
    db.session.commit()
    seen = text(app.test_client().get(PAGE).get_data(as_text=True))
    covered = seen[seen.index("What the fund covers") :]
    covered = covered[covered.index("What the fund covers", 5) : covered.index("Who may apply", 30)]
    assert "Medical costs" in covered and "Legal fees" in covered
    assert "Relocation" not in covered
    # What to prepare: the questions of those kinds only, and the documents that help.
    assert "Hospital, clinic or therapist" in seen and "Lawyer or legal organisation" in seen
    assert "Destination country" not in seen
    assert "A medical report" in seen
    # A fund that names no kind of support covers every kind.
    fund.categories = []
    db.session.commit()
    seen = text(app.test_client().get(PAGE).get_data(as_text=True))
    assert "Relocation" in seen and "Destination country" in seen and "Digital security" in seen


def test_the_targets_shown_are_those_the_fund_uses(app, fund):
    visitor = app.test_client()
    seen = text(visitor.get(PAGE).get_data(as_text=True))
    urgent = "Urgent (danger now or within days): a first answer within"
    assert f"{urgent} 24 hours, a decision within 72 hours" in seen
    assert "Not urgent: a first answer within 72 hours, a decision within 14 days" in seen
    assert "have their own targets" not in seen
    # The environment's targets change: the page follows.
    app.config.update(
        TARGET_RESPONSE_HOURS_URGENT=6,
        TARGET_DECISION_HOURS_URGENT=30,
        TARGET_RESPONSE_HOURS_NORMAL=100,
        TARGET_DECISION_HOURS_NORMAL=500,
        TARGETS_BY_CATEGORY=json.dumps({"medical": {"urgent": [2, 12]}}),
    )
    seen = text(visitor.get(PAGE).get_data(as_text=True))
    assert "a first answer within 6 hours, a decision within 30 hours" in seen
    # Over three days, in days rounded up: never sooner than the target.
    assert "a first answer within 5 days, a decision within 21 days" in seen
    own = seen[seen.index("have their own targets") :]
    assert own.startswith(
        "have their own targets: Medical costs: urgent: a first answer within 2 hours, "
        "a decision within 12 hours; not urgent: a first answer within 5 days"
    )
    # The fund's own targets come before the environment's, and for every kind of support.
    fund.target_response_hours_urgent, fund.target_decision_hours_urgent = 1, 48
    db.session.commit()
    seen = text(visitor.get(PAGE).get_data(as_text=True))
    assert f"{urgent} 1 hour, a decision within 48 hours" in seen
    assert "have their own targets" not in seen


def test_what_is_kept_and_for_how_long_follows_the_settings(app, fund):
    visitor = app.test_client()
    seen = text(visitor.get(PAGE).get_data(as_text=True))
    assert "730 days after a case closes" in seen and "up to 8 MB each" in seen
    assert "Donors never see your name" in seen
    app.config.update(RETENTION_DAYS=365, HRDFUND_MAX_DOCUMENT_BYTES=5 * 1024 * 1024)
    seen = text(visitor.get(PAGE).get_data(as_text=True))
    assert (
        "365 days after a case closes" in seen and "deleted 365 days after its last change" in seen
    )
    assert "up to 5 MB each" in seen


def test_the_funds_contact_is_shown_as_written_or_its_absence_said(app, fund):
    visitor = app.test_client()
    seen = text(visitor.get(PAGE).get_data(as_text=True))
    assert "This fund lists no other way to reach it on this page" in seen
    app.config["FUND_CONTACT"] = "Signal +44 7700 900123 <or> help@fund.example"
    html = visitor.get(PAGE).get_data(as_text=True)
    assert "Signal +44 7700 900123 &lt;or&gt; help@fund.example" in html
    assert "lists no other way" not in html


def test_with_several_funds_the_page_describes_the_one_chosen(app, fund, make_fund):
    fund.categories = ["medical"]
    regional = make_fund("Regional Fund")
    regional.categories = ["relocation"]
    regional.countries = ["KE"]
    regional.target_response_hours_urgent, regional.target_decision_hours_urgent = 12, 36
    closed = make_fund("Closed Fund")
    closed.takes_applications = False
    db.session.commit()
    visitor = app.test_client()
    html = visitor.get(PAGE).get_data(as_text=True)
    chooser = [link["href"] for link in links(html) if "fund=" in link.get("href", "")]
    assert chooser == [f"{PAGE}?fund={regional.uid}", f"{PAGE}?fund={fund.uid}"]
    assert "Choose a fund above to see what it covers" in text(html)
    assert "Closed Fund" not in html
    seen = text(visitor.get(f"{PAGE}?fund={regional.uid}").get_data(as_text=True))
    covered = seen[seen.index("Regional Fund", seen.index("What the fund covers", 200)) :]
    assert covered.startswith("Regional Fund Relocation There is no fixed amount")
    assert "Defenders in: Kenya" in seen and "a first answer within 12 hours" in seen
    seen = text(visitor.get(f"{PAGE}?fund={fund.uid}").get_data(as_text=True))
    assert "Medical costs" in seen and "Defenders in every country" in seen
    # A fund that takes no applications, or a made-up one, is not described.
    for other in (closed.uid, "nothing", "x" * 500):
        response = visitor.get(f"{PAGE}?fund={other}")
        assert response.status_code == 200
        assert "Choose a fund above to see what it covers" in text(response.get_data(as_text=True))


def test_with_no_fund_taking_applications_the_page_says_so(app):
    seen = text(app.test_client().get(PAGE).get_data(as_text=True))
    assert "No fund takes applications at the moment" in seen
    assert "How your answers are kept" in seen


def _catalog(code):
    with open(f"{ROOT}/hrdfund/translations/{code}/LC_MESSAGES/messages.mo", "rb") as fh:
        return read_mo(fh)


def _sentences_of_the_page():
    """The English of every message the page's template uses (whole sentences)."""
    with open(f"{ROOT}/templates/cases/before.html") as fh:
        template = fh.read()
    return [found[1] for found in re.findall(r"_\((['\"])(.+?)\1[,)]", template)]


@pytest.mark.parametrize("code", Config.LANGUAGES)
def test_every_language_of_the_applicant_side_reads_it(app, fund, code):
    app.config["FUND_CONTACT"] = ""
    visitor = app.test_client()
    visitor.post("/language", data={"language": code, "next": PAGE})
    html = visitor.get(PAGE).get_data(as_text=True)
    assert f'<html lang="{code}" dir="{"rtl" if code in ("ar", "fa") else "ltr"}">' in html
    [leave] = exit_links(html)
    assert leave["href"] == Config.QUICK_EXIT_URL and leave["text"].strip()
    if code == "en":
        return
    catalog = _catalog(code)
    sentences = _sentences_of_the_page()
    assert len(sentences) > 40
    for english in sentences:
        translated = catalog.get(english)
        assert translated is not None and translated.string, (code, english)
    shown = html.replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')
    left = [s for s in sentences if len(s.split()) >= 3 and s.split("%(")[0] in shown]
    assert left == []
    title = catalog.get("Before you apply").string
    assert f"<h1>{title}</h1>" in html
    assert catalog.get("Leave this page").string == leave["text"].strip()


# --- Leave this page --------------------------------------------------------------------


def _html_pages(client, values):
    """Every page (GET) the client gets an HTML answer from, URL variables filled from
    ``values`` (others a dummy): (endpoint, path, HTML)."""
    for rule in client.application.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values.get(m[1], "dummy"), rule.rule)
        response = client.get(path)
        if response.mimetype == "text/html" and not response.location:
            yield rule.endpoint, path, response.get_data(as_text=True)


@pytest.mark.parametrize("who", ["visitor", "applicant", "partner"])
def test_every_applicant_side_page_has_the_way_out(app, fund, make_user, who):
    app.config["QUICK_EXIT_URL"] = "https://weather.example/today"
    client = app.test_client()
    values = {}
    if who != "visitor":
        login(client, make_user(who))
        consent = {"consent": "y", "consent_method": "phone"} if who == "partner" else {}
        values["uid"] = start_application(client, **consent)
    seen = set()
    for endpoint, path, html in _html_pages(client, values):
        assert exit_links(html) == [
            {
                "href": "https://weather.example/today",
                "rel": "noreferrer",
                "text": "Leave this page",
            }
        ], path
        # Found first: nothing on the page comes before it.
        assert html.index('<p class="leave">') < html.index("<header"), path
        seen.add(endpoint)
    expected = {"cases.before", "network.directory"}
    expected |= {
        "visitor": {"auth.login", "auth.register"},
        "applicant": {"cases.mine", "cases.start", "cases.edit", "cases.case", "auth.account"},
        "partner": {"cases.referrals", "cases.start", "cases.edit", "cases.case", "auth.account"},
    }[who]
    assert expected <= seen
    # Error pages the applicant side meets too.
    assert exit_links(client.get("/static/nothing-here.css").get_data(as_text=True))


@pytest.mark.parametrize("role", ["reviewer", "manager", "finance", "donor", "admin"])
def test_staff_and_donor_pages_do_without_it(app, fund, make_user, role):
    client = app.test_client()
    login(client, make_user(role))
    pages = list(_html_pages(client, {}))
    assert len(pages) > 3
    assert [path for _e, path, html in pages if exit_links(html)] == []


def test_the_page_says_where_the_way_out_goes_and_that_it_erases_nothing(app, fund):
    app.config["QUICK_EXIT_URL"] = "https://www.weather.example/today"
    seen = text(app.test_client().get(PAGE).get_data(as_text=True))
    assert '"Leave this page", at the top of every page, opens weather.example at once' in seen
    assert "It does not erase anything" in seen and "private window" in seen
    assert "Tor Browser" in seen and "Safest security level" in seen


@pytest.mark.parametrize(
    "url",
    [
        "",
        "javascript:alert(1)",
        "data:text/html,hello",
        "ftp://files.example/",
        "//weather.example/",
        "weather.example",
        "https://",
        "https://someone:secret@weather.example/",
        "https://weather.example/ today",
        "https://weather.example/\n",
    ],
)
def test_an_exit_address_a_link_should_not_lead_to_stops_the_start(app_config, url):
    from hrdfund import create_app

    with pytest.raises(QuickExitConfigError):
        create_app({**app_config, "QUICK_EXIT_URL": url})


def test_the_default_way_out_is_an_ordinary_site(app):
    assert app.config["QUICK_EXIT_URL"] == "https://www.wikipedia.org/"
    assert app.config["FUND_CONTACT"] == ""
