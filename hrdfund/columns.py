"""Column helpers shared by every model: data classes, ids, money, enums, encryption.

Every column carries a data class in ``info["data_class"]`` (SECURITY.md, promise 20):
public, internal, personal, sensitive or financial. Sensitive and financial columns are
stored encrypted through :class:`Encrypted`.
"""

import json
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app

PUBLIC = "public"
INTERNAL = "internal"
PERSONAL = "personal"
SENSITIVE = "sensitive"
FINANCIAL = "financial"
DATA_CLASSES = (PUBLIC, INTERNAL, PERSONAL, SENSITIVE, FINANCIAL)
ENCRYPTED_CLASSES = (SENSITIVE, FINANCIAL)


def utcnow():
    """The current time in UTC, naive, as every timestamp column stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_uid():
    """A random opaque identifier for a row, used in URLs, audit entries and encryption."""
    return secrets.token_hex(10)


def col(type_, data_class=INTERNAL, **kwargs):
    """A column with its data class recorded."""
    info = dict(kwargs.pop("info", {}), data_class=data_class)
    return sa.orm.mapped_column(type_, info=info, **kwargs)


def pk():
    """An integer primary key."""
    return col(sa.Integer, INTERNAL, primary_key=True)


def fk(target, data_class=INTERNAL, nullable=False, index=True, ondelete=None, **kwargs):
    """A foreign key column to ``target`` ("table.column")."""
    return sa.orm.mapped_column(
        sa.ForeignKey(target, ondelete=ondelete),
        nullable=nullable,
        index=index,
        info={"data_class": data_class},
        **kwargs,
    )


def uid_column():
    """The row's opaque identifier; bound into the row's ciphertexts."""
    return col(sa.String(20), INTERNAL, nullable=False, unique=True, default=new_uid)


def created_at():
    return col(sa.DateTime, INTERNAL, nullable=False, default=utcnow)


def money(nullable=False, data_class=INTERNAL, **kwargs):
    """An amount: Numeric(14, 2), always beside a currency column."""
    return col(sa.Numeric(14, 2), data_class, nullable=nullable, **kwargs)


def currency(nullable=False, **kwargs):
    """An ISO 4217 currency code."""
    return col(sa.String(3), INTERNAL, nullable=nullable, **kwargs)


def enum(enum_cls, name, data_class=INTERNAL, **kwargs):
    """A string enum stored as VARCHAR with a CHECK constraint (portable, easy to migrate)."""
    type_ = sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )
    return col(type_, data_class, **kwargs)


def currency_check(column):
    """CHECK that a currency column holds three capital letters."""
    return sa.CheckConstraint(
        f"length({column}) = 3 AND upper({column}) = {column}", name=f"{column}_code"
    )


class Encrypted:
    """An attribute stored as AES-GCM ciphertext in the mapped column ``_<name>``.

    The table, the column and the row's ``uid`` are bound as associated data, so a
    ciphertext copied to another row or column does not decrypt. ``json=True`` stores
    any JSON-serialisable value.
    """

    def __init__(self, json=False, name=None):
        self.json = json
        self.name = name

    def __set_name__(self, owner, name):
        self.name = self.name or name
        self.column = "_" + self.name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        blob = getattr(obj, self.column)
        if blob is None:
            return None
        text = cipher().decrypt(blob, obj.__tablename__, self.name, obj.uid)
        return json.loads(text) if self.json else text

    def __set__(self, obj, value):
        if obj.uid is None:
            obj.uid = new_uid()
        if value is None:
            setattr(obj, self.column, None)
            return
        text = json.dumps(value, sort_keys=True) if self.json else str(value)
        setattr(obj, self.column, cipher().encrypt(text, obj.__tablename__, self.name, obj.uid))


def encrypted_column(name, data_class=SENSITIVE, nullable=True):
    """The storage column behind an :class:`Encrypted` attribute."""
    return col(sa.LargeBinary, data_class, name=name, nullable=nullable)


def cipher():
    """The application's field cipher."""
    return current_app.extensions["hrdfund_cipher"]
