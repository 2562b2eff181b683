"""An account that reads cases or moves money takes two people to make: the
administrator's link and a code a manager of the fund gives apart from it. An
administrator alone could otherwise invite a manager account for themselves, read every
case through it and be the second manager of any approval."""

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.auth import invitations
from hrdfund.auth import services as auth_services
from hrdfund.auth.models import Invitation, Role, User
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from tests.conftest import LOCKED, audit_actions, count_rows, signed_in
from tests.test_invitations import NEW_PASSWORD, _form, _invite

WAITING = "has still to confirm this invitation"
CODE = re.compile(r"<code>([A-Z0-9]{5}-[A-Z0-9]{5})</code>")


@pytest.fixture
def admin(make_user):
    return make_user("admin")


def _opened(app, path):
    invitee = app.test_client()
    assert invitee.get(path).status_code == 303
    return invitee


def _confirmed_by(client, login="mark.manager"):
    """A manager confirms the invitation at ``login`` through the pages; returns the code
    the page shows."""
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "waits for a manager to confirm it" in dashboard
    assert 'href="/fund/invitations"' in dashboard
    page = client.get("/fund/invitations").get_data(as_text=True)
    assert login in page
    uid = db.session.execute(sa.select(Invitation.uid).where(Invitation.login == login)).scalar()
    shown = client.post(f"/fund/invitations/{uid}/confirm")
    assert shown.status_code == 200
    return CODE.search(shown.get_data(as_text=True)).group(1)


def test_an_administrator_alone_cannot_open_a_manager_account(app, admin, make_user):
    """The attack: an administrator invites a manager account and opens the link
    themselves. Without a manager's code the account is never made, and no attempt is
    counted while the invitation waits."""
    boss = signed_in(app, admin)
    response, path = _invite(boss, role="manager", login="mark.manager", confirm=False)
    assert "a manager of the fund confirms the invitation" in response.get_data(as_text=True)
    assert "Waits for a manager to confirm it" in boss.get("/admin/users").get_data(as_text=True)
    invitee = _opened(app, path)
    page = invitee.get("/invitation").get_data(as_text=True)
    assert WAITING in page and 'name="password"' not in page
    posted = invitee.post("/invitation", data=_form(path))
    assert posted.location == "/invitation"
    assert count_rows(User) == 1
    # The administrator may neither list nor confirm invitations.
    uid = db.session.execute(sa.select(Invitation.uid)).scalar_one()
    assert boss.get("/fund/invitations").status_code == 403
    assert boss.post(f"/fund/invitations/{uid}/confirm").status_code == 403
    with pytest.raises(invitations.InvitationError, match="Only a manager"):
        invitations.confirm_invitation(admin, db.session.get(Invitation, 1))
    assert db.session.execute(sa.select(Invitation.confirmed_at)).scalar_one() is None


def test_a_manager_confirms_and_the_code_with_the_link_opens_the_account(app, admin, make_user):
    manager = make_user("manager")
    boss = signed_in(app, admin)
    _response, path = _invite(boss, role="manager", login="mark.manager", confirm=False)
    code = _confirmed_by(signed_in(app, manager))
    row = db.session.execute(sa.select(Invitation)).scalar_one()
    assert row.confirmed_by_id == manager.id and row.confirmed_at is not None
    assert code.replace("-", "") not in (row.code_hash or "")
    assert "Confirmed by a manager" in boss.get("/admin/users").get_data(as_text=True)
    # Confirmed, it is no longer counted as waiting; its code lost (the form sent twice),
    # a manager shows a new one and the earlier stops working.
    again = signed_in(app, manager)
    assert "Invitations to confirm" not in again.get("/dashboard").get_data(as_text=True)
    listed = again.get("/fund/invitations").get_data(as_text=True)
    assert "mark.manager" in listed and "Show a new code" in listed
    lost = code
    code = CODE.search(
        again.post(f"/fund/invitations/{row.uid}/confirm").get_data(as_text=True)
    ).group(1)
    assert code != lost and "auth.invitation_code_renewed" in audit_actions()

    invitee = _opened(app, path)
    page = invitee.get("/invitation").get_data(as_text=True)
    assert 'name="code"' in page
    # No code: said plainly, nothing made.
    invitee.post("/invitation", data={**_form(path), "code": ""})
    assert "Enter the code a manager of the fund gave you." in invitee.get("/invitation").get_data(
        as_text=True
    )
    # A wrong code, the earlier one among them: said, nothing made.
    invitee.post("/invitation", data={**_form(path), "code": lost})
    assert "not the code a manager of the fund gave" in invitee.get("/invitation").get_data(
        as_text=True
    )
    invitee.post("/invitation", data={**_form(path), "code": "AAAAA-AAAAA"})
    assert "not the code a manager of the fund gave" in invitee.get("/invitation").get_data(
        as_text=True
    )
    assert count_rows(User) == 2
    # The code as a person types it: lower case, without its dash.
    answer = invitee.post(
        "/invitation", data={**_form(path), "code": code.lower().replace("-", "")}
    )
    assert answer.location == "/login/code"
    made = db.session.execute(sa.select(User).where(User.login == "mark.manager")).scalar_one()
    assert (made.role, made.fund_id) == (Role.MANAGER, admin.fund_id)
    assert "auth.invitation_confirmed" in audit_actions()
    event = db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "auth.invitation_confirmed")
    ).scalar_one()
    assert event.actor == f"u{manager.id}"
    assert code not in event.payload and code.replace("-", "") not in event.payload


