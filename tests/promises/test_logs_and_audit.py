"""Promises 27 to 30: logs without personal data, the audit chain, error pages that say
nothing of the server, and the checks CI runs.

One test per promise of SECURITY.md, named after its number; docs/security.md maps each
to its test here and to the thorough tests (sweeps over every route, field and output)
elsewhere in the suite.
"""

import logging
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import sqlalchemy as sa

from hrdfund.audit.models import AuditEvent
from hrdfund.auth import services as auth_services
from hrdfund.cases.models import Application, Document
from hrdfund.core.extensions import db
from tests.conftest import (
    MoneyWorld,
    audit_actions,
    count_rows,
    login,
    sign_up,
    signed_in,
    start_application,
)

from .common import PDF, RELOCATION, ROOT, add_crash_route, get_closed, upload_document

#: What a framework's debug page or banner would show.
LEAKS = ("Traceback", 'File "', "Werkzeug", "werkzeug", "Python", "Flask", "Jinja", "SQL")


def test_promise_27_logs_hold_ids_never_personal_data(app, client, make_user, fund, caplog):
    """Signing up, failing to sign in, applying, writing and a crash on typed words are
    logged, if at all, without a login, a contact or anything typed."""
    caplog.set_level(logging.DEBUG, logger="hrdfund")
    add_crash_route(app)
    client.post("/login", data={"login": "canary-unknown-2727", "password": "canary-pass-2727"})
    _signed_up, made = sign_up(client, contact="canary-signal-2727")
    uid = start_application(client)
    data = {
        **RELOCATION,
        "threat": "canary-threat-2727",
        "urgency": "urgent",
        "urgency_reason": "canary-urgency-2727",
        "submit": "1",
    }
    assert client.post(f"/applications/{uid}/edit", data=data).location == f"/applications/{uid}"
    client.post(f"/applications/{uid}", data={"body": "canary-message-2727"})
    assert client.post("/promise-crash", data={"note": "canary-note-2727"}).status_code == 500
    assert "RuntimeError" in caplog.text and "promise_crash" in caplog.text
    assert "canary" not in caplog.text and made not in caplog.text


def test_promise_28_actions_are_audited_in_a_chain_that_check_verifies(
    app, client, make_user, make_donor, fund, runner
):
    """Every successful form post of a defender, each sign-in and sign-out, a document and a
    report download leave an audit entry; `flask hrdfund check` passes the chain and names
    an edited, a deleted and a reordered entry."""
    before = count_rows(AuditEvent)
    signed_up, made = sign_up(client)
    assert signed_up.status_code == 302 and count_rows(AuditEvent) > before
    before = count_rows(AuditEvent)
    start_application(client, "relocation")
    assert count_rows(AuditEvent) > before
    uid = db.session.execute(sa.select(Application.uid)).scalar_one()
    for path, data in [
        (f"/applications/{uid}/edit", {**RELOCATION, "consent_story": "y", "save": "1"}),
        (f"/applications/{uid}/edit", {**RELOCATION, "consent_story": "y", "submit": "1"}),
        (f"/applications/{uid}", {"body": "A message"}),
        (f"/applications/{uid}/consents/story/withdraw", {}),
        ("/logout", {}),
    ]:
        before = count_rows(AuditEvent)
        assert client.post(path, data=data).status_code == 302, path
        assert count_rows(AuditEvent) > before, path
    owner = signed_in(app, auth_services.find_user(made))
    upload_document(owner, uid, PDF)
    doc = db.session.execute(sa.select(Document.uid)).scalar_one()
    assert get_closed(owner, f"/applications/{uid}/documents/{doc}").status_code == 200
    app.test_client().post("/login", data={"login": made, "password": "not it at all"})
    world = MoneyWorld(fund, make_user, make_donor)
    donor = signed_in(app, make_user("donor", donor_id=world.donor.id))
    report = f"/donor/pools/{world.eur.uid}/report?period=2026&format=csv"
    assert get_closed(donor, report).status_code == 200
    actions = audit_actions()
    for action in (
        "auth.user_created",
        "auth.login",
        "auth.login_failed",
        "auth.logout",
        "application.started",
        "application.saved",
        "application.status",
        "message.posted",
        "consent.withdrawn",
        "document.uploaded",
        "document.downloaded",
        "report.downloaded",
    ):
        assert action in actions, action

    def check():
        result = runner.invoke(args=["hrdfund", "check"])
        return result.exit_code, result.output

    assert check()[0] == 0
    # The case's entries are in its fund's chain; `check` names that chain and the entry.
    chain, seq = fund.id, 3
    broken = f"BROKEN: the audit chain of fund {fund.id} (Test Fund): audit entry {seq}"
    entry = sa.and_(AuditEvent.chain == chain, AuditEvent.seq == seq)
    original = db.session.execute(sa.select(AuditEvent.__table__).where(entry)).mappings().one()
    assert original["action"].split(".")[0] in ("application", "consent")
    db.session.execute(sa.update(AuditEvent.__table__).where(entry).values(payload='{"n":1}'))
    db.session.commit()
    code, output = check()
    assert code == 1 and f"{broken} was altered" in output
    db.session.execute(
        sa.update(AuditEvent.__table__).where(entry).values(payload=original["payload"])
    )
    db.session.commit()
    assert check()[0] == 0
    db.session.execute(sa.delete(AuditEvent.__table__).where(entry))
    db.session.commit()
    code, output = check()
    assert code == 1 and f"{broken} is missing" in output
    db.session.execute(sa.insert(AuditEvent.__table__).values(**original))
    db.session.commit()
    assert check()[0] == 0
    for old, new in ((seq, 100_000), (seq + 1, seq), (100_000, seq + 1)):
        db.session.execute(
            sa.update(AuditEvent.__table__)
            .where(AuditEvent.chain == chain, AuditEvent.seq == old)
            .values(seq=new)
        )
    db.session.commit()
    code, output = check()
    assert code == 1 and f"{broken} does not follow" in output


