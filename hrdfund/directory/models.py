"""An entry of the directory: a provider or partner that helps defenders somewhere (a
clinic, a therapist, a school, a lawyer, a shelter, a trusted intermediary), kept by one
member fund and shown to the whole network or to that fund only."""

import enum

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    FINANCIAL,
    INTERNAL,
    SENSITIVE,
    Encrypted,
    Text,
    col,
    created_at,
    encrypted_column,
    fk,
    pk,
    uid_column,
)
from ..core.columns import enum as enum_col
from ..core.extensions import db


class Service(enum.StrEnum):
    """A kind of help an entry gives."""

    MEDICAL = "medical"
    PSYCHOSOCIAL = "psychosocial"
    SCHOOLING = "schooling"
    CHILDCARE = "childcare"
    LEGAL = "legal"
    RELOCATION_HOST = "relocation_host"
    SHELTER = "shelter"
    DIGITAL_SECURITY = "digital_security"
    PAYMENT_INTERMEDIARY = "payment_intermediary"


SERVICE_LABELS = {
    Service.MEDICAL: _l("Medical care"),
    Service.PSYCHOSOCIAL: _l("Psychosocial care"),
    Service.SCHOOLING: _l("Schooling for dependants"),
    Service.CHILDCARE: _l("Childcare"),
    Service.LEGAL: _l("Legal aid"),
    Service.RELOCATION_HOST: _l("Relocation host"),
    Service.SHELTER: _l("Shelter"),
    Service.DIGITAL_SECURITY: _l("Digital security help"),
    Service.PAYMENT_INTERMEDIARY: _l("Trusted payment intermediary"),
}


class Visibility(enum.StrEnum):
    #: Every member fund's staff find it.
    NETWORK = "network"
    #: Only the staff of the fund that keeps it.
    FUND = "fund"


VISIBILITY_LABELS = {
    Visibility.NETWORK: _l("Every member fund"),
    Visibility.FUND: _l("Our fund only"),
}


class DirectoryEntry(db.Model):
    """A provider or partner, what it offers where and in which languages, how to reach it
    safely and who may refer to it; kept up to date by its owner fund's managers."""

    __tablename__ = "directory_entries"
    NAME_MAX = 160
    CONTACT_MAX = 1000
    REFERRERS_MAX = 500
    PAYMENT_MAX = 500

    id: Mapped[int] = pk()
    uid = uid_column()
    #: The fund that keeps the entry: its managers edit it, its staff are reminded of it.
    fund_id = fk("funds.id")
    #: A shelter's or a therapist's name can lead to a person: encrypted.
    _name = encrypted_column("name", SENSITIVE, nullable=False)
    name = Encrypted()
    #: Service codes (:class:`Service`), ISO 3166 country codes, region names (as
    #: ``geo.REGIONS`` spells them) and language codes, as JSON lists.
    services = col(sa.JSON, INTERNAL, text=Text.CODE, nullable=False, default=list)
    countries = col(sa.JSON, INTERNAL, text=Text.CODE, nullable=False, default=list)
    regions = col(sa.JSON, INTERNAL, text=Text.CODE, nullable=False, default=list)
    languages = col(sa.JSON, INTERNAL, text=Text.CODE, nullable=False, default=list)
    #: How to reach it safely (Signal, an encrypted address, through whom).
    _contact = encrypted_column("contact", SENSITIVE, nullable=False)
    contact = Encrypted()
    #: Who may refer a defender to it (anyone, member funds, partners it knows...).
    _referrers = encrypted_column("referrers", SENSITIVE)
    referrers = Encrypted()
    #: Account, phone or name to pay it: set and read by finance only.
    _payment_details = encrypted_column("payment_details", FINANCIAL)
    payment_details = Encrypted()
    visibility = enum_col(
        Visibility, "directory_visibility", nullable=False, default=Visibility.FUND
    )
    #: The day its owner fund last checked that the entry is still right.
    verified_on = col(sa.Date, INTERNAL, nullable=False)
    created_by_id = fk("users.id")
    created_at = created_at()
    updated_at = col(sa.DateTime, INTERNAL, nullable=True)

    fund = relationship("Fund")

    @property
    def offers_payment(self):
        """Whether finance may choose it as a payment's payee."""
        return self._payment_details is not None
