"""`flask hrdfund create-user`, `create-fund`, `funds`, `pools` and `reset-second-factor`:
accounts and the funds they belong to."""

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from .. import audit
from ..auth import handed, invitations, services
from ..auth.funds import fund_name_taken
from ..auth.logins import normalise_login
from ..auth.models import Fund, PartnerOrganisation, User
from ..auth.second_factor import totp_uri
from ..core.extensions import db
from ..core.text import tidy_name
from ..pools.models import Donor, Pool


@click.command("create-user")
@click.option(
    "--role",
    required=True,
    type=click.Choice(
        [
            "applicant",
            "partner",
            "reviewer",
            "manager",
            "finance",
            "donor",
            "admin",
            "network_admin",
        ]
    ),
)
@click.option("--login", required=True)
@click.option(
    "--fund",
    "fund_name",
    default=None,
    help="Fund name (staff and donors); may be left out when there is one fund, or for a "
    "donor account (its donor's fund).",
)
@click.option("--donor", "donor_id", type=int, default=None, help="Donor id (donor role).")
@click.option(
    "--organisation",
    "organisation_id",
    type=int,
    default=None,
    help="Partner organisation id (partner role).",
)
@click.password_option(help="Prompted for when not given.")
@with_appcontext
def create_user(role, login, fund_name, donor_id, organisation_id, password):
    """Create an account; print the TOTP enrolment secret where the role needs one.

    Every link is checked before anything is created: a donor account belongs to its
    donor's fund, and each option is refused where the role takes no such link."""
    fields = _account_links(role, fund_name, donor_id, organisation_id)
    try:
        user = services.create_user(role, login, password, **fields)
        db.session.commit()
    except (
        services.PasswordPolicyError,
        services.UserExistsError,
        ValueError,
        sa.exc.IntegrityError,
    ) as exc:
        db.session.rollback()
        raise click.ClickException(_create_user_error(exc)) from exc
    click.echo(f"Created {role} account {user.login}.")
    if user.needs_totp:
        click.echo(f"TOTP enrolment secret: {user.totp_secret}")
        click.echo(f"Authenticator URI: {totp_uri(user, current_app.config['FUND_NAME'])}")


def fund_named(name):
    """The fund called ``name``, or a clear refusal."""
    fund = db.session.execute(
        sa.select(Fund).where(Fund.name == name, Fund.partner_of_id.is_(None))
    ).scalar_one_or_none()
    if fund is None:
        raise click.ClickException(
            f"no fund is named {name!r}; `flask hrdfund funds` lists them, "
            "`flask hrdfund create-fund NAME` creates one"
        )
    return fund


def _the_fund(name):
    """The fund named ``name``; without a name, the only fund, or a refusal asking for one."""
    if name:
        return fund_named(name)
    funds = (
        db.session.execute(
            sa.select(Fund).where(Fund.partner_of_id.is_(None)).order_by(Fund.id).limit(2)
        )
        .scalars()
        .all()
    )
    if not funds:
        raise click.ClickException("no fund yet; create one with `flask hrdfund create-fund NAME`")
    if len(funds) > 1:
        raise click.ClickException("there are several funds: name one with --fund")
    return funds[0]


def _account_links(role, fund_name, donor_id, organisation_id):
    """The fund, donor and organisation an account of ``role`` is linked to, each found and
    checked to belong together; a clear refusal otherwise, before anything is created."""
    if role in ("applicant", "partner", "network_admin") and fund_name:
        raise click.ClickException(
            "--fund is for staff and donor accounts: applicants, partners and the network's "
            "administrator belong to no fund"
        )
    if donor_id is not None and role != "donor":
        raise click.ClickException("--donor is for donor accounts only")
    if organisation_id is not None and role != "partner":
        raise click.ClickException("--organisation is for partner accounts only")
    if role in ("applicant", "network_admin"):
        return {}
    if role == "partner":
        if organisation_id is None:
            raise click.ClickException("a partner account needs --organisation ID")
        if db.session.get(PartnerOrganisation, organisation_id) is None:
            raise click.ClickException(f"no partner organisation has the id {organisation_id}")
        return {"partner_organisation_id": organisation_id}
    if role != "donor":
        return {"fund_id": _the_fund(fund_name).id}
    if donor_id is None:
        raise click.ClickException(
            "a donor account needs --donor ID: the donor whose pools it sees"
        )
    donor = db.session.get(Donor, donor_id)
    if donor is None:
        raise click.ClickException(f"no donor has the id {donor_id}")
    if fund_name and donor.fund.name != fund_name:
        fund = fund_named(fund_name)
        raise click.ClickException(
            f"donor {donor.id} belongs to the fund {donor.fund.name!r}, not {fund.name!r}: "
            "a donor account sees the pools of its donor's fund only"
        )
    return {"fund_id": donor.fund_id, "donor_id": donor.id}


