"""The page number of a paged list, read from the address, and the dates a list keeps to."""

from datetime import date, timedelta

import sqlalchemy as sa
from flask import request

from .extensions import db
from .sql import before

#: No list has this many pages; a larger number is read as the last one asked for.
MAX_PAGE = 100_000


def page_arg():
    """The ``page`` argument as a number from 1 to :data:`MAX_PAGE`: anything else (a word,
    a negative or a number too large for the database) falls back within that range."""
    page = request.args.get("page", 1, type=int)
    return max(1, min(page, MAX_PAGE))


def within(day, period):
    """SQL: ``day`` (a date or time column) falls within ``period`` (first, last day,
    either None for no bound; the last day of the calendar, 9999-12-31, bounds nothing)."""
    first, last = period
    bounds = []
    if first is not None:
        bounds.append(sa.not_(before(day, first)))
    if last is not None and last < date.max:
        bounds.append(before(day, last + timedelta(days=1)))
    return sa.and_(sa.true(), *bounds)


def one_page(query, page, size):
    """Page ``page`` of the statement ``query`` (ordered), ``size`` rows to a page: the
    rows, and whether a next page has any. One more row is read than is shown, so the
    list is never counted whole."""
    rows = db.session.execute(query.limit(size + 1).offset((page - 1) * size)).all()
    return rows[:size], len(rows) > size
