"""Account services: Argon2id, password rules, throttled sign-in, one-time TOTP codes."""

import time
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from hrdfund.auth import attempts, second_factor, services, throttle
from hrdfund.auth.models import SignInLimit
from hrdfund.auth.services import AuthError, PasswordPolicyError
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from tests.conftest import PASSWORD


def _sign_in(login, password, token=None):
    """The first step of signing in, as the sign-in page takes it; returns the user."""
    return attempts.sign_in(login, password, token).user


def test_passwords_are_hashed_with_argon2id_and_salted(app):
    first, second = services.hash_password(PASSWORD), services.hash_password(PASSWORD)
    assert first.startswith("$argon2id$")
    assert first != second
    assert PASSWORD not in first
    assert services._verify(first, PASSWORD)
    assert not services._verify(first, PASSWORD + "!")


@pytest.mark.parametrize(
    "password, login, reason",
    [
        ("short pass!", None, "at least 12"),
        ("x1" * 64 + "y", None, "at most 128"),
        ("password1234", None, "too common"),
        ("PassWord1234", None, "too common"),
        ("abababababababab", None, "too common"),
        ("my name is amina-k 2026", "amina-k", "contains the login"),
        ("AMINA-K likes long walks", "amina-k", "contains the login"),
    ],
    ids=["too-short", "too-long", "common", "common-any-case", "few-letters", "login", "LOGIN"],
)
def test_password_rules(app, password, login, reason):
    """Each refusal says which rule was broken."""
    with pytest.raises(PasswordPolicyError, match=reason):
        services.check_password_rules(password, login)


@pytest.mark.parametrize("length", [12, 128])
def test_passwords_at_the_limits_are_accepted(app, length):
    services.check_password_rules(("correct horse staple " * 7)[:length], "amina")


def test_overlong_passwords_are_refused_before_any_hashing(app, monkeypatch):
    """A megabyte-long password costs the server nothing: no hash is ever computed."""

    def no_hashing():
        raise AssertionError("a password over 128 characters reached the hasher")

    monkeypatch.setattr(services, "_hasher", no_hashing)
    huge = "x" * 1_000_000
    with pytest.raises(PasswordPolicyError):
        services.hash_password(huge)
    with pytest.raises(AuthError) as caught:
        _sign_in("anyone", huge)
    assert caught.value.reason == "invalid"


def _reason(login, password, token=None):
    with pytest.raises(AuthError) as caught:
        _sign_in(login, password, token)
    return caught.value


def test_unknown_account_and_wrong_password_fail_alike(app, make_user, monkeypatch):
    """Same error, same reason and the same hashing work: nothing tells the accounts apart."""
    user = make_user("applicant")
    calls = []
    real_verify = services._verify
    monkeypatch.setattr(services, "_verify", lambda h, p: calls.append(1) or real_verify(h, p))
    unknown = _reason("nobody-here", PASSWORD)
    hashes_for_unknown = len(calls)
    wrong = _reason(user.login, "not the password 1")
    assert (unknown.reason, str(unknown)) == (wrong.reason, str(wrong)) == ("invalid", "invalid")
    assert hashes_for_unknown == len(calls) - hashes_for_unknown == 1


def test_sign_in_is_case_insensitive_on_the_login_only(app, make_user):
    user = make_user("applicant", login="amina")
    assert _sign_in("  Amina ", PASSWORD).id == user.id
    assert _reason("amina", PASSWORD.upper()).reason == "invalid"


def test_a_disabled_account_cannot_sign_in(app, make_user):
    user = make_user("applicant")
    user.active = False
    db.session.commit()
    assert _reason(user.login, PASSWORD).reason == "invalid"


def test_five_failures_lock_that_account_only(app, make_user):
    """After five wrong passwords even the right one is refused for a while; another account
    signs in as usual."""
    victim, other = make_user("applicant"), make_user("reviewer")
    for _ in range(4):
        assert _reason(victim.login, "wrong password 1").reason == "invalid"
    assert _sign_in(other.login, PASSWORD).id == other.id
    assert _reason(victim.login, "wrong password 1").reason == "invalid"
    locked = _reason(victim.login, PASSWORD)
    assert locked.reason == "locked"
    assert 14 <= locked.wait_minutes <= 16
    assert _sign_in(other.login, PASSWORD).id == other.id


