"""Whatever is typed into the applicant's forms, the answer is a page, never a crash, and
a rejected answer comes back with a message and the rest of what was typed."""

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import input_value, login, start_application

FIELDS = [
    "defender_name",
    "country",
    "gender",
    "urgency",
    "urgency_reason",
    "defender_work",
    "threat",
    "currency",
    "budget-0-description",
    "budget-0-amount",
    "budget-9-amount",
    "dependants-0-relation",
    "dependants-0-age",
    "references-0-name",
    "references-1-contact",
    "other_funders",
    "details-scope",
    "details-destination_country",
    "details-people",
    "details-months",
    "details-stay_plan",
    "consent_referral",
    "budget-99-amount",
]
#: Text as people and attackers type it: any unicode, control characters, very long.
TEXT = st.one_of(
    st.text(max_size=300),
    # Oversized answers, built from a length so the generator stays small.
    st.integers(min_value=4001, max_value=9000).map(lambda n: ("défenseur ✊ \u202e" * n)[:n]),
    st.sampled_from(
        [
            "-1",
            "0",
            "1e9999",
            "NaN",
            "12.345",
            "１２",
            "<script>",
            "' OR 1=1 --",
            "\x00",
            "../../etc/passwd",
            "999999999999999.99",
        ]
    ),
)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _expected(values, statuses):
    """What a request may answer: a NUL character anywhere is refused as a bad request
    before any page sees it (PostgreSQL text cannot hold one); otherwise ``statuses``."""
    return (400,) if any("\x00" in value for value in values) else statuses


@pytest.fixture
def draft(client, make_user, fund):
    login(client, make_user("applicant"))
    return start_application(client, "relocation")


@pytest.mark.parametrize("backend", ["sqlite"])
@SETTINGS
@given(
    data=st.dictionaries(st.sampled_from(FIELDS), TEXT, max_size=8),
    action=st.sampled_from(["save", "submit"]),
)
def test_the_application_form_never_crashes(client, draft, backend, data, action):
    response = client.post(f"/applications/{draft}/edit", data={**data, action: "1"})
    assert response.status_code in _expected(data.values(), (302, 303)), response.status_code
    if response.status_code == 303:  # refused: back on the form, with the errors
        page = client.get(response.location)
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "Something went wrong" not in html
        assert 'class="errors"' in html or "error-summary" in html


@pytest.mark.parametrize("backend", ["sqlite"])
@SETTINGS
@given(login_name=st.one_of(st.none(), TEXT), seal=TEXT, password=TEXT, contact=TEXT)
def test_sign_up_never_crashes(client, backend, login_name, seal, password, contact):
    """Anything in place of the login and its seal, or the page's own (None)."""
    data = {"login": login_name, "login_seal": seal, "password": password, "contact": contact}
    data["password_again"] = password
    if login_name is None:
        page = client.get("/register").get_data(as_text=True)
        data.update({name: input_value(page, name) for name in ("login", "login_seal")})
    response = client.post("/register", data=data)
    if len(urlencode(data)) > client.application.config["MAX_ANONYMOUS_REQUEST_BYTES"]:
        # Far past every field's length: a visitor's request that large is not even read.
        assert response.status_code == 413
        return
    assert response.status_code in _expected((*data.values(),), (302, 303))
    if response.status_code == 303:  # refused: back on the form
        assert client.get(response.location).status_code == 200
    if response.status_code == 302:
        client.post("/logout")


@pytest.mark.parametrize("backend", ["sqlite"])
@SETTINGS
@given(body=TEXT, felt=TEXT)
def test_messages_and_reports_never_crash(client, draft, backend, body, felt):
    # A draft has no thread yet (404); the point is that no input makes it crash.
    response = client.post(f"/applications/{draft}", data={"body": body})
    assert response.status_code in _expected([body], (303, 404))
    assert client.post(
        f"/applications/{draft}/report", data={"felt_safer": felt, "continued_work": felt}
    ).status_code in _expected([felt], (303, 404))
