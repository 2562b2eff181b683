"""The page number of a paged list, read from the address."""

from flask import request

#: No list has this many pages; a larger number is read as the last one asked for.
MAX_PAGE = 100_000


def page_arg():
    """The ``page`` argument as a number from 1 to :data:`MAX_PAGE`: anything else (a word,
    a negative or a number too large for the database) falls back within that range."""
    page = request.args.get("page", 1, type=int)
    return max(1, min(page, MAX_PAGE))
