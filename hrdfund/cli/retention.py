"""`flask hrdfund purge`: closed cases past the retention period, reduced to their figures."""

import click
from flask.cli import with_appcontext

from ..ops.retention import plan_purge, purge, retention_days


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Say what would be purged; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def purge_command(dry_run, yes):
    """Purge closed cases older than HRDFUND_RETENTION_DAYS, down to the figures reports need."""
    plan = plan_purge()
    click.echo(
        f"Closed before {plan.cutoff:%Y-%m-%d} ({retention_days()} days): "
        f"{len(plan.cases)} cases to reduce to their figures, "
        f"{len(plan.drafts)} drafts never sent to delete, "
        f"{len(plan.accounts)} applicant accounts to empty, "
        f"{plan.refused_forms} refused forms past their time to delete, "
        f"{plan.invitations} invitations used, withdrawn or expired to delete."
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
    click.echo("Purged. Run `flask hrdfund check`: the ledger and the audit chains still verify.")
