"""Every page each role reaches, sent what its forms and links do not offer: the answer is
a page (a refusal in words, a redirect, a 4xx), never a crash; and the money still adds up.

The demo world gives every role cases in every status, grants, payments and pools. Each
role's client walks its pages from its home, following links; every query string it meets
gets hostile values, and every kind of form (the same form for another row is the same
kind) is posted again with one field at a time replaced by a hostile value, then with
every amount at its largest at once (amounts each within bounds may add up past what an
amount holds), rates as the page gives them and then at their largest too.
"""

import io
import json
import os
import re
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit

import pyotp
import pytest
import sqlalchemy as sa
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException

from hrdfund.auth.models import User
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.money import MAX_AMOUNT, MAX_RATE
from hrdfund.pools import services as pools
from hrdfund.pools.models import Donor
from tests.conftest import MoneyWorld, pay

#: Values no form offers, by what the field takes: numbers out of range or not numbers,
#: impossible dates, and text of every kind.
NUMBER_HOSTILE = ["sNaN", "-Infinity", "1e30", "100.005", "-1", str(10**19), "９９", "1_000"]
DATE_HOSTILE = ["9999-12-31", "0001-01-01", "2026-02-30", "sNaN"]
TEXT_HOSTILE = ["x" * 5000, "' OR 1=1 --", "\u202egnp.exe", "", "sNaN", str(10**19)]
#: Each amount and each rate at the largest its field takes.
LARGEST_AMOUNT, LARGEST_RATE = str(MAX_AMOUNT), str(MAX_RATE)
HOSTILE = {*NUMBER_HOSTILE, *DATE_HOSTILE, *TEXT_HOSTILE, LARGEST_AMOUNT, LARGEST_RATE}
#: Fields that take a number or name a row by its number.
NUMBERISH = re.compile(
    r"amount|rate|fee|cap|age|people|months|count|visits|interval|reviewer|allocation|"
    r"instalment|pool|page"
)
#: What query arguments get: numbers out of range or not numbers, odd text.
QUERY_HOSTILE = ["sNaN", "1e30", "-1", str(10**19), "9999", "９９", "x" * 300, "' OR 1=1 --", ""]
#: Query arguments pages commonly take: each is tried with hostile values on every page
#: that reads its query string whole.
QUERY_ARGS = ("page", "period", "format", "sort", "status", "category", "country", "pool", "q")
#: The query arguments the page being answered read (its view and template, not the checks
#: every request passes); ``EVERY`` when it read them whole.
READ, EVERY, VIEW = set(), object(), [False]
#: The forms that take amounts, by the endpoint they post to.
MONEY_FORMS = {
    "cases.edit",
    "reviews.recommend",
    "reviews.cofunding",
    "grants.approve",
    "case_payments.record",
    "disbursements.reverse",
    "pools.contribute",
    "pools.create_pool",
}
#: Pages per endpoint the walk opens: enough case pages to meet cases in every status.
PER_ENDPOINT = 25
#: Posting this would end the walk: the client would be signed out.
SKIP_ACTIONS = re.compile(r"/logout$")
ROLES = ("applicant", "partner", "reviewer", "manager", "finance", "donor", "admin")


class _Forms(HTMLParser):
    """The links and forms of a page: each form's method, action and fields with the
    value the page gives them."""

    def __init__(self):
        super().__init__()
        self.links, self.forms = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self.forms.append(
                {
                    "method": (a.get("method") or "get").lower(),
                    "action": a.get("action") or "",
                    "multipart": "multipart" in (a.get("enctype") or ""),
                    "fields": {},
                    "types": {},
                    "files": [],
                    "decimal": [],
                }
            )
        elif not self.forms or "name" not in a:
            return
        elif tag == "input":
            kind = (a.get("type") or "text").lower()
            fields = self.forms[-1]["fields"]
            self.forms[-1]["types"][a["name"]] = kind
            if kind == "file":
                self.forms[-1]["files"].append(a["name"])
            if a.get("inputmode") == "decimal":  # an amount or a rate
                self.forms[-1]["decimal"].append(a["name"])
            elif kind in ("checkbox", "radio"):
                if "checked" in a or a["name"] not in fields:
                    fields[a["name"]] = a.get("value", "y")
            elif kind != "submit" or a["name"] not in fields:
                fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self.forms[-1]["fields"].setdefault(a["name"], "")
        elif tag == "textarea":
            self.forms[-1]["fields"][a["name"]] = ""
            self.forms[-1]["types"][a["name"]] = "textarea"

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)


