"""Column helpers shared by every model: data classes, ids, money, enums, encryption.

Every column carries a data class in ``info["data_class"]`` (SECURITY.md, promise 20):
public, internal, personal, sensitive or financial. Sensitive and financial columns are
stored encrypted through :class:`Encrypted`. Text is either encrypted or says, in
``info["text"]``, why it is not free text (a :class:`Text`): whatever a person types about a
case, a payment or a person is encrypted, and a column of text that says neither fails the
data inventory test.
"""

import enum
import json
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app

from .money import stored_amount, stored_percent, stored_rate, stored_sum

PUBLIC = "public"
INTERNAL = "internal"
PERSONAL = "personal"
SENSITIVE = "sensitive"
FINANCIAL = "financial"
DATA_CLASSES = (PUBLIC, INTERNAL, PERSONAL, SENSITIVE, FINANCIAL)
ENCRYPTED_CLASSES = (SENSITIVE, FINANCIAL)


class Text(enum.StrEnum):
    """Why a column of text is stored in clear: what it holds is not free text."""

    UID = "uid"
    CODE = "code"
    CURRENCY = "currency"
    HASH = "hash"
    BLIND_INDEX = "blind_index"
    LOGIN = "login"
    LABEL = "label"
    GENERATED = "generated"


#: The reason behind each kind, as the data inventory states it.
TEXT_REASONS = {
    Text.UID: "a random identifier or token the application generates",
    Text.CODE: "a code from a fixed list the application checks (status, country, language)",
    Text.CURRENCY: "an ISO 4217 currency code",
    Text.HASH: "a hash, keyed hash or seal the application computes",
    Text.BLIND_INDEX: "a keyed hash of an encrypted value, to match it without decrypting",
    Text.LOGIN: "a sign-in name, looked up as typed at every sign-in",
    Text.LABEL: "the name of an institution (fund, donor, pool, partner), not of a person",
    Text.GENERATED: "text the application composes from ids, codes and amounts only",
}


def is_text(column):
    """Whether ``column`` stores text in clear (strings, enums, JSON)."""
    return isinstance(column.type, (sa.String, sa.JSON))