def test_a_lock_ends_after_its_time(app, make_user):
    user = make_user("applicant")
    for _ in range(5):
        _reason(user.login, "wrong password 1")
    assert _reason(user.login, PASSWORD).reason == "locked"
    past = utcnow() - timedelta(minutes=16)
    db.session.execute(sa.update(SignInLimit).values(counting_since=past, locked_until=past))
    db.session.commit()
    assert _sign_in(user.login, PASSWORD).id == user.id


def test_a_success_resets_the_failure_count(app, make_user):
    """Four slips a day never lock out a defender who then types it right."""
    user = make_user("applicant")
    browser = throttle.new_client_token()
    for _round in range(3):
        for _ in range(4):
            _reason(user.login, "wrong password 1", browser)
        assert _sign_in(user.login, PASSWORD, browser).id == user.id


NOW = 1_800_000_015.0


def test_a_code_is_accepted_once(app, make_user):
    """A code seen over someone's shoulder cannot be used again."""
    user = make_user("manager")
    code = pyotp.TOTP(user.totp_secret).at(NOW)
    assert second_factor.verify_totp(user, code, at=NOW)
    assert user.totp_confirmed_at is not None
    assert not second_factor.verify_totp(user, code, at=NOW)
    assert not second_factor.verify_totp(user, code, at=NOW + 20)


def test_codes_of_the_previous_step_are_allowed_but_not_older(app, make_user):
    """Thirty seconds of clock drift or slow typing are tolerated, ninety are not."""
    user = make_user("finance")
    totp = pyotp.TOTP(user.totp_secret)
    assert not second_factor.verify_totp(user, totp.at(NOW - 90), at=NOW)
    assert second_factor.verify_totp(user, totp.at(NOW - 30), at=NOW)


def test_a_code_older_than_one_already_used_is_refused(app, make_user):
    user = make_user("donor")
    totp = pyotp.TOTP(user.totp_secret)
    assert second_factor.verify_totp(user, totp.at(NOW), at=NOW)
    assert not second_factor.verify_totp(user, totp.at(NOW - 30), at=NOW)
    assert second_factor.verify_totp(user, totp.at(NOW + 30), at=NOW + 30)


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", None])
def test_malformed_codes_are_refused(app, make_user, code):
    user = make_user("admin")
    assert not second_factor.verify_totp(user, code)
    assert user.totp_last_step is None


def test_a_spaced_code_is_accepted(app, make_user):
    """A code typed as shown by many apps, "123 456", works."""
    user = make_user("reviewer")
    code = pyotp.TOTP(user.totp_secret).now()
    assert second_factor.verify_totp(user, f" {code[:3]} {code[3:]} ", at=time.time())


def test_create_user_refuses_a_duplicate_login(app, make_user):
    make_user("applicant", login="amina")
    with pytest.raises(services.UserExistsError):
        services.create_user("applicant", "Amina", PASSWORD)


@pytest.mark.parametrize("login", ["a", "amina k", "amina@example.org", "x" * 65, "-amina"])
def test_create_user_refuses_malformed_logins(app, login):
    with pytest.raises(ValueError, match="login"):
        services.create_user("applicant", login, PASSWORD)


def test_create_user_applies_the_password_rules(app):
    with pytest.raises(PasswordPolicyError):
        services.create_user("applicant", "amina", "password1234")


@pytest.mark.parametrize(
    "role, needs_code",
    [
        ("applicant", False),
        ("partner", True),
        ("reviewer", True),
        ("manager", True),
        ("finance", True),
        ("donor", True),
        ("admin", True),
    ],
)
def test_roles_that_need_a_second_factor_get_a_secret(make_user, role, needs_code):
    """The secret is created with the account and stored encrypted; enrolment waits for a
    first valid code."""
    user = make_user(role)
    assert user.needs_totp is needs_code
    assert (user.totp_secret is not None) is needs_code
    assert user.totp_confirmed_at is None
    if needs_code:
        assert user.totp_secret.encode() not in user._totp_secret


def test_the_create_user_command_explains_a_refused_password(runner):
    """An operator sees which rule a password broke, not a traceback."""
    result = runner.invoke(
        args=["hrdfund", "create-user", "--role", "applicant", "--login", "amina"]
        + ["--password", "too short"]
    )
    assert result.exit_code == 1
    assert "password refused: at least 12 characters" in result.output
    assert services.find_user("amina") is None
