"""The bulk writer that lets ``flask hrdfund demo-data --scale`` (and ``make bench``) load
100,000 applications in about a minute: rows are queued with ids assigned here, so foreign
keys are filled in Python, and written in batches: Core inserts on SQLite, COPY on
PostgreSQL (where executemany costs a round of the pipeline per row)."""

import os

import sqlalchemy as sa

from ..core.extensions import db


def uids():
    """Row uids as ``new_uid`` makes them, drawn from the system's randomness in blocks."""
    while True:
        block = os.urandom(10 * 4096).hex()
        for start in range(0, len(block), 20):
            yield block[start : start + 20]


class Table:
    """Rows waiting to be written to one table, with their ids assigned here."""

    def __init__(self, model, use_copy):
        self.table = model.__table__
        self.rows = []
        self.count = 0
        self.use_copy = use_copy
        last = db.session.execute(sa.select(sa.func.max(self.table.c.id))).scalar()
        self.next_id = (last or 0) + 1

    def add(self, row):
        """Queue a row (every row of a table sets the same columns); return its id."""
        row["id"] = row_id = self.next_id
        self.next_id += 1
        self.rows.append(row)
        return row_id

    def flush(self):
        """Write the queued rows."""
        if not self.rows:
            return
        if self.use_copy:
            self._copy()
        else:
            db.session.execute(sa.insert(self.table), self.rows)
        self.count += len(self.rows)
        self.rows = []

    def _copy(self):
        columns = list(self.rows[0])
        names = ", ".join(f'"{name}"' for name in columns)
        raw = db.session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f'COPY "{self.table.name}" ({names}) FROM STDIN') as copy:
                for row in self.rows:
                    copy.write_row([row[name] for name in columns])


def reset_sequences(models):
    """Move each table's id sequence past the ids written here (PostgreSQL)."""
    for model in models:
        name = model.__tablename__
        db.session.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "  # noqa: S608
                f'COALESCE(MAX(id), 0) + 1, false) FROM "{name}"'
            )
        )
