"""A fund's outbox page, for its admin: the alerts on the fund's cases counted (never what
they say nor whom they are for), what stops them going out, and another round for those
the mail server refused so often that they were given up; another fund's alerts count
for nothing here and are never tried again from here."""

import pytest
import sqlalchemy as sa

from hrdfund.alerts import notices, outbox
from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.cases import alerts
from hrdfund.cases.models import Application
from hrdfund.core.extensions import db
from tests.conftest import audit_actions, csrf_token, login, make_case
from tests.test_staff_alerts import Mailbox, serving_mail

PAGE = "/fund/outbox"
TRY_AGAIN = "/fund/outbox/try-again"


class RefusingMailbox(Mailbox):
    """A mail server that refuses every message while ``refusing`` is set."""

    refusing = True

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.refusing:
            return "550 mailbox unavailable"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def mailbox(app):
    yield from serving_mail(app, RefusingMailbox())


def _fund_with_alerts(make_fund, make_user, fund, name, count):
    """A case of ``fund`` (a new fund when ``name`` is given) with ``count`` urgent-case
    alerts queued, one per reviewer; returns the fund."""
    if name:
        fund = make_fund(name)
    case = make_case(fund)
    reviewers = [
        make_user(
            "reviewer", fund_id=fund.id, contact=f"{'other' if name else 'own'}{n}@staff.example"
        )
        for n in range(count)
    ]
    assert outbox.notify_users(reviewers, case, AlertKind.URGENT_CASE) == count
    db.session.commit()
    return fund


def _page(client):
    response = client.get(PAGE)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _row(page, label):
    """The figure in the row headed ``label``."""
    after = page.split(f'<th scope="row">{label}</th><td>', 1)[1]
    return after.split("</td>", 1)[0]


def test_given_up_alerts_are_counted_and_tried_again_for_the_admins_fund_only(
    app, client, fund, make_fund, make_user, mailbox
):
    _fund_with_alerts(make_fund, make_user, fund, None, 2)
    other = _fund_with_alerts(make_fund, make_user, fund, "Other Fund", 3)
    for _run in range(outbox.MAX_ATTEMPTS):
        assert alerts.send_pending() == 0
    assert mailbox.messages == []
    admin = make_user("admin")
    login(client, admin)

    page = _page(client)
    assert _row(page, "Waiting to go out") == "0"
    assert _row(page, "Alerts to staff") == "2"
    assert _row(page, "Notices to the applicant side") == "0"
    assert "staff.example" not in page and "reviewer" not in page
    assert "urgent" not in page.lower()
    assert "No mail server is set" not in page

    response = client.post(TRY_AGAIN, data={"csrf_token": csrf_token(client, PAGE)})
    assert response.status_code == 302
    assert "2 alerts will be tried again at the next sending." in _page(client)
    assert audit_actions().count("alerts.tried_again") == 1
    page = _page(client)
    assert _row(page, "Waiting to go out") == "2"
    assert "None: no alert was refused so often" in page

    mailbox.refusing = False
    assert alerts.send_pending() == 2
    assert sorted(r[0] for r, _body in mailbox.wait_for(2)) == [
        "own0@staff.example",
        "own1@staff.example",
    ]
    assert _row(_page(client), "Sent in the last 7 days") == "2"
    # The other fund's alerts stayed given up: its own admin sees them.
    attempts = db.session.scalars(
        sa.select(Alert.attempts).where(Alert.sent_at.is_(None)).order_by(Alert.id)
    ).all()
    assert attempts == [outbox.MAX_ATTEMPTS] * 3
    other_admin = app.test_client()
    login(other_admin, make_user("admin", fund_id=other.id))
    assert _row(_page(other_admin), "Alerts to staff") == "3"


def test_the_page_says_what_stops_alerts_going_out(app, client, fund, make_fund, make_user):
    """No mail server; a setting that names this fund (not another's) holds back its
    discreet notices, counted apart from what waits."""
    _fund_with_alerts(make_fund, make_user, fund, None, 1)
    applicant = make_user("applicant", contact="defender@mail.example")
    assert outbox.queue_notice(applicant, Application.query.one()) == 1
    db.session.commit()
    make_fund("Elsewhere")
    login(client, make_user("admin"))
    page = _page(client)
    assert "No mail server is set (HRDFUND_SMTP_HOST)" in page
    # The default sender, hrdfund@localhost, names the product.
    (warning,) = [p for p in page.split("<p") if "are held back" in p]
    assert "HRDFUND_MAIL_FROM (hrdfund@localhost)" in warning
    assert _row(page, "Waiting to go out") == "1"
    assert _row(page, "Notices held back by a setting") == "1"
    assert _row(page, "Oldest waiting since").endswith(" UTC")
    app.config.update(
        NOTICE_MAIL_FROM="Notices <notices@mail.example>",
        SIGN_IN_URL="https://elsewhere.example/login",
    )
    # It names another fund only: that fund's notices are held back, not these.
    assert notices.held_back_by_settings() != []
    page = _page(client)
    assert "are held back" not in page
    assert _row(page, "Waiting to go out") == "2"
    fund.name = "Quillfeather"
    db.session.commit()
    app.config.update(
        SMTP_HOST="127.0.0.1",
        NOTICE_MAIL_FROM="Notices <notices@mail.example>",
        SIGN_IN_URL="https://quillfeather.example/login",
    )
    page = _page(client)
    assert "No mail server is set" not in page
    (warning,) = [p for p in page.split("<p") if "are held back" in p]
    assert "HRDFUND_SIGN_IN_URL (https://quillfeather.example/login)" in warning
    assert _row(page, "Waiting to go out") == "1"
    assert _row(page, "Notices held back by a setting") == "1"
    app.config["SIGN_IN_URL"] = "https://help.example/login"
    page = _page(client)
    assert "are held back" not in page and "held back by a setting" not in page
    assert _row(page, "Waiting to go out") == "2"


@pytest.mark.parametrize(
    "role", ["manager", "reviewer", "finance", "donor", "applicant", "partner", "network_admin"]
)
def test_only_the_funds_admin_opens_the_outbox_or_tries_again(
    app, client, fund, make_fund, make_user, role
):
    _fund_with_alerts(make_fund, make_user, fund, None, 1)
    db.session.execute(sa.update(Alert).values(attempts=outbox.MAX_ATTEMPTS))
    db.session.commit()
    login(client, make_user(role))
    assert client.get(PAGE).status_code == 403
    assert (
        client.post(TRY_AGAIN, data={"csrf_token": csrf_token(client, "/account")}).status_code
        == 403
    )
    db.session.expire_all()
    assert db.session.scalars(sa.select(Alert.attempts)).all() == [outbox.MAX_ATTEMPTS]
    assert "alerts.tried_again" not in audit_actions()


def test_trying_again_with_nothing_given_up_changes_nothing(client, fund, make_fund, make_user):
    _fund_with_alerts(make_fund, make_user, fund, None, 1)
    login(client, make_user("admin"))
    response = client.post(TRY_AGAIN, data={"csrf_token": csrf_token(client, PAGE)})
    assert response.status_code == 302
    assert "No alert was given up: there is nothing to try again." in _page(client)
    assert "alerts.tried_again" not in audit_actions()