def test_wrong_codes_count_against_the_login_as_wrong_passwords_do(app, admin, make_user):
    """Guessing the code is held to the sign-in limits: five wrong codes lock the login
    for this browser, the right code included; each wrong code is an audit entry in the
    fund's chain, with no password hashed for it."""
    _response, path = _invite(signed_in(app, admin), role="finance", login="fay.finance")
    invitee = _opened(app, path)
    hashed = []
    real = auth_services.hash_password
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_services, "hash_password", lambda p: hashed.append(1) or real(p))
        for _n in range(5):
            invitee.post("/invitation", data={**_form(path), "code": "BBBBB-BBBBB"})
    assert hashed == []
    answer = invitee.post("/invitation", data=_form(path))
    assert answer.location == "/invitation"
    assert LOCKED in invitee.get("/invitation").get_data(as_text=True)
    assert count_rows(User) == 1
    refused = (
        db.session.execute(
            sa.select(AuditEvent).where(AuditEvent.action == "auth.invitation_code_refused")
        )
        .scalars()
        .all()
    )
    assert len(refused) == 5 and {e.chain for e in refused} == {admin.fund_id}
    assert "auth.sign_in_locked" in audit_actions()


def test_only_a_manager_of_the_invitations_own_fund_confirms_it(app, admin, make_user, make_fund):
    _invite(signed_in(app, admin), role="reviewer", login="rita.reviewer", confirm=False)
    uid = db.session.execute(sa.select(Invitation.uid)).scalar_one()
    other_fund = make_fund("Another Fund")
    elsewhere = signed_in(app, make_user("manager", fund_id=other_fund.id))
    assert "rita.reviewer" not in elsewhere.get("/fund/invitations").get_data(as_text=True)
    assert elsewhere.post(f"/fund/invitations/{uid}/confirm").status_code == 404
    for role in ("reviewer", "finance", "donor", "applicant"):
        assert signed_in(app, make_user(role)).post(
            f"/fund/invitations/{uid}/confirm"
        ).status_code in (403, 404), role
    assert db.session.execute(sa.select(Invitation.confirmed_at)).scalar_one() is None


def test_a_donor_invitation_needs_no_code(app, admin, make_donor):
    donor = make_donor("Donor B")
    _response, path = _invite(
        signed_in(app, admin), role="donor", login="dora.donor", donor=donor.uid
    )
    invitee = _opened(app, path)
    assert 'name="code"' not in invitee.get("/invitation").get_data(as_text=True)
    assert invitee.post("/invitation", data=_form(path)).location == "/login/code"
    with pytest.raises(invitations.InvitationError, match="needs no confirmation"):
        invitations.confirm_invitation(None, db.session.execute(sa.select(Invitation)).scalar_one())


def test_the_operator_confirms_for_a_fund_with_no_manager(app, admin, runner):
    _response, path = _invite(
        signed_in(app, admin), role="manager", login="first.manager", confirm=False
    )
    result = runner.invoke(args=["hrdfund", "confirm-invitation", "first.manager"])
    assert result.exit_code == 0, result.output
    code = re.search(r"apart from the link: ([A-Z0-9]{5}-[A-Z0-9]{5})", result.output).group(1)
    invitee = _opened(app, path)
    answer = invitee.post("/invitation", data={**_form(path), "code": code})
    assert answer.location == "/login/code"
    assert db.session.execute(sa.select(Invitation.confirmed_by_id)).scalar_one() is None
    assert "Test Fund" in result.output
    again = runner.invoke(args=["hrdfund", "confirm-invitation", "first.manager"])
    assert again.exit_code != 0 and "No invitation at that login is open." in again.output
    assert NEW_PASSWORD not in result.output


def test_the_operator_leaves_a_fund_with_a_manager_to_its_manager(app, admin, make_user, runner):
    make_user("manager")
    _invite(signed_in(app, admin), role="finance", login="fay.finance", confirm=False)
    result = runner.invoke(args=["hrdfund", "confirm-invitation", "fay.finance"])
    assert result.exit_code != 0 and "The fund has a manager" in result.output
    assert db.session.execute(sa.select(Invitation.confirmed_at)).scalar_one() is None


