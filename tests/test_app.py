"""Starting the app: production refuses missing or weak secrets; development makes its own
secrets once, privately, and keeps them."""

import base64
import json
import os
import stat

import pytest

from hrdfund import SECRET_NAMES, create_app
from hrdfund.core.extensions import db


def _key(n=32):
    return base64.b64encode(os.urandom(n)).decode()


@pytest.fixture
def production(tmp_path):
    """Overrides for a production app with good secrets; tests spoil one at a time."""
    return {
        "ENV_NAME": "production",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        **{name: _key() for name in SECRET_NAMES},
    }


def _dispose(app):
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("name", SECRET_NAMES)
@pytest.mark.parametrize(
    "value, reason",
    [
        (None, "is not set"),
        ("", "is not set"),
        (_key(16), "32 random bytes"),
        ("change-me", "not valid base64"),
        (base64.b64encode(b"\x01" * 32).decode(), "too weak"),
    ],
    ids=["missing", "empty", "short", "not-base64", "weak"],
)
def test_production_refuses_to_start_without_a_proper_secret(production, name, value, reason):
    """A forgotten or placeholder key stops the server instead of running unprotected."""
    with pytest.raises(RuntimeError, match=f"{name} .*{reason}"):
        create_app({**production, name: value})


def test_production_refuses_to_start_without_a_database(production):
    with pytest.raises(RuntimeError, match="DATABASE_URL"):
        create_app({**production, "SQLALCHEMY_DATABASE_URI": None})


def test_an_unknown_environment_name_is_refused(production):
    with pytest.raises(RuntimeError, match="HRDFUND_ENV"):
        create_app({**production, "ENV_NAME": "staging"})


def test_production_with_good_secrets_sends_secure_cookies_and_hsts(production):
    """Over HTTPS the session cookie never travels in clear, and browsers remember HTTPS."""
    app = create_app(production)
    response = app.test_client().get("/login")
    assert response.status_code == 200
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    assert 'name="csrf_token"' in response.get_data(as_text=True)
    _dispose(app)


@pytest.fixture
def development(tmp_path, monkeypatch):
    """A development start with no secrets set anywhere and its instance under tmp_path."""
    instance = tmp_path / "dev-instance"
    monkeypatch.setenv("HRDFUND_INSTANCE_PATH", str(instance))
    overrides = {"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": None}
    overrides.update(dict.fromkeys(SECRET_NAMES))
    return instance, overrides


def test_development_generates_private_secrets_once_and_reuses_them(development):
    """Restarting a development server keeps the keys, so encrypted data stays readable."""
    instance, overrides = development
    first = create_app(dict(overrides))
    path = instance / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert set(stored) == set(SECRET_NAMES)
    assert len(set(stored.values())) == 3
    for name in SECRET_NAMES:
        assert first.config[name] == stored[name]
    database = instance / "hrdfund.sqlite3"
    assert first.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{database}"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(instance.stat().st_mode) & 0o077 == 0
    _dispose(first)

    second = create_app(dict(overrides))
    assert json.loads(path.read_text()) == stored
    for name in SECRET_NAMES:
        assert second.config[name] == stored[name]
    assert second.extensions["hrdfund_audit_key"] == first.extensions["hrdfund_audit_key"]
    _dispose(second)


def test_development_completes_a_partial_secrets_file(development):
    """A key kept from before is never replaced; only the missing ones are made."""
    instance, overrides = development
    instance.mkdir(mode=0o700)
    kept = _key()
    (instance / "secrets.json").write_text(json.dumps({"HRDFUND_ENCRYPTION_KEY": kept}))
    app = create_app(overrides)
    stored = json.loads((instance / "secrets.json").read_text())
    assert stored["HRDFUND_ENCRYPTION_KEY"] == kept == app.config["HRDFUND_ENCRYPTION_KEY"]
    assert set(stored) == set(SECRET_NAMES)
    _dispose(app)


def test_development_secrets_set_in_the_environment_win(development):
    instance, overrides = development
    mine = _key()
    app = create_app({**overrides, "SECRET_KEY": mine})
    assert app.config["SECRET_KEY"] == mine
    _dispose(app)
