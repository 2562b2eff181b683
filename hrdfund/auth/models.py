"""Funds, partner organisations and users with their roles."""

import enum

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, relationship

from ..core.columns import (
    INTERNAL,
    PERSONAL,
    PUBLIC,
    SENSITIVE,
    Encrypted,
    Text,
    col,
    created_at,
    encrypted_column,
    fk,
    money,
    pk,
    uid_column,
)
from ..core.columns import (
    enum as enum_col,
)
from ..core.extensions import db


class Role(enum.StrEnum):
    APPLICANT = "applicant"
    PARTNER = "partner"
    REVIEWER = "reviewer"
    MANAGER = "manager"
    FINANCE = "finance"
    DONOR = "donor"
    ADMIN = "admin"
    #: Manages the member funds of the instance (creates, suspends, names the intake
    #: fund); belongs to no fund and opens no case.
    NETWORK_ADMIN = "network_admin"


#: Roles that must use a TOTP second factor (SECURITY.md, promise 7).
TOTP_ROLES = frozenset(
    {
        Role.PARTNER,
        Role.REVIEWER,
        Role.MANAGER,
        Role.FINANCE,
        Role.DONOR,
        Role.ADMIN,
        Role.NETWORK_ADMIN,
    }
)
#: Roles working inside a fund on cases.
STAFF_ROLES = frozenset({Role.REVIEWER, Role.MANAGER, Role.FINANCE, Role.ADMIN})
#: Roles on the defenders' side: pages without script, longer idle timeout.
APPLICANT_ROLES = frozenset({Role.APPLICANT, Role.PARTNER})


