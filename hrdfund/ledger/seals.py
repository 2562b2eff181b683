"""The ledger's seals and its refusal of edits, registered from one place: :func:`install`.

Every contribution, allocation, release and disbursement is sealed as it is written (an
HMAC of its money fields under the audit key, which `flask hrdfund check` recomputes), and
no ledger row is ever updated through the application. On PostgreSQL a trigger makes the
database itself refuse to edit or delete a final row, whoever asks.
"""

import sqlalchemy as sa

from .. import audit
from ..core.columns import ENCRYPTED_CLASSES, Text, new_uid
from ..core.extensions import db
from .models import (
    Allocation,
    Contribution,
    Delivery,
    Disbursement,
    ReceiptAnswer,
    ReceiptResolution,
    Release,
)

#: Tables whose rows are final once written: corrections are new rows.
FINAL_TABLES = (
    "contributions",
    "allocations",
    "releases",
    "disbursements",
    "deliveries",
    "receipt_answers",
    "receipt_resolutions",
)

#: On PostgreSQL the database itself refuses to edit or delete a final row, whoever asks.
#: The trigger's arguments name the columns an UPDATE may change: the encrypted ones, which
#: key rotation rewrites and retention empties, and their blind indexes, which retention
#: empties too. An UPDATE changing anything else, or nothing at all, is refused.
FINAL_ROWS_FUNCTION = """
CREATE OR REPLACE FUNCTION hrdfund_rows_are_final() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND TG_NARGS > 0
       AND (to_jsonb(NEW) - TG_ARGV) = (to_jsonb(OLD) - TG_ARGV)
       AND to_jsonb(NEW) <> to_jsonb(OLD) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION USING MESSAGE =
        TG_TABLE_NAME || ' rows are never edited or deleted; record a reversal instead';
END;
$$ LANGUAGE plpgsql
"""


def writable_columns(table):
    """The columns of a final ``table`` that an UPDATE may change: the encrypted ones and
    their blind indexes."""
    return [
        column.name
        for column in db.metadata.tables[table].columns
        if column.info.get("data_class") in ENCRYPTED_CLASSES
        or column.info.get("text") == Text.BLIND_INDEX
    ]


def final_rows_trigger(table):
    """The statement that makes ``table``'s rows final on PostgreSQL."""
    writable = ", ".join(f"'{name}'" for name in writable_columns(table))
    return (
        f"CREATE TRIGGER {table}_rows_are_final BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION hrdfund_rows_are_final({writable})"
    )


class LedgerImmutableError(Exception):
    """A past money row was about to be edited; corrections are new reversal rows."""


#: The rows sealed as they are written: their money fields, under the audit key.
SEALED_MODELS = (Contribution, Allocation, Release, Disbursement)
#: The rows never updated through the application once written.
FINAL_MODELS = (*SEALED_MODELS, Delivery, ReceiptAnswer, ReceiptResolution)


def _seal_on_insert(mapper, _connection, target):
    if target.uid is None:
        target.uid = new_uid()
    # Column defaults apply after this hook: set them now, so the seal covers them.
    for name in audit.SEALED_FIELDS[target.__tablename__]:
        default = mapper.columns[name].default
        if getattr(target, name) is None and default is not None and default.is_scalar:
            setattr(target, name, default.arg)
    audit.seal_row(target)


def _refuse_update(_mapper, _connection, target):
    raise LedgerImmutableError(f"{target.__tablename__} rows are never edited")


_installed = False


def install():
    """Seal every ledger row as it is written and refuse its edits (in the application,
    and on PostgreSQL with a trigger created beside the tables). Called once the metadata
    knows every table; calling it again changes nothing."""
    global _installed
    if _installed:
        return
    for model in SEALED_MODELS:
        sa.event.listen(model, "before_insert", _seal_on_insert)
    for model in FINAL_MODELS:
        sa.event.listen(model, "before_update", _refuse_update)
    sa.event.listen(
        db.metadata,
        "after_create",
        sa.DDL(FINAL_ROWS_FUNCTION).execute_if(dialect="postgresql"),
    )
    for table in FINAL_TABLES:
        sa.event.listen(
            db.metadata,
            "after_create",
            sa.DDL(final_rows_trigger(table)).execute_if(dialect="postgresql"),
        )
    _installed = True