def test_a_code_lapses_when_the_manager_who_gave_it_is_deactivated(app, admin, make_user):
    """A manager confirms an invitation, then leaves: their account deactivated, the code
    they gave stops working, and the invitation waits for a manager again (another
    confirms it; the new code opens the account). Only codes of open invitations lapse, and
    only a manager's: each lapse is an audit entry."""
    leaving, staying = make_user("manager"), make_user("manager")
    boss = signed_in(app, admin)
    _response, path = _invite(boss, role="finance", login="fay.finance", confirm=False)
    code = _confirmed_by(signed_in(app, leaving), login="fay.finance")
    uid = db.session.execute(sa.select(User.uid).where(User.id == leaving.id)).scalar_one()
    assert boss.post(f"/admin/users/{uid}/deactivate").status_code == 302
    row = db.session.execute(sa.select(Invitation)).scalar_one()
    assert (row.confirmed_at, row.confirmed_by_id, row.code_hash) == (None, None, None)
    assert "Waits for a manager to confirm it" in boss.get("/admin/users").get_data(as_text=True)
    assert audit_actions().count("auth.invitation_confirmation_lapsed") == 1
    invitee = _opened(app, path)
    page = invitee.get("/invitation").get_data(as_text=True)
    assert WAITING in page and 'name="password"' not in page
    invitee.post("/invitation", data={**_form(path), "code": code})
    assert count_rows(User) == 3
    fresh = _confirmed_by(signed_in(app, staying), login="fay.finance")
    answer = invitee.post("/invitation", data={**_form(path), "code": fresh})
    assert answer.location == "/login/code"
    # Deactivating the manager who confirmed an invitation already used changes nothing.
    uid = db.session.execute(sa.select(User.uid).where(User.id == staying.id)).scalar_one()
    boss.post(f"/admin/users/{uid}/deactivate")
    assert db.session.execute(sa.select(Invitation.confirmed_by_id)).scalar_one() == staying.id
    assert audit_actions().count("auth.invitation_confirmation_lapsed") == 1


def test_accounts_opened_with_the_link_alone_are_flagged_for_the_administrator(
    app, admin, make_user
):
    """An account invited before a manager's code was asked (its invitation accepted, never
    confirmed) carries a note on Accounts asking for a manager's check; one whose
    invitation the operator confirmed does not."""
    boss = signed_in(app, admin)
    old = make_user("reviewer", login="old.reviewer")
    checked = make_user("finance", login="fay.finance")
    for user, confirmed in ((old, None), (checked, utcnow())):
        db.session.add(
            Invitation(
                fund_id=admin.fund_id,
                role=user.role,
                login=user.login,
                token_hash=f"{user.id:032d}",
                invited_by_id=admin.id,
                expires_at=utcnow() + timedelta(days=1),
                accepted_at=utcnow(),
                confirmed_at=confirmed,
                code_hash="0" * 32 if confirmed else None,
                user_id=user.id,
            )
        )
    db.session.commit()
    page = boss.get("/admin/users").get_data(as_text=True)
    note = "Opened with the invitation link alone"
    assert page.count(note) == 1
    row = page.split(f'id="account-{old.uid}"')[1].split("</tr>")[0]
    assert note in row
    # The purge deletes the confirmed one's used invitation, and keeps what marks the other.
    assert invitations.forget_closed() == 1
    assert boss.get("/admin/users").get_data(as_text=True).count(note) == 1


def test_a_code_stops_working_whenever_its_manager_no_longer_is_one(app, admin, make_user):
    """However the confirming manager stopped being an active manager of the fund (their
    account turned off before codes lapsed with it, by a purge or by hand), the invitation
    waits for a manager again: the code opens nothing, and the dashboard counts it."""
    leaving, staying = make_user("manager"), make_user("manager")
    _response, path = _invite(signed_in(app, admin), role="reviewer", confirm=False)
    code = _confirmed_by(signed_in(app, leaving), login="rita.reviewer")
    db.session.get(User, leaving.id).active = False
    db.session.commit()
    assert invitations.waiting_for_manager(admin.fund_id) == 1
    invitee = _opened(app, path)
    assert WAITING in invitee.get("/invitation").get_data(as_text=True)
    invitee.post("/invitation", data={**_form(path), "code": code})
    assert db.session.execute(sa.select(User).where(User.login == "rita.reviewer")).first() is None
    fresh = _confirmed_by(signed_in(app, staying), login="rita.reviewer")
    assert invitations.waiting_for_manager(admin.fund_id) == 0
    answer = invitee.post("/invitation", data={**_form(path), "code": fresh})
    assert answer.location == "/login/code"