class _Options(HTMLParser):
    """The first non-empty option of each select, so a baseline form is a valid one."""

    def __init__(self):
        super().__init__()
        self.first, self._name = {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "select":
            self._name = a.get("name")
        elif tag == "option" and self._name:
            value = a.get("value", "")
            if "selected" in a or (value and self._name not in self.first):
                self.first[self._name] = value

    def handle_endtag(self, tag):
        if tag == "select":
            self._name = None


class _ReadArgs(ImmutableMultiDict):
    """A query string that notes which of its arguments the page reads, so each page's
    query is fuzzed in the arguments it takes, not in every name any page takes."""

    def get(self, key, *args, **kwargs):
        _note(key)
        return super().get(key, *args, **kwargs)

    def getlist(self, key, *args, **kwargs):
        _note(key)
        return super().getlist(key, *args, **kwargs)

    def __getitem__(self, key):
        _note(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        _note(key)
        return super().__contains__(key)


def _note(key):
    if VIEW[0]:
        READ.add(key)


def _read_whole(name):
    def read_whole(self, *args, **kwargs):
        _note(EVERY)
        return getattr(ImmutableMultiDict, name)(self, *args, **kwargs)

    return read_whole


for _name in ("keys", "values", "items", "lists", "to_dict", "__iter__", "__len__"):
    setattr(_ReadArgs, _name, _read_whole(_name))


@pytest.fixture
def app(app, monkeypatch):
    """The application, its requests noting the query arguments each page reads."""
    plain = app.request_class

    class Request(plain):
        @property
        def args(self):
            return _ReadArgs(plain.args.__get__(self))

    def dispatch_request(*args, **kwargs):
        VIEW[0] = True
        try:
            return type(app).dispatch_request(app, *args, **kwargs)
        finally:
            VIEW[0] = False

    monkeypatch.setattr(app, "request_class", Request)
    monkeypatch.setattr(app, "dispatch_request", dispatch_request)
    return app


def _hostile(name, kind):
    """The hostile values for a field of this name and input type."""
    if kind == "date" or name.endswith("_on"):
        return DATE_HOSTILE
    if kind == "number" or NUMBERISH.search(name.split("-")[-1]):
        return NUMBER_HOSTILE
    return TEXT_HOSTILE


def _filled(form):
    """The form's empty text and date fields filled with plain values, so that what it
    sends passes its other checks."""
    filled = {}
    for name, value in form["fields"].items():
        kind = form["types"].get(name)
        if value or name in form["decimal"]:
            continue
        if kind == "date" or name.endswith("_on"):
            filled[name] = utcnow().date().isoformat()
        elif kind in ("text", "textarea"):
            filled[name] = "Fuzz"
    return filled


def _parse(html):
    forms, options = _Forms(), _Options()
    forms.feed(html)
    options.feed(html)
    for form in forms.forms:
        for name in form["fields"]:
            if not form["fields"][name] and name in options.first:
                form["fields"][name] = options.first[name]
    return forms


def _sign_in(client, account):
    response = client.post(
        "/login", data={"login": account["login"], "password": account["password"]}
    )
    if response.location and response.location.endswith("/login/code"):
        user = db.session.execute(
            sa.select(User).where(User.login == account["login"])
        ).scalar_one()
        db.session.refresh(user)
        code = pyotp.TOTP(account["totp_secret"]).now()
        if user.totp_last_step is not None:
            code = pyotp.TOTP(account["totp_secret"]).at((user.totp_last_step + 1) * 30)
        response = client.post("/login/code", data={"code": code})
    assert response.status_code == 302, (account["role"], response.status_code)


def _endpoint(app, path):
    try:
        return app.url_map.bind("localhost").match(path, method="GET")[0]
    except HTTPException:
        return None


#: What tells one form of a kind from another: the row its fields are prefixed with (a
#: reference's check, by the reference's id) and the positions in its lists (a budget's
#: lines).
ROW_PARTS = re.compile(r"[0-9a-f]{16,}|\d+")


def _shape(name):
    """A field's name without the row or list position it names: forms of one kind (the
    same form for another reference, a budget of three lines or two) share their shape."""
    return ROW_PARTS.sub("#", name)


def _post_endpoint(app, path):
    try:
        return app.url_map.bind("localhost").match(urlsplit(path).path, method="POST")[0]
    except HTTPException:
        return path


class _Walk:
    """One role's walk: pages opened, and every answer of 500 or more with its request."""

    def __init__(self, app, client, role):
        self.app, self.client, self.role = app, client, role
        self.crashes, self.seen, self.per_endpoint = [], set(), {}
        #: Each kind of form (its action's endpoint and the shape of its fields' names)
        #: and each page's query string is fuzzed once, however many pages show it.
        self.fuzzed = set()
        #: The endpoints of the forms sent with every amount at its largest.
        self.largest = set()

    def request(self, method, url, **kwargs):
        READ.clear()
        response = self.client.open(url, method=method, **kwargs)
        if response.status_code >= 500:
            data = kwargs.get("data") or {}
            hostile = {k: v[:40] for k, v in data.items() if isinstance(v, str) and v in HOSTILE}
            self.crashes.append(f"{self.role} {method} {url[:160]} {hostile}")
        return response

    def walk(self, start=("/",), limit=120):
        queue = list(start)
        while queue and len(self.seen) < limit:
            url = queue.pop(0)
            path = urlsplit(url).path
            endpoint = _endpoint(self.app, path)
            if url in self.seen or endpoint is None or endpoint == "static":
                continue
            if self.per_endpoint.get(endpoint, 0) >= PER_ENDPOINT:
                continue
            self.seen.add(url)
            self.per_endpoint[endpoint] = self.per_endpoint.get(endpoint, 0) + 1
            response = self.request("GET", url)
            read = set(READ)
            if response.status_code in (301, 302, 303) and response.location:
                queue.append(response.location)
            if response.status_code != 200:
                continue
            if "html" not in response.content_type:
                self.fuzz_query(url, _parse(""), read)  # a download: its period, its format
                continue
            page = _parse(response.get_data(as_text=True))
            self.fuzz_query(url, page, read)
            for form in page.forms:
                self.fuzz_form(url, form)
            for link in page.links:
                parts = urlsplit(link)
                if not parts.netloc and parts.path.startswith("/"):
                    queue.append(link)

    def fuzz_query(self, url, page, read):
        """Hostile values in each query argument the page reads (all the common ones when
        it reads its query whole), in those its address carries, and in each field of each
        form the page sends by GET (a filter, a report download), also at the form's own
        address. An argument read only once another has a value is met on the way: every
        argument any of these requests reads is fuzzed too."""
        parts = urlsplit(url)
        targets = [(parts.path, dict(parse_qsl(parts.query)), read)]
        # A date field of a filter also gets the calendar's ends and impossible days.
        dates = set()
        for form in page.forms:
            if form["method"] == "get":
                action = urlsplit(form["action"] or parts.path).path
                targets.append((action, dict(form["fields"]), set(form["fields"])))
                targets[0][2].update(form["fields"])
                dates.update(n for n, kind in form["types"].items() if kind == "date")
        for path, base, names in targets:
            endpoint = _endpoint(self.app, path)
            if ("query", endpoint) in self.fuzzed:
                continue
            self.fuzzed.add(("query", endpoint))
            todo, done = set(base) | names, set()
            while todo - done:
                name = min(todo - done, key=str)
                done.add(name)
                if name is EVERY:
                    todo.update(QUERY_ARGS)
                    continue
                for value in QUERY_HOSTILE + (DATE_HOSTILE if name in dates else []):
                    self.request("GET", f"{path}?{urlencode({**base, name: value})}")
                    todo |= READ

    def fuzz_form(self, url, form):
        if form["method"] != "post":
            return
        action = form["action"] or urlsplit(url).path
        kind = (_post_endpoint(self.app, action), frozenset(map(_shape, form["fields"])))
        if SKIP_ACTIONS.search(action) or kind in self.fuzzed:
            return
        self.fuzzed.add(kind)
        variants = [
            {name: value}
            for name in sorted(form["fields"])
            for value in _hostile(name, form["types"].get(name))
        ]
        rates = {n for n in form["decimal"] if "rate" in n.split("-")[-1]}
        largest = {n: LARGEST_AMOUNT for n in form["decimal"] if n not in rates}
        if largest:
            # The rest of the form filled in, so the amounts reach the service.
            largest = {**_filled(form), **largest}
            variants += [largest, {**largest, **dict.fromkeys(rates, LARGEST_RATE)}]
            self.largest.add(kind[0])
        for changes in variants:
            data = {**form["fields"], **changes}
            kwargs = {"data": data}
            if form["multipart"]:
                for field in form["files"]:
                    data[field] = (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "x.pdf")
                kwargs["content_type"] = "multipart/form-data"
            self.request("POST", action, **kwargs)


def _login(login):
    return db.session.execute(sa.select(User).where(User.login == login)).scalar_one()


def _forms_the_demo_may_lack(accounts):
    """A grant still to plan and a payment held for a second person, so that the plan
    form and the confirmation forms are on some page too; returns their case pages."""
    manager = _login(accounts["manager"]["login"])
    donor = db.session.execute(sa.select(Donor).order_by(Donor.id).limit(1)).scalar_one()
    pool = pools.create_pool(donor, manager, "Fuzz Pool", "EUR")
    pools.record_contribution(pool, manager, Decimal("9000.00"), "EUR", utcnow().date())
    db.session.commit()
    world = MoneyWorld.around(
        pool.fund,
        _login(accounts["applicant"]["login"]),
        _login(accounts["reviewer"]["login"]),
        manager,
    )
    world.finance = _login(accounts["finance"]["login"])
    unplanned = world.grant("900", pool=pool, name="Fuzz Defender One")
    held = world.grant("900", pool=pool, name="Fuzz Defender Two")
    world.plan(held, kind="one_off", count=1, starts_on=utcnow().date())
    # A fee of more than a tenth of the payment waits for a second person.
    pay(world, held, "500.00", fee=Decimal("200.00"), paid_on=utcnow().date())
    return [f"/applications/{g.application.uid}" for g in (unplanned, held)]


@pytest.fixture
def world(app, runner):
    result = runner.invoke(args=["hrdfund", "demo-data", "--scale", "60"])
    assert result.exit_code == 0, result.output
    with open(os.path.join(app.instance_path, "demo-accounts.json")) as fh:
        accounts = json.load(fh)
    accounts = {role: next(a for a in accounts if a["role"] == role) for role in ROLES}
    return {"accounts": accounts, "cases": _forms_the_demo_may_lack(accounts)}


def test_no_page_or_form_crashes_on_what_it_does_not_offer(app, world, runner):
    visitor = _Walk(app, app.test_client(), "visitor")
    visitor.walk(["/login", "/register"])
    assert {"auth.login", "auth.register"} <= {k[0] for k in visitor.fuzzed}
    crashes, largest = visitor.crashes, set()
    for role in ROLES:
        client = app.test_client()
        _sign_in(client, world["accounts"][role])
        walk = _Walk(app, client, role)
        walk.walk(["/", *world["cases"]])
        assert len(walk.seen) >= 3, (role, walk.seen)
        crashes += walk.crashes
        largest |= walk.largest
    assert not crashes, "\n".join(crashes[:80])
    # Every form that takes amounts had them all at their largest at once.
    assert MONEY_FORMS <= largest, MONEY_FORMS - largest
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code == 0, result.output[-3000:]