def utcnow():
    """The current time in UTC, naive, as every timestamp column stores it."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_uid():
    """A random opaque identifier for a row, used in URLs, audit entries and encryption."""
    return secrets.token_hex(10)


def col(type_, data_class=INTERNAL, text=None, **kwargs):
    """A column with its data class recorded, and for text in clear why it is not free
    text (``text``, a :class:`Text`)."""
    info = dict(kwargs.pop("info", {}), data_class=data_class)
    if text is not None:
        info["text"] = Text(text)
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
    """The row's opaque identifier; bound into the row's ciphertexts. Unique and made on
    this side, it tells the database's answers to one INSERT of many rows apart, so the
    ORM writes a case's budget lines or references in one statement on SQLite too (an
    insert sentinel)."""
    return col(
        sa.String(20),
        INTERNAL,
        text=Text.UID,
        nullable=False,
        unique=True,
        default=new_uid,
        insert_sentinel=True,
    )


def created_at():
    return col(sa.DateTime, INTERNAL, nullable=False, default=utcnow)


class _Checked(sa.types.TypeDecorator):
    """A Numeric column that refuses, whoever writes, a value it cannot store exactly.

    The schema is the plain Numeric's (migrations compare and render it as such); only
    the values bound to INSERT and UPDATE pass the check. A value compared with the
    column in a query is bound as the plain Numeric: a filter may use any Decimal.
    """

    impl = sa.Numeric

    def coerce_compared_value(self, op, value):
        return self.impl_instance

    def process_bind_param(self, value, dialect):
        return None if value is None else self.check(value)


class Money(_Checked):
    """Numeric(14, 2) holding whole cents only: a float, NaN, "-0" or a third decimal
    place raises :class:`hrdfund.core.money.MoneyError` instead of being rounded by one
    database and kept by the other (which breaks the row's seal)."""

    cache_ok = True

    def __init__(self):
        super().__init__(14, 2)

    check = staticmethod(stored_amount)


class Sum(_Checked):
    """Numeric(20, 2) of whole cents: a total kept as amounts are added to it, which may
    grow past what one amount's column holds."""

    cache_ok = True

    def __init__(self):
        super().__init__(20, 2)

    check = staticmethod(stored_sum)


class Rate(_Checked):
    """Numeric(18, 8) holding a rate in the rate range with at most eight places."""

    cache_ok = True

    def __init__(self):
        super().__init__(18, 8)

    check = staticmethod(stored_rate)


class Percent(_Checked):
    """Numeric(9, 6) holding a percentage from 0 to 100 with at most six places."""

    cache_ok = True

    def __init__(self):
        super().__init__(9, 6)

    check = staticmethod(stored_percent)


def money(nullable=False, data_class=INTERNAL, **kwargs):
    """An amount: Numeric(14, 2) of whole cents, always beside a currency column."""
    return col(Money(), data_class, nullable=nullable, **kwargs)


def kept_sum(nullable=False, data_class=INTERNAL, **kwargs):
    """A total kept as rows are written: Numeric(20, 2) of whole cents."""
    return col(Sum(), data_class, nullable=nullable, **kwargs)


def rate(nullable=False, data_class=INTERNAL, **kwargs):
    """An exchange rate: Numeric(18, 8), units of one currency per unit of another."""
    return col(Rate(), data_class, nullable=nullable, **kwargs)


def percent(nullable=False, data_class=INTERNAL, **kwargs):
    """A limit set as a percentage: Numeric(9, 6), from 0 to 100."""
    return col(Percent(), data_class, nullable=nullable, **kwargs)


def currency(nullable=False, **kwargs):
    """An ISO 4217 currency code."""
    return col(sa.String(3), INTERNAL, text=Text.CURRENCY, nullable=nullable, **kwargs)


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
    return col(type_, data_class, text=Text.CODE, **kwargs)


def currency_check(column):
    """CHECK that a currency column holds three capital letters."""
    return sa.CheckConstraint(
        f"length({column}) = 3 AND upper({column}) = {column}", name=f"{column}_code"
    )


class Encrypted:
    """An attribute stored as AES-GCM ciphertext in the mapped column ``_<name>``.

    The table, the column and the row's ``uid`` are bound as associated data, so a
    ciphertext copied to another row or column does not decrypt. ``json=True`` stores
    any JSON-serialisable value. ``index=(attribute, function)`` keeps a blind index of the
    value in ``attribute`` (``function`` of the value, keyed through
    :meth:`~hrdfund.core.crypto.FieldCipher.blind_index`), for queries that match the value
    without decrypting every row.
    """

    def __init__(self, json=False, name=None, index=None):
        self.json = json
        self.name = name
        self.index = index

    def __set_name__(self, owner, name):
        self.name = self.name or name
        self.column = "_" + self.name
        self.table = owner.__tablename__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return self.read(getattr(obj, self.column), obj.uid)

    def __set__(self, obj, value):
        if obj.uid is None:
            obj.uid = new_uid()
        if self.index is not None:
            attribute, function = self.index
            setattr(obj, attribute, None if value is None else function(value))
        if value is None:
            setattr(obj, self.column, None)
            return
        text = json.dumps(value, sort_keys=True) if self.json else str(value)
        setattr(obj, self.column, cipher().encrypt(text, self.table, self.name, obj.uid))

    def __eq__(self, other):
        # ``Model.attribute == value`` in a query would compare this descriptor, not the
        # stored ciphertext, and silently match nothing: refuse it loudly instead.
        raise TypeError(
            f"{self.table}.{self.name} is encrypted: match it through a blind index, "
            "or read the rows and compare in Python"
        )

    __ne__ = __eq__
    __hash__ = object.__hash__

    def read(self, blob, uid):
        """The value of a stored ``blob`` of the row ``uid``, for queries that select the
        column rather than the model."""
        if blob is None:
            return None
        text = cipher().decrypt(blob, self.table, self.name, uid)
        return json.loads(text) if self.json else text


def encrypted_column(name, data_class=SENSITIVE, nullable=True):
    """The storage column behind an :class:`Encrypted` attribute."""
    return col(sa.LargeBinary, data_class, name=name, nullable=nullable)


def cipher():
    """The application's field cipher."""
    return current_app.extensions["hrdfund_cipher"]
