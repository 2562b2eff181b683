"""The `flask hrdfund ...` command group. Commands call services and commit themselves."""

import sys

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from .core.extensions import db


@click.group("hrdfund")
def hrdfund_cli():
    """hrdfund administration."""


@hrdfund_cli.command("demo-data")
@click.option(
    "--scale",
    type=click.IntRange(1, 1_000_000),
    default=None,
    help="Number of applications to generate (default 300).",
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database holds users.")
@with_appcontext
def demo_data(scale, if_empty):
    """Load a realistic demo world and write instance/demo-accounts.json."""
    from . import demo
    from .auth.models import User

    if current_app.config["ENV_NAME"] == "production":
        raise click.ClickException("demo data is never loaded in production")
    if if_empty and db.session.execute(sa.select(User.id).limit(1)).first():
        click.echo("Database already holds data; demo data not loaded.")
        return
    summary = demo.load_demo_data(scale or demo.DEFAULT_SCALE)
    db.session.commit()
    # Fresh statistics after a bulk load, so the query planner picks the indexes the pages
    # rely on (PostgreSQL's autovacuum would do this later; SQLite only when asked).
    db.session.execute(sa.text("ANALYZE"))
    db.session.commit()
    click.echo(
        f"Demo data loaded: {summary['applications']} applications, "
        f"{summary['disbursements']} disbursements in {summary['seconds']:.1f} s."
    )
    click.echo(f"Demo accounts: {summary['accounts_file']}")


@hrdfund_cli.command("create-user")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["applicant", "partner", "reviewer", "manager", "finance", "donor", "admin"]),
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
    from .auth import services

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
        click.echo(f"Authenticator URI: {services.totp_uri(user, current_app.config['FUND_NAME'])}")


def _fund_named(name):
    """The fund called ``name``, or a clear refusal."""
    from .auth.models import Fund

    fund = db.session.execute(sa.select(Fund).where(Fund.name == name)).scalar_one_or_none()
    if fund is None:
        raise click.ClickException(
            f"no fund is named {name!r}; `flask hrdfund funds` lists them, "
            "`flask hrdfund create-fund NAME` creates one"
        )
    return fund


def _the_fund(name):
    """The fund named ``name``; without a name, the only fund, or a refusal asking for one."""
    from .auth.models import Fund

    if name:
        return _fund_named(name)
    funds = db.session.execute(sa.select(Fund).order_by(Fund.id).limit(2)).scalars().all()
    if not funds:
        raise click.ClickException("no fund yet; create one with `flask hrdfund create-fund NAME`")
    if len(funds) > 1:
        raise click.ClickException("there are several funds: name one with --fund")
    return funds[0]


def _account_links(role, fund_name, donor_id, organisation_id):
    """The fund, donor and organisation an account of ``role`` is linked to, each found and
    checked to belong together; a clear refusal otherwise, before anything is created."""
    from .auth.models import PartnerOrganisation
    from .pools.models import Donor

    if role in ("applicant", "partner") and fund_name:
        raise click.ClickException(
            "--fund is for staff and donor accounts: applicants and partners belong to no fund"
        )
    if donor_id is not None and role != "donor":
        raise click.ClickException("--donor is for donor accounts only")
    if organisation_id is not None and role != "partner":
        raise click.ClickException("--organisation is for partner accounts only")
    if role == "applicant":
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
        fund = _fund_named(fund_name)
        raise click.ClickException(
            f"donor {donor.id} belongs to the fund {donor.fund.name!r}, not {fund.name!r}: "
            "a donor account sees the pools of its donor's fund only"
        )
    return {"fund_id": donor.fund_id, "donor_id": donor.id}


def _create_user_error(exc):
    from .auth import services

    if isinstance(exc, services.PasswordPolicyError):
        return f"password refused: {exc}"
    if isinstance(exc, services.UserExistsError):
        return "that login is taken"
    if isinstance(exc, sa.exc.IntegrityError):
        return "missing link: a donor needs --donor, a partner needs --organisation"
    return str(exc)


@hrdfund_cli.command("create-fund")
@click.argument("name")
@with_appcontext
def create_fund(name):
    """Create a fund (the organisation owning staff, pools and cases)."""
    from . import audit
    from .auth.models import Fund

    name = name.strip()
    if not name or len(name) > 120:
        raise click.ClickException("a fund's name is 1 to 120 characters")
    if db.session.execute(sa.select(Fund.id).where(Fund.name == name)).first():
        raise click.ClickException(f"a fund is already named {name!r}")
    fund = Fund(name=name)
    db.session.add(fund)
    db.session.flush()
    audit.record("fund.created", fund, object_id=str(fund.id))
    db.session.commit()
    click.echo(f"Created fund {fund.id}.")