class Fund(db.Model):
    """A protection fund: the organisation that owns staff, pools and cases. Several funds
    may share an instance, each a member of its network with its own settings; a setting
    left empty is the environment's."""

    __tablename__ = "funds"
    __table_args__ = (
        sa.CheckConstraint(
            "four_eyes_threshold IS NULL OR four_eyes_threshold >= 0", name="threshold_positive"
        ),
        sa.CheckConstraint(
            "(four_eyes_threshold IS NULL) = (four_eyes_currency IS NULL)",
            name="threshold_has_currency",
        ),
        sa.CheckConstraint(
            "(target_response_hours_urgent IS NULL OR target_response_hours_urgent > 0)"
            " AND (target_decision_hours_urgent IS NULL OR target_decision_hours_urgent > 0)"
            " AND (target_response_hours_normal IS NULL OR target_response_hours_normal > 0)"
            " AND (target_decision_hours_normal IS NULL OR target_decision_hours_normal > 0)",
            name="targets_positive",
        ),
        sa.CheckConstraint(
            "partner_of_id IS NULL OR (NOT takes_applications AND NOT intake)",
            name="partner_takes_no_applications",
        ),
        # A member fund's name is its own on the server; a partner fund's, among the
        # partners of the fund that registered it (that fund's alone to know).
        sa.Index(
            "uq_funds_member_name",
            "name",
            unique=True,
            sqlite_where=sa.text("partner_of_id IS NULL"),
            postgresql_where=sa.text("partner_of_id IS NULL"),
        ),
        sa.Index(
            "uq_funds_partner_name",
            "partner_of_id",
            "name",
            unique=True,
            sqlite_where=sa.text("partner_of_id IS NOT NULL"),
            postgresql_where=sa.text("partner_of_id IS NOT NULL"),
        ),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    name = col(sa.String(120), PUBLIC, text=Text.LABEL, nullable=False)
    #: Listed on the public page of member funds, and offered when applying.
    takes_applications = col(
        sa.Boolean, PUBLIC, nullable=False, default=True, server_default=sa.true()
    )
    #: The fund an application goes to when its applicant does not know which to choose.
    intake = col(sa.Boolean, PUBLIC, nullable=False, default=False, server_default=sa.false())
    #: Set by the network's administrator: staff cannot sign in, no application reaches it.
    suspended_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: What the fund covers, as the public page lists it: category codes, ISO 3166 country
    #: codes, language codes (JSON lists; empty means every one).
    categories = col(sa.JSON, PUBLIC, text=Text.CODE, nullable=False, default=list)
    countries = col(sa.JSON, PUBLIC, text=Text.CODE, nullable=False, default=list)
    languages = col(sa.JSON, PUBLIC, text=Text.CODE, nullable=False, default=list)
    #: The fund's own four-eyes threshold, in the reporting currency it was set in.
    four_eyes_threshold = money(nullable=True)
    four_eyes_currency = col(sa.String(3), INTERNAL, text=Text.CURRENCY, nullable=True)
    target_response_hours_urgent = col(sa.Integer, INTERNAL, nullable=True)
    target_decision_hours_urgent = col(sa.Integer, INTERNAL, nullable=True)
    target_response_hours_normal = col(sa.Integer, INTERNAL, nullable=True)
    target_decision_hours_normal = col(sa.Integer, INTERNAL, nullable=True)
    #: Where its staff work, as an IANA name (Africa/Nairobi): their pages give times in
    #: it; None: in UTC.
    time_zone = col(sa.String(64), INTERNAL, text=Text.CODE, nullable=True)
    #: Set for a fund on another server, registered as a partner by this member fund: the
    #: record referrals to and from it point at. It has no staff, pools or queue, takes no
    #: application and is listed nowhere but to the member fund that registered it.
    partner_of_id = fk("funds.id", nullable=True)
    #: A partner fund's own identifier on its server, as its public key names it.
    remote_uid = col(sa.String(20), INTERNAL, text=Text.UID, nullable=True)
    created_at = created_at()

    @property
    def suspended(self):
        return self.suspended_at is not None

    @property
    def elsewhere(self):
        """A partner fund on another server, not a member fund of this one."""
        return self.partner_of_id is not None


class PartnerOrganisation(db.Model):
    """A local or regional organisation that refers defenders to a fund."""

    __tablename__ = "partner_organisations"
    id: Mapped[int] = pk()
    uid = uid_column()
    name = col(sa.String(160), INTERNAL, text=Text.LABEL, nullable=False)
    #: ISO 3166 alpha-2 country where the organisation works.
    country = col(sa.String(2), INTERNAL, text=Text.CODE, nullable=True)
    created_at = created_at()


class User(UserMixin, db.Model):
    """An account. Applicants need no real name, email or phone."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "role != 'partner' OR partner_organisation_id IS NOT NULL", name="partner_has_org"
        ),
        sa.CheckConstraint("role != 'donor' OR donor_id IS NOT NULL", name="donor_has_donor"),
        sa.CheckConstraint(
            "role IN ('applicant', 'partner', 'network_admin') OR fund_id IS NOT NULL",
            name="staff_has_fund",
        ),
        sa.CheckConstraint(
            "role != 'network_admin' OR fund_id IS NULL", name="network_admin_has_no_fund"
        ),
    )
    LOGIN_MAX = 64
    NAME_MAX = 120

    id: Mapped[int] = pk()
    uid = uid_column()
    #: Sign-in name chosen by the user; no real name needed.
    login = col(sa.String(LOGIN_MAX), PERSONAL, text=Text.LOGIN, nullable=False, unique=True)
    #: Name shown to colleagues; applicants may leave it as a pseudonym.
    _display_name = encrypted_column("display_name", SENSITIVE)
    display_name = Encrypted()
    #: Argon2id hash; NULL means the account cannot sign in with a password.
    password_hash = col(sa.String(255), INTERNAL, text=Text.HASH, nullable=True)
    role = enum_col(Role, "role", nullable=False, index=True)
    fund_id = fk("funds.id", nullable=True)
    partner_organisation_id = fk("partner_organisations.id", nullable=True)
    donor_id = fk("donors.id", nullable=True)
    active = col(sa.Boolean, INTERNAL, nullable=False, default=True)
    #: Staff on duty receive the alerts of cases no one is assigned to yet.
    on_duty = col(sa.Boolean, INTERNAL, nullable=False, default=False, server_default=sa.false())
    language = col(sa.String(8), INTERNAL, text=Text.CODE, nullable=True)

    _totp_secret = encrypted_column("totp_secret", SENSITIVE)
    totp_secret = Encrypted()
    #: When the second factor was first confirmed with a valid code.
    totp_confirmed_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: Last TOTP time step accepted, so no code is used twice.
    totp_last_step = col(sa.BigInteger, INTERNAL, nullable=True)
    #: After an administrator reset a lost authenticator: keyed hash of the code they were
    #: shown once, to hand to the person; the new authenticator is shown only to someone
    #: who types it, not to whoever has the password alone. Gone once it is set up. Read
    #: only while signing in: loaded when asked, not with the account on every request.
    reset_code_hash = col(sa.String(32), INTERNAL, text=Text.HASH, nullable=True, deferred=True)

    #: A safe way for the fund to reach an applicant (Signal, email, through a partner).
    _contact = encrypted_column("contact", SENSITIVE)
    contact = Encrypted()
    #: Applicant side: a notice goes to ``contact``, when it is an email address, each time
    #: the fund writes, decides or pays on one of the account's cases (``alerts.notices``).
    notices = col(sa.Boolean, INTERNAL, nullable=False, default=True, server_default=sa.true())
    #: Applicant side: the notice names no fund (sender, subject, body), only that there is
    #: news and where to sign in. On unless the account turns it off.
    notices_discreet = col(
        sa.Boolean, INTERNAL, nullable=False, default=True, server_default=sa.true()
    )

    #: Bumped at logout, password change and "end sessions": older cookies stop working.
    session_version = col(sa.Integer, INTERNAL, nullable=False, default=1)
    last_login_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: Set when retention emptied an applicant's account (`flask hrdfund purge`).
    purged_at = col(sa.DateTime, INTERNAL, nullable=True)
    created_at = created_at()

    fund = relationship("Fund")
    partner_organisation = relationship("PartnerOrganisation")
    donor = relationship("Donor")

    def get_id(self):
        """Flask-Login's cookie value: the id and the session version."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self):
        return self.active and not (self.fund is not None and self.fund.suspended)

    @property
    def is_authenticated(self):
        """An account signed in: whether it may still be is ``is_active``, checked as each
        request loads the session's user (``guard._load_user``), so that a suspension ends
        a session at its next request. Flask-Login's own answer read ``is_active`` at each
        of the dozens of checks of a page, reloading the account and its fund each time
        a commit or rollback had expired them."""
        return True

    @property
    def needs_totp(self):
        return self.role in TOTP_ROLES

    @property
    def is_staff(self):
        return self.role in STAFF_ROLES

    @property
    def is_applicant_side(self):
        return self.role in APPLICANT_ROLES

    @property
    def pseudonym(self):
        """How audit entries and logs name this user: never the login."""
        return f"u{self.id}"


class RecoveryCode(db.Model):
    """One of the codes that sign a user in once when their authenticator is lost. Only a
    keyed hash is kept; the codes are shown once, when the second factor is set up."""

    __tablename__ = "recovery_codes"
    __table_args__ = (sa.UniqueConstraint("user_id", "code_hash"),)
    id: Mapped[int] = pk()
    user_id = fk("users.id", ondelete="CASCADE")
    code_hash = col(sa.String(64), INTERNAL, text=Text.HASH, nullable=False)
    used_at = col(sa.DateTime, INTERNAL, nullable=True)
    created_at = created_at()


class SignInLimit(db.Model):
    """A counter of failed sign-ins at one login name: per login and client (a browser, named
    by the random token in its cookie), or per login for every client that never signed in
    to it. A row is named by a keyed hash of the normalised login (and the token) and holds
    no login, token or address; one about a login that has no account looks like any other.
    See ``auth/throttle.py``."""

    __tablename__ = "sign_in_limits"
    __table_args__ = (sa.CheckConstraint("failures >= 0", name="failures_positive"),)
    id: Mapped[int] = pk()
    #: Keyed hash naming the counter: the login, and the client or "every new client".
    key = col(sa.String(32), INTERNAL, text=Text.HASH, nullable=False, unique=True)
    #: Attempts counted since ``counting_since`` (one being checked counts already).
    failures = col(sa.Integer, INTERNAL, nullable=False, default=0)
    #: When the failures counted now began; they are forgotten a lock window after it.
    counting_since = col(sa.DateTime, INTERNAL, nullable=True)
    locked_until = col(sa.DateTime, INTERNAL, nullable=True)
    #: For a client's counter: the client completed a sign-in to this login (both factors)
    #: and counts as known to it, exempt from the limit on new clients, until then.
    known_until = col(sa.DateTime, INTERNAL, nullable=True)
    #: When the row says nothing any more and may be deleted.
    expires_at = col(sa.DateTime, INTERNAL, nullable=False, index=True)


class RefusedForm(db.Model):
    """A form the application refused, kept for the page it comes back on (``refused.py``):
    what was typed (never a password, a code, a CSRF token or a file) and what was wrong,
    encrypted, for a few minutes. A row is named by a keyed hash of a random token that
    only the browser's session holds and of who sent the form, so it says nothing of whom
    or which page it is about."""

    __tablename__ = "refused_forms"
    id: Mapped[int] = pk()
    uid = uid_column()
    #: Keyed hash of the session's token and of the user (or the browser, before sign-in).
    key = col(sa.String(32), INTERNAL, text=Text.HASH, nullable=False, unique=True)
    _content = encrypted_column("content", SENSITIVE, nullable=False)
    #: The page, the form, what was typed and the errors, as JSON.
    content = Encrypted(json=True)
    #: After this the form is not shown any more, and the row may be deleted.
    expires_at = col(sa.DateTime, INTERNAL, nullable=False, index=True)


class PasswordCheckBudget(db.Model):
    """The server's budget of password checks (each an Argon2id hash), shared by every
    process: one row, moved forward by each check it grants. See ``auth/budget.py``."""

    __tablename__ = "password_check_budget"
    id: Mapped[int] = pk()
    #: The checks granted so far use the budget up to this moment; a new one is granted
    #: while it lies less than the allowed burst ahead of now.
    spent_until = col(sa.DateTime, INTERNAL, nullable=False)


#: Roles an administrator may invite into their fund: never another administrator (the
#: network's administrator creates a fund with its first one) nor the network's.
INVITABLE_ROLES = (Role.REVIEWER, Role.MANAGER, Role.FINANCE, Role.DONOR)
#: Roles that read case content or move money: an invitation to one opens only with a code
#: a manager of the fund gives when confirming it, so that no administrator alone makes an
#: account that reads cases or is the second manager of an approval.
CONFIRMED_ROLES = (Role.REVIEWER, Role.MANAGER, Role.FINANCE)


class Invitation(db.Model):
    """An administrator's invitation to a new staff or donor account of their fund: a
    one-time link whose random token only its keyed hash here names. The person who opens
    it sets a password and enrols the second factor; the link then stops working, as it
    does once expired or withdrawn."""

    __tablename__ = "invitations"
    __table_args__ = (
        sa.CheckConstraint("role IN ('reviewer', 'manager', 'finance', 'donor')", name="invitable"),
        sa.CheckConstraint("(role = 'donor') = (donor_id IS NOT NULL)", name="donor_for_donor"),
        sa.CheckConstraint(
            "accepted_at IS NULL OR user_id IS NOT NULL", name="accepted_has_account"
        ),
        sa.CheckConstraint(
            "(confirmed_at IS NULL) = (code_hash IS NULL)",
            name="confirmed_whole",
        ),
    )
    id: Mapped[int] = pk()
    uid = uid_column()
    #: Keyed hash of the link's token; the token itself is shown once, to the administrator.
    token_hash = col(sa.String(32), INTERNAL, text=Text.HASH, nullable=False, unique=True)
    #: For a role in ``CONFIRMED_ROLES``: keyed hash of the code the confirming manager was
    #: shown once, to give the person apart from the link.
    code_hash = col(sa.String(32), INTERNAL, text=Text.HASH, nullable=True)
    #: The manager who confirmed it; none when the server's operator did.
    confirmed_by_id = fk("users.id", nullable=True)
    confirmed_at = col(sa.DateTime, INTERNAL, nullable=True)
    fund_id = fk("funds.id")
    role = enum_col(Role, "invitation_role", nullable=False)
    #: The login name the account will have, set by the administrator.
    login = col(sa.String(User.LOGIN_MAX), PERSONAL, text=Text.LOGIN, nullable=False)
    #: For a donor account: the donor whose pools it reads.
    donor_id = fk("donors.id", nullable=True)
    invited_by_id = fk("users.id")
    created_at = created_at()
    expires_at = col(sa.DateTime, INTERNAL, nullable=False)
    accepted_at = col(sa.DateTime, INTERNAL, nullable=True)
    #: The account made when the invitation was accepted.
    user_id = fk("users.id", nullable=True)
    revoked_at = col(sa.DateTime, INTERNAL, nullable=True)

    fund = relationship("Fund")
    donor = relationship("Donor")
    user = relationship("User", foreign_keys=[user_id])
    invited_by = relationship("User", foreign_keys=[invited_by_id])
    confirmed_by = relationship("User", foreign_keys=[confirmed_by_id])

    def usable(self, now):
        """Whether the link still opens: not accepted, withdrawn or expired."""
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now

    @classmethod
    def opening(cls, now):
        """SQL: the invitations whose link still opens, as :meth:`usable` says."""
        return sa.and_(cls.accepted_at.is_(None), cls.revoked_at.is_(None), cls.expires_at > now)

    @property
    def needs_code(self):
        """Whether the account opens only with a confirming manager's code."""
        return self.role in CONFIRMED_ROLES

    @property
    def waiting_for_manager(self):
        """Whether a manager of the fund has still to confirm it: no one has, or the
        manager who did is no longer an active manager of the fund (their code stopped
        working with their account)."""
        if not self.needs_code:
            return False
        if self.confirmed_at is None:
            return True
        manager = self.confirmed_by
        return manager is not None and not (
            manager.active and manager.role == Role.MANAGER and manager.fund_id == self.fund_id
        )
