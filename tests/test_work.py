"""A view's unit of work: committed when its service returns, rolled back when it refuses."""

import pytest
import sqlalchemy as sa

from hrdfund.auth.models import Fund
from hrdfund.core.extensions import db
from hrdfund.core.work import perform


class Refusal(Exception):
    """A rule the service refuses with."""


def add_fund(name, refuse=None):
    """Add a fund, flush it, then raise ``refuse`` if given."""
    fund = Fund(name=name)
    db.session.add(fund)
    db.session.flush()
    if refuse is not None:
        raise refuse
    return fund


def kept():
    """The funds' names as another transaction reads them."""
    db.session.rollback()
    return db.session.execute(sa.select(Fund.name).order_by(Fund.name)).scalars().all()


def test_what_the_service_did_is_committed_and_its_value_returned(app):
    outcome = perform(add_fund, "North", refused=Refusal)
    assert outcome.ok and outcome.refusal is None and outcome.words is None
    assert outcome.value.name == "North"
    assert kept() == ["North"]


def test_a_refusal_keeps_nothing_and_comes_back_in_its_words(app):
    db.session.add(Fund(name="Written before"))
    outcome = perform(add_fund, "South", refuse=Refusal("Not this one."), refused=(Refusal,))
    assert not outcome.ok and outcome.value is None
    assert isinstance(outcome.refusal, Refusal)
    assert outcome.words == "Not this one."
    assert kept() == []  # the whole request's writes are undone, not only the service's


def test_an_error_not_named_as_a_refusal_is_not_caught_and_nothing_is_committed(app):
    with pytest.raises(RuntimeError):
        perform(add_fund, "East", refuse=RuntimeError("broken"), refused=Refusal)
    assert kept() == []


def test_a_named_error_the_commit_raises_is_a_refusal_too(app):
    def add_unnamed():
        db.session.add(Fund(name=None))  # flushed only by the commit, which fails

    outcome = perform(add_unnamed, refused=(Refusal, sa.exc.IntegrityError))
    assert isinstance(outcome.refusal, sa.exc.IntegrityError)
    assert kept() == []
