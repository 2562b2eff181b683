"""An admin says where each reviewer's, manager's and finance officer's alerts go and
which reviewers and managers are on duty."""

from hrdfund.audit.models import AuditEvent
from hrdfund.auth.services import set_alert_settings
from hrdfund.core.extensions import db
from tests.conftest import login, refused_page


def _settings(client, user, **fields):
    data = {f"u{user.id}-user": user.uid}
    data.update({f"u{user.id}-{k}": v for k, v in fields.items()})
    return client.post("/admin/users/alerts", data=data)


def test_an_admin_sets_the_alert_email_and_duty(client, make_user):
    reviewer = make_user("reviewer")
    login(client, make_user("admin"))
    page = client.get("/admin/users").get_data(as_text=True)
    assert f'name="u{reviewer.id}-email"' in page
    response = _settings(client, reviewer, email="rita@fund.example", on_duty="y")
    assert response.status_code == 302
    db.session.refresh(reviewer)
    assert (reviewer.contact, reviewer.on_duty) == ("rita@fund.example", True)
    # Unticking takes the reviewer off duty; the address is encrypted at rest.
    _settings(client, reviewer, email="rita@fund.example")
    db.session.refresh(reviewer)
    assert reviewer.on_duty is False
    assert b"rita@fund.example" not in bytes(reviewer._contact)


def test_a_bad_address_is_refused_and_nothing_changes(client, make_user):
    reviewer = make_user("reviewer")
    login(client, make_user("admin"))
    response = _settings(client, reviewer, email="not an address", on_duty="y")
    page = refused_page(client, response, f"/admin/users#account-{reviewer.uid}")
    page = page.get_data(as_text=True)
    assert "Enter an email address, or leave it empty." in page
    assert 'value="not an address"' in page, "what was typed comes back in its field"
    db.session.refresh(reviewer)
    assert (reviewer.contact, reviewer.on_duty) == (None, False)


def test_only_staff_of_the_admins_fund_can_be_set(client, make_user, make_fund):
    other_fund = make_fund("Other Fund")
    outsider = make_user("reviewer", fund_id=other_fund.id)
    applicant = make_user("applicant")
    login(client, make_user("admin"))
    assert _settings(client, outsider, on_duty="y").status_code == 404
    assert _settings(client, applicant, on_duty="y").status_code == 404
    db.session.refresh(outsider)
    assert outsider.on_duty is False


def test_a_manager_cannot_change_alert_settings(client, make_user):
    reviewer = make_user("reviewer")
    login(client, make_user("manager"))
    assert _settings(client, reviewer, on_duty="y").status_code == 403


def test_the_settings_service_keeps_an_empty_address_as_none_and_audits_the_change(make_user):
    manager, admin = make_user("manager"), make_user("admin")
    set_alert_settings(manager, "  ", "y", admin)
    assert (manager.contact, manager.on_duty) == (None, True)
    entry = db.session.execute(
        db.select(AuditEvent).where(AuditEvent.action == "auth.alert_settings")
    ).scalar_one()
    assert (entry.actor, entry.object_id) == (f"u{admin.id}", manager.uid)


def test_an_admin_sets_where_finance_alerts_go_but_not_duty(client, make_user):
    officer = make_user("finance")
    login(client, make_user("admin"))
    page = client.get("/admin/users").get_data(as_text=True)
    assert f'name="u{officer.id}-email"' in page
    assert f'name="u{officer.id}-on_duty"' not in page
    # Duty says who hears of a new case first: it means nothing for finance, even sent.
    response = _settings(client, officer, email="pay@fund.example", on_duty="y")
    assert response.status_code == 302
    db.session.refresh(officer)
    assert (officer.contact, officer.on_duty) == ("pay@fund.example", False)
