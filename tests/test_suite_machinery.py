"""The suite's own machinery: how it shares the tests among processes, and how a
PostgreSQL test's rows are emptied for the next one."""

import operator
import os
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund.core.extensions import db
from hrdfund.ledger.models import Contribution
from tests.conftest import empty_tables, make_config, other_app
from tests.scheduling import LONGEST, unit_of
from tests.test_ledger_property import build_world

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    ("nodeid", "unit"),
    [
        ("tests/t.py::test_a[sqlite]", "tests/t.py[sqlite]"),
        ("tests/t.py::test_a[postgresql-case page, applicant]", "tests/t.py[postgresql]"),
        (
            "tests/t.py::test_a[Disbursement-rate_reason-postgresql]",
            "tests/t.py[postgresql]",
        ),
        ("tests/t.py::test_a[sqlite-two-/cases]", "tests/t.py[sqlite]"),
        ("tests/t.py::test_a[fr]", "tests/t.py"),
        ("tests/t.py::test_a", "tests/t.py"),
        ("tests/t.py::test_a[mysqlite]", "tests/t.py"),
        ("tests/e2e/test_b.py::test_c", "tests/e2e"),
    ],
)
def test_a_files_backends_are_units_of_their_own_and_the_browser_tests_one(nodeid, unit):
    assert unit_of(nodeid) == unit


def test_every_unit_named_longest_is_a_file_of_the_suite():
    """A file renamed or removed would lose its place at the front without a word."""
    missing = [u for u in LONGEST if not os.path.exists(os.path.join(ROOT, u.split("[")[0]))]
    assert missing == []


def test_emptying_the_tables_leaves_them_as_truncate_would(pg_schema, tmp_path):
    """No row left, sequences from their start, and the ledger's rows final again."""
    with other_app(make_config(pg_schema, tmp_path / "instance")):
        build_world().grant("500")
        db.session.remove()

        empty_tables(db.engine)

        with db.engine.connect() as conn:
            left = {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                for t in db.metadata.sorted_tables
            }
        assert {name: n for name, n in left.items() if n} == {}
        world = build_world()
        assert world.fund.id == 1
        contribution = db.session.execute(sa.select(Contribution).limit(1)).scalar_one()
        db.session.remove()
        with pytest.raises(sa.exc.DBAPIError, match="never edited or deleted"):
            with db.engine.begin() as conn:
                conn.execute(
                    sa.update(Contribution.__table__)
                    .where(Contribution.__table__.c.id == contribution.id)
                    .values(amount=Decimal("1.00"))
                )
        empty_tables(db.engine)


def test_a_second_app_compiles_no_template_url_rule_or_statement_again(tmp_path):
    """Each test builds an app of its own; what the first app compiled, the next reuses
    (tests/compiled_once.py), and it answers as the first did."""
    from tests import compiled_once as once

    def build(number):
        folder = tmp_path / str(number)
        return other_app(make_config(f"sqlite:///{folder / 'hrdfund.sqlite3'}", folder / "i"))

    with build(1) as first:
        db.create_all()
        first.jinja_env.get_template("base.html")
        db.session.execute(sa.select(Contribution.id).where(Contribution.id == 1)).all()
        login_rule = first.url_map._rules_by_endpoint["auth.login"][0]
        step_rule = first.url_map._rules_by_endpoint["cases.step"][0]
        statements = len(once.STATEMENTS)
        page = first.test_client().get("/login").get_data(as_text=True)
    with build(2) as second:
        db.create_all()

        def no_compiling(*_args, **_kwargs):
            raise AssertionError("compiled again")

        second.jinja_env.compile = no_compiling
        assert second.jinja_env.get_template("base.html") is not None
        db.session.execute(sa.select(Contribution.id).where(Contribution.id == 1)).all()
        assert len(once.STATEMENTS) == statements
        rule = second.url_map._rules_by_endpoint["auth.login"][0]
        assert rule is not login_rule
        assert rule._build.__func__ is login_rule._build.__func__
        # Bound to each app's own rule, and the page comes out the same.
        assert rule._build.__self__ is rule
        # A rule with variables takes the first app's parts, with converters of its own
        # bound to its own map, and matches and builds its URLs as the first did.
        step = second.url_map._rules_by_endpoint["cases.step"][0]
        assert step is not step_rule
        assert all(map(operator.is_, step._parts, step_rule._parts))
        assert step._converters.keys() == step_rule._converters.keys() == {"uid", "step"}
        for name, converter in step._converters.items():
            assert converter is not step_rule._converters[name]
            assert converter.map is second.url_map
        assert step.arguments == {"uid", "step"}
        for app in (first, second):
            adapter = app.url_map.bind("localhost")
            assert adapter.match("/applications/ab12/steps/budget") == (
                "cases.step",
                {"uid": "ab12", "step": "budget"},
            )
            assert adapter.build("cases.step", {"uid": "ab 12", "step": "x"}) == (
                "/applications/ab%2012/steps/x"
            )
        second.jinja_env.compile = type(second.jinja_env).compile.__get__(second.jinja_env)
        again = second.test_client().get("/login").get_data(as_text=True)
    strip = re.compile(r'name="(?:csrf_token|login_seal)"[^>]*value="[^"]*"')
    assert strip.sub("", again) == strip.sub("", page)
