"""`flask hrdfund check`: the ledger's invariants and the audit chain, verified from the
rows."""

import sys

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from .. import audit
from ..core.extensions import db
from ..disbursements.checks import check_ledger
from ..ledger.invariants import FIGURES, sums_of_rows
from ..pools.models import Pool


def _echo_pool_sums(sums):
    """Each pool's figures as `check` added them up from the rows, to set beside the pool
    page: one line per pool, amounts in the pool's currency."""
    for pool in db.session.scalars(sa.select(Pool).order_by(Pool.id)):
        figures = ", ".join(f"{key.replace('_', ' ')} {sums[pool.id][key]}" for key in FIGURES)
        click.echo(f"Pool {pool.uid} {pool.name} ({pool.currency}): {figures}")


@click.command("check")
@click.option("--head", default=None, help="Audit head SEQ:HASH recorded earlier.")
@with_appcontext
def check(head):
    """Verify the ledger invariants and the audit chain; exit non-zero if broken."""
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
