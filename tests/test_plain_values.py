"""Staff read plain words on every page, never a stored code: over the demo world, every
staff page (each page of the menu, each pool, the case pages of cases in every status)
shows no value of the models' enums as it is stored (``in_country``,
``cash_through_partner``, ``awaiting_second_approval``...), no country of a case as a bare
ISO code, and every time of day with its time zone."""

import enum
import importlib
import json
import os
import pkgutil
import re

import pytest
import sqlalchemy as sa

import hrdfund
from hrdfund.auth.models import User
from hrdfund.cases.categories import CHOICE_LABELS
from hrdfund.cases.models import Application
from hrdfund.core.extensions import db
from hrdfund.pools.models import Pool
from tests.conftest import login

SCALE = 120
#: Staff of the demo's main fund, which holds its cases in every status, and its admin.
STAFF = ("manager1", "reviewer1", "finance1", "admin1")
#: Pages that are not read but sent away or downloaded.
NOT_PAGES = re.compile(r"logout|export|download|\.csv|\.pdf|/qr")


def _enums():
    """Every enum of the application's modules."""
    for info in pkgutil.walk_packages(hrdfund.__path__, "hrdfund."):
        importlib.import_module(info.name)
    found, todo = set(), list(enum.Enum.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("hrdfund."):
            found.add(cls)
    return found


def raw_values():
    """The stored values of the models' enums and of the answers to a category's choice
    questions that no plain word holds: those with an underscore (``in_country``), which
    English words never have."""
    stored = {str(member.value) for cls in _enums() for member in cls}
    stored |= {value for labels in CHOICE_LABELS.values() for value in labels}
    return {value for value in stored if "_" in value}


def visible_text(html):
    """What a person reads: the page without scripts, styles, tags and attributes."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _raw_in(text, values):
    return sorted(v for v in values if re.search(rf"(?<![\w-]){re.escape(v)}(?![\w-])", text))


@pytest.fixture
def demo(app, runner):
    result = runner.invoke(args=["hrdfund", "demo-data", "--scale", str(SCALE)])
    assert result.exit_code == 0, result.output
    with open(os.path.join(app.instance_path, "demo-accounts.json")) as fh:
        return {a["login"]: a for a in json.load(fh)}


def _client(app, accounts, role):
    account = accounts[f"demo-{role}"]
    user = db.session.execute(sa.select(User).where(User.login == account["login"])).scalar_one()
    client = app.test_client()
    login(client, user, password=account["password"])
    return client, user


def _menu_pages(app):
    """Every page without a parameter that answers GET."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and not rule.arguments
        and not rule.rule.startswith("/static")
        and not NOT_PAGES.search(rule.rule)
    )


def _case_pages(user):
    """Up to three cases of the user's fund in each status."""
    rows = db.session.execute(
        sa.select(Application.uid, Application.status)
        .where(Application.fund_id == user.fund_id, Application.purged_at.is_(None))
        .order_by(Application.id)
    ).all()
    chosen, seen = [], {}
    for uid, status in rows:
        if seen.get(status, 0) < 3:
            seen[status] = seen.get(status, 0) + 1
            chosen.append(f"/applications/{uid}")
    return chosen


def test_the_raw_values_are_known():
    """The test looks for the values that slipped through before: it knows them."""
    values = raw_values()
    assert {"in_country", "cash_through_partner", "awaiting_second_approval"} <= values


def test_no_staff_page_shows_a_stored_value(app, demo):
    values = raw_values()
    problems, read = [], 0
    countries = "|".join(_countries())
    for role in STAFF:
        client, user = _client(app, demo, role)
        pages = _menu_pages(app)
        pages += [f"/pools/{uid}" for uid in _fund_pools(user)]
        pages += _case_pages(user) if role != "admin1" else []
        for path in pages:
            response = client.get(path)
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            read += 1
            text = visible_text(response.get_data(as_text=True))
            raw = _raw_in(text, values)
            if raw:
                problems.append(f"{role} {path}: {raw}")
            # (A currency symbol such as MX$ is no country code.)
            for found in re.finditer(rf"\b({countries})\b(?!\$)", text):
                around = text[max(found.start() - 30, 0) : found.end() + 10]
                problems.append(f"{role} {path}: a bare country code: {around!r}")
            # A time of day says its time zone.
            for found in re.finditer(r"\b\d{2}:\d{2}\b(?! UTC)", text):
                around = text[max(found.start() - 30, 0) : found.end() + 10]
                problems.append(f"{role} {path}: a time without its zone: {around!r}")
    assert read > 100, read
    assert not problems, "\n".join(problems[:30])


def _countries():
    """The countries of the demo's cases, as stored: ISO codes."""
    return db.session.execute(
        sa.select(Application.country).where(Application.country.is_not(None)).distinct()
    ).scalars()


def _fund_pools(user):
    return db.session.execute(sa.select(Pool.uid).where(Pool.fund_id == user.fund_id)).scalars()