def _create_user_error(exc):
    if isinstance(exc, services.PasswordPolicyError):
        return f"password refused: {exc}"
    if isinstance(exc, services.UserExistsError):
        return "that login is taken"
    if isinstance(exc, sa.exc.IntegrityError):
        return "missing link: a donor needs --donor, a partner needs --organisation"
    return str(exc)


@click.command("create-fund")
@click.argument("name")
@with_appcontext
def create_fund(name):
    """Create a fund (the organisation owning staff, pools and cases)."""
    name = tidy_name(name)
    if not name or len(name) > 120:
        raise click.ClickException("a fund's name is 1 to 120 characters")
    if fund_name_taken(name):
        raise click.ClickException(f"a fund is already named {name!r}")
    fund = Fund(name=name)
    db.session.add(fund)
    db.session.flush()
    # A fund created belongs to the instance's chain; its own starts with its first event.
    audit.record("fund.created", fund, object_id=str(fund.id), fund=None)
    db.session.commit()
    click.echo(f"Created fund {fund.id}.")


@click.command("funds")
@with_appcontext
def funds():
    """One line per member fund: ID and name, separated by a tab (partner funds on other
    servers are listed on their fund's page of partners)."""
    member = sa.select(Fund).where(Fund.partner_of_id.is_(None)).order_by(Fund.id)
    for fund in db.session.execute(member).scalars():
        click.echo(f"{fund.id}\t{fund.name}")


@click.command("pools")
@click.option("--fund", "fund_name", default=None, help="Only this fund's pools.")
@with_appcontext
def pools(fund_name):
    """One line per pool: ID, name, currency and fund, separated by tabs."""
    query = sa.select(Pool, Fund.name).join(Fund, Fund.id == Pool.fund_id).order_by(Pool.id)
    if fund_name:
        query = query.where(Pool.fund_id == fund_named(fund_name).id)
    for pool, fund in db.session.execute(query):
        click.echo(f"{pool.id}\t{pool.name}\t{pool.currency}\t{fund}")


@click.command("confirm-invitation")
@click.argument("login")
@with_appcontext
def confirm_invitation(login):
    """Confirm the open invitation at LOGIN to a reviewer, manager or finance account, in
    place of a manager of its fund, for a fund that has none yet, and print its code: the
    invited person types it with their password. The code is shown this once."""
    try:
        invitation, code = invitations.confirm_as_operator(login)
        db.session.commit()
    except invitations.InvitationError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Confirmed the invitation of {invitation.login} ({invitation.role.value}) "
        f"to {invitation.fund.name}."
    )
    click.echo(f"Code to give the person, apart from the link: {invitations.shown_code(code)}")


@click.command("reset-second-factor")
@click.argument("login")
@with_appcontext
def reset_second_factor(login):
    """For an account at LOGIN whose authenticator and recovery codes are lost, and that no
    fund administrator resets (a partner organisation's, the network administrator's, or a
    fund's only admin): a new key to set up at its next sign-in, every session of it ended;
    print the code the person types before the new key is shown. The code is shown this
    once."""
    user = db.session.execute(
        sa.select(User).where(User.login == normalise_login(login))
    ).scalar_one_or_none()
    if user is None or not user.needs_totp:
        raise click.ClickException("No account at that login signs in with a second factor.")
    code = services.reset_second_factor(user, None)
    db.session.commit()
    click.echo(
        f"The second factor of {user.login} ({user.role.value}) is reset; every session of "
        "the account has ended."
    )
    click.echo(f"Code to give the person, apart from their password: {handed.shown(code)}")
