"""A request's unit of work: the one place a view's changes are committed.

A view authorizes, validates its form, then calls its service through :func:`perform`,
naming the domain errors the service may refuse with. The changes are committed as soon as
the service returns; a refusal undoes everything the request wrote and comes back as
an :class:`Outcome` the view turns into a form error or a flash, in the refusal's words.
Any other error is not caught: the 500 handler rolls back. Services only flush; the
sign-in limits, a refused form kept for its page, CLI commands and the alerts' sending
commit themselves, as each says.
"""

from dataclasses import dataclass

from .extensions import db, end_read, writing


@dataclass(frozen=True)
class Outcome:
    """What a unit of work came to: the service's return ``value``, or the ``refusal``
    (the domain error it raised) when nothing was kept."""

    value: object = None
    refusal: Exception | None = None

    @property
    def ok(self):
        """Whether the service's changes were committed."""
        return self.refusal is None

    @property
    def words(self):
        """The refusal's message, as a form error or a flash shows it."""
        return None if self.refusal is None else str(self.refusal)


def perform(service, *args, refused=(), **kwargs):
    """Call ``service(*args, **kwargs)`` and commit what it did; when it (or the commit)
    raises one of the ``refused`` errors (a class or a tuple of them), undo it instead
    (rolled back, or when it wrote nothing ended as a read is). Returns the
    :class:`Outcome`.

    In a request that only reads, the service runs in a short transaction of its own that
    begins with the write lock (:func:`~hrdfund.core.extensions.writing`)."""
    try:
        with writing():
            value = service(*args, **kwargs)
    except refused as exc:
        # A refusal that wrote nothing ends as a read does (with COMMIT on PostgreSQL,
        # which keeps the statements psycopg prepared); one that wrote is rolled back.
        end_read(db.session)
        return Outcome(refusal=exc)
    return Outcome(value=value)


#: The mark :func:`reads_first` leaves on a view.
READS_FIRST = "hrdfund_reads_first"


def reads_first(view):
    """Mark a form's view that reads and checks everything it needs (the account, the
    case, every field of the form) before its one :func:`perform`, and writes nothing
    outside it: on SQLite its request then begins with no write lock, as a page does, and
    the lock is taken by ``perform`` for the service's transaction alone (the case and the
    account read again there, so no check rests on a read another writer could have
    changed). Its form's validation and its reads are then no longer done while every
    other form waits for the lock."""
    setattr(view, READS_FIRST, True)
    return view
