"""`flask hrdfund report`: a pool's donor report for a fixed period, as the donor downloads
it."""

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from .. import audit
from ..core.columns import utcnow
from ..core.digits import plain_number
from ..core.extensions import db
from ..pools.models import Pool
from ..reports.csv_export import render_csv
from ..reports.data import build_report
from ..reports.issue import issue_ended
from ..reports.pdf import render_pdf
from ..reports.periods import PeriodError, parse_period
from .accounts import fund_named


@click.command("report")
@click.option("--pool", "pool_ref", required=True, help="The pool's id or its name.")
@click.option("--fund", "fund_name", default=None, help="The pool's fund (a name).")
@click.option("--period", required=True, help="2026, 2026-Q1 or 2026-03.")
@click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True)
@click.option("--format", "kind", type=click.Choice(["pdf", "csv"]), default="pdf")
@with_appcontext
def report(pool_ref, fund_name, period, out, kind):
    """Write a pool's donor report for a fixed period, as the donor downloads it."""
    try:
        chosen = parse_period(period)
    except PeriodError as exc:
        raise click.ClickException(str(exc)) from exc
    pool = _the_pool(pool_ref, fund_named(fund_name) if fund_name else None)
    today = utcnow().date()
    if issue_ended(pool, chosen, today):
        db.session.commit()
    built = build_report(pool, chosen, today=today)
    body = render_pdf(built) if kind == "pdf" else render_csv(built).encode()
    with open(out, "wb") as fh:
        fh.write(body)
    audit.record("report.written", pool, period=chosen.code, format=kind, digest=built["digest"])
    db.session.commit()
    click.echo(f"Wrote {out}: {len(body)} bytes, digest {built['digest']}.")


def _the_pool(pool_ref, fund):
    """The one pool ``pool_ref`` (an id or a name) names, in ``fund`` when one is given, or a
    clear refusal."""
    numbered = plain_number(pool_ref) and len(pool_ref) < 10
    query = sa.select(Pool).where(Pool.id == int(pool_ref) if numbered else Pool.name == pool_ref)
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
    return found[0]