@hrdfund_cli.command("funds")
@with_appcontext
def funds():
    """One line per fund: ID and name, separated by a tab."""
    from .auth.models import Fund

    for fund in db.session.execute(sa.select(Fund).order_by(Fund.id)).scalars():
        click.echo(f"{fund.id}\t{fund.name}")


@hrdfund_cli.command("pools")
@click.option("--fund", "fund_name", default=None, help="Only this fund's pools.")
@with_appcontext
def pools(fund_name):
    """One line per pool: ID, name, currency and fund, separated by tabs."""
    from .auth.models import Fund
    from .pools.models import Pool

    query = sa.select(Pool, Fund.name).join(Fund, Fund.id == Pool.fund_id).order_by(Pool.id)
    if fund_name:
        query = query.where(Pool.fund_id == _fund_named(fund_name).id)
    for pool, fund in db.session.execute(query):
        click.echo(f"{pool.id}\t{pool.name}\t{pool.currency}\t{fund}")


@hrdfund_cli.command("report")
@click.option("--pool", "pool_ref", required=True, help="The pool's id or its name.")
@click.option("--fund", "fund_name", default=None, help="The pool's fund (a name).")
@click.option("--period", required=True, help="2026, 2026-Q1 or 2026-03.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True)
@click.option("--format", "kind", type=click.Choice(["pdf", "csv"]), default="pdf")
@with_appcontext
def report(pool_ref, fund_name, period, out, kind):
    """Write a pool's donor report for a fixed period, as the donor downloads it."""
    from . import audit
    from .core.columns import utcnow
    from .pools.models import Pool
    from .reports.csv_export import render_csv
    from .reports.data import build_report
    from .reports.issue import issue_ended
    from .reports.pdf import render_pdf
    from .reports.periods import PeriodError, parse_period

    try:
        chosen = parse_period(period)
    except PeriodError as exc:
        raise click.ClickException(str(exc)) from exc
    fund = _fund_named(fund_name) if fund_name else None
    query = sa.select(Pool).where(
        Pool.id == int(pool_ref) if pool_ref.isdigit() else Pool.name == pool_ref
    )
    found = db.session.execute(query).scalars().all()
    if fund is not None and found and all(p.fund_id != fund.id for p in found):
        raise click.ClickException(
            f"pool {pool_ref} is not a pool of the fund {fund.name!r}; "
            f"`flask hrdfund pools --fund {fund.name!r}` lists its pools"
        )
    if fund is not None:
        found = [p for p in found if p.fund_id == fund.id]
    if len(found) != 1:
        raise click.ClickException(
            "no such pool; `flask hrdfund pools` lists them"
            if not found
            else "several pools have that name; give its id or its fund (--fund)"
        )
    today = utcnow().date()
    if issue_ended(found[0], chosen, today):
        db.session.commit()
    built = build_report(found[0], chosen, today=today)
    body = render_pdf(built) if kind == "pdf" else render_csv(built).encode()
    with open(out, "wb") as fh:
        fh.write(body)
    audit.record(
        "report.written", found[0], period=chosen.code, format=kind, digest=built["digest"]
    )
    db.session.commit()
    click.echo(f"Wrote {out}: {len(body)} bytes, digest {built['digest']}.")


def _echo_pool_sums(sums):
    """Each pool's figures as `check` added them up from the rows, to set beside the pool
    page: one line per pool, amounts in the pool's currency."""
    from .ledger.invariants import FIGURES
    from .pools.models import Pool

    for pool in db.session.scalars(sa.select(Pool).order_by(Pool.id)):
        figures = ", ".join(f"{key.replace('_', ' ')} {sums[pool.id][key]}" for key in FIGURES)
        click.echo(f"Pool {pool.uid} {pool.name} ({pool.currency}): {figures}")


@hrdfund_cli.command("check")
@click.option("--head", default=None, help="Audit head SEQ:HASH recorded earlier.")
@with_appcontext
def check(head):
    """Verify the ledger invariants and the audit chain; exit non-zero if broken."""
    from . import audit
    from .disbursements.checks import check_ledger
    from .ledger.invariants import sums_of_rows

    parsed = None
    if head:
        try:
            seq, digest = head.split(":")
            parsed = (int(seq), digest)
        except ValueError as exc:
            raise click.ClickException("--head takes SEQ:HASH") from exc
    sums = sums_of_rows()  # added up once: checked against the pool figures, then printed
    problems = check_ledger(sums) + audit.verify(parsed)
    if problems:
        for line in problems[:50]:
            click.echo(f"BROKEN: {line}", err=True)
        if len(problems) > 50:
            click.echo(f"... and {len(problems) - 50} more", err=True)
        sys.exit(1)
    seq, digest = audit.head()
    click.echo(f"OK: ledger balanced, audit chain verified up to entry {seq}.")
    _echo_pool_sums(sums)
    click.echo(f"Audit head (record it elsewhere): {seq}:{digest}")


@hrdfund_cli.command("rotate-keys")
@with_appcontext
def rotate_keys_command():
    """Encrypt every field and document again under HRDFUND_ENCRYPTION_KEY.

    Set the new key in HRDFUND_ENCRYPTION_KEY and the old one in HRDFUND_ENCRYPTION_OLD_KEYS
    first; remove the old key once this reports nothing left under it."""
    from .core.columns import cipher
    from .ops.rotation import left_under_old_keys, rotate_keys

    result = rotate_keys()
    for where, count in sorted(result.values.items()):
        click.echo(f"{where}: {count} re-encrypted")
    click.echo(f"Documents: {result.documents} files re-encrypted")
    if result.unreadable:
        for where, count in sorted(result.unreadable.items()):
            click.echo(f"UNREADABLE: {where}: {count} under no key given", err=True)
        click.echo(
            "Add the key that wrote them to HRDFUND_ENCRYPTION_OLD_KEYS and run again.", err=True
        )
        sys.exit(1)
    left = left_under_old_keys()
    if left:
        click.echo(f"{left} values are still under an old key; run again.", err=True)
        sys.exit(1)
    click.echo(
        f"OK: {result.total} values and {result.documents} documents now under key "
        f"{cipher().current_id.hex()}; nothing is left under an old key."
    )


@hrdfund_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Say what would be purged; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def purge_command(dry_run, yes):
    """Purge closed cases older than HRDFUND_RETENTION_DAYS, down to the figures reports need."""
    from .ops.retention import plan_purge, purge, retention_days

    plan = plan_purge()
    click.echo(
        f"Closed before {plan.cutoff:%Y-%m-%d} ({retention_days()} days): "
        f"{len(plan.cases)} cases to reduce to their figures, "
        f"{len(plan.drafts)} drafts never sent to delete, "
        f"{len(plan.accounts)} applicant accounts to empty, "
        f"{plan.refused_forms} refused forms past their time to delete."
    )
    if dry_run:
        click.echo("Dry run: nothing changed.")
        return
    if plan.empty:
        click.echo("Nothing to purge.")
        return
    if not yes:
        click.confirm("This cannot be undone. Purge now?", abort=True)
    purge(plan)
    click.echo("Purged. Run `flask hrdfund check`: the ledger and the audit chain still verify.")


@hrdfund_cli.command("backup")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="The archive to write (a tar file readable by its owner only).",
)
@with_appcontext
def backup_command(out):
    """Write the database and the stored documents into one archive, with a manifest.

    The keys are NOT in it: keep HRDFUND_ENCRYPTION_KEY and HRDFUND_AUDIT_KEY apart from the
    archive. Without them the backup cannot be read, nor checked."""
    from .ops.backup import BackupError, write_backup

    try:
        result = write_backup(out)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    manifest = result.manifest
    head = manifest["audit_head"]
    click.echo(
        f"Backup written to {result.path} ({result.size} bytes): "
        f"{sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables, "
        f"{len(manifest['documents'])} documents, audit head {head['seq']}:{head['hash']}."
    )
    if result.without_file:
        click.echo(
            f"Documents emptied by retention, without a file to copy: {result.without_file}."
        )
    keys = manifest["key_ids"]
    click.echo(
        f"The keys are not in the backup: keep HRDFUND_ENCRYPTION_KEY (key {keys['encryption']}) "
        f"and HRDFUND_AUDIT_KEY (key {keys['audit']}) apart from it; "
        "without them it cannot be read."
    )


@hrdfund_cli.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def restore_command(archive):
    """Restore a backup into an empty database and an instance without documents, then
    check every table's row count and the audit head against the archive's manifest.

    Set the keys the backup was written under first: they are not in the archive."""
    from .ops.backup import BackupError, restore_backup

    try:
        result = restore_backup(archive)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    manifest = result.manifest
    head = f"{manifest['audit_head']['seq']}:{manifest['audit_head']['hash']}"
    click.echo(
        f"Restored the backup of {manifest['created_at']} (schema revision "
        f"{manifest['alembic_revision'] or 'unknown'}): "
        f"{sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables, "
        f"{len(manifest['documents'])} documents."
    )
    for line in result.warnings:
        click.echo(f"WARNING: {line}", err=True)
    if result.problems:
        for line in result.problems:
            click.echo(f"MISMATCH: {line}", err=True)
        click.echo(
            "The restored data differs from the archive's manifest: do not use it. Empty the "
            "database and the documents folder before restoring again.",
            err=True,
        )
        sys.exit(1)
    click.echo(f"OK: every table's row count and the audit head {head} match the manifest.")
    click.echo(
        f"Next: `flask db upgrade`, then `flask hrdfund check --head {head}` under the keys "
        "the backup was written with."
    )
