"""The application's clock, set by a test: every time ``hrdfund.core.columns.utcnow`` gives (the
time rows are recorded at, "today" for reports and forms) is the moment set, so a test can
record a year of payments month by month and download reports at chosen days."""

import contextlib
from datetime import UTC, datetime

import hrdfund.core.columns as columns


class Clock:
    """``at(moment)`` sets the application's time (naive UTC) until ``stop()``."""

    def __init__(self):
        self.moment = None
        clock = self

        class _Datetime(datetime):
            @classmethod
            def now(cls, tz=None):
                if clock.moment is None:
                    return datetime.now(tz)
                return clock.moment.replace(tzinfo=UTC).astimezone(tz) if tz else clock.moment

        self._class = _Datetime
        self._real = columns.datetime

    def at(self, moment):
        if not isinstance(moment, datetime):
            moment = datetime.combine(moment, datetime.min.time()).replace(hour=12)
        self.moment = moment
        columns.datetime = self._class
        return self

    def stop(self):
        self.moment = None
        columns.datetime = self._real

    @contextlib.contextmanager
    def on(self, moment):
        """The clock at ``moment`` inside, back to where it was after."""
        before = self.moment
        self.at(moment)
        try:
            yield self
        finally:
            if before is None:
                self.stop()
            else:
                self.at(before)