def test_promise_29_error_pages_say_nothing_of_the_server(app, client, make_user):
    """Not found, not allowed, a refused form and a crash show a plain page without trace,
    version, framework name or what was typed."""
    add_crash_route(app)
    login(client, make_user("applicant"))
    answers = {
        404: get_closed(client, "/no/such/page"),
        405: get_closed(client, "/logout"),
        500: client.post("/promise-crash", data={"note": "canary-typed-2929"}),
    }
    app.config["WTF_CSRF_ENABLED"] = True
    answers[400] = client.post("/applications/nothing", data={"note": "canary-typed-2929"})
    for code, response in answers.items():
        html = response.get_data(as_text=True)
        assert response.status_code == code
        assert response.mimetype == "text/html" and "<h1>" in html, code
        assert [leak for leak in LEAKS if leak in html] == [], code
        assert not re.search(r"\b\d+\.\d+\.\d+\b", html), code
        assert "canary" not in html, code
    assert "Something went wrong" in answers[500].get_data(as_text=True)


def test_promise_30_ci_runs_pip_audit_and_ruffs_bandit_rules():
    """ruff's bandit rules (S) are selected and catch an unsafe call; CI runs `make lint`
    (ruff) and `make audit` (pip-audit over the pinned requirements); every requirement,
    pip-audit's own included, is pinned."""
    settings = tomllib.loads(Path(ROOT, "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert "S" in settings["select"]
    assert [code for code in settings.get("ignore", []) if code.startswith("S")] == ["S101"]
    probe = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--stdin-filename"]
        + ["hrdfund/promise_probe.py", "-"],
        input="import pickle\n\n\ndef load(blob):\n    return pickle.loads(blob)\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert probe.returncode == 1 and "S301" in probe.stdout, probe.stdout + probe.stderr
    makefile = Path(ROOT, "Makefile").read_text()

    def recipe(target):
        return re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)

    assert "ruff check ." in recipe("lint")
    audit = recipe("audit")
    assert "pip-audit" in audit
    assert "-r requirements.txt" in audit and "-r requirements-dev.txt" in audit
    ci = Path(ROOT, ".ci/run").read_text()
    assert re.search(r"^make lint$", ci, re.M) and re.search(r"^make audit$", ci, re.M)
    assert re.search(r"^pip[-_]audit==", Path(ROOT, "requirements-audit.txt").read_text(), re.M)
    for name in ("requirements.txt", "requirements-dev.txt", "requirements-audit.txt"):
        for line in Path(ROOT, name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert re.fullmatch(r"[A-Za-z0-9._\[\],-]+==[0-9][A-Za-z0-9.+!-]*", line), line
