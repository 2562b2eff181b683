"""`flask hrdfund demo-data`: the demo world, never in production."""

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from ..auth.models import User
from ..core.extensions import db
from ..demo import DEFAULT_SCALE, load_demo_data


@click.command("demo-data")
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
    if current_app.config["ENV_NAME"] == "production":
        raise click.ClickException("demo data is never loaded in production")
    if if_empty and db.session.execute(sa.select(User.id).limit(1)).first():
        click.echo("Database already holds data; demo data not loaded.")
        return
    summary = load_demo_data(scale or DEFAULT_SCALE)
    db.session.commit()
    after_bulk_load()
    click.echo(
        f"Demo data loaded: {summary['applications']} applications, "
        f"{summary['disbursements']} disbursements in {summary['seconds']:.1f} s."
    )
    click.echo(f"Demo accounts: {summary['accounts_file']}")


def after_bulk_load():
    """Fresh statistics after a bulk load, so the query planner picks the indexes the pages
    rely on (PostgreSQL's autovacuum would get there later; SQLite only when asked). On
    PostgreSQL a VACUUM too: rows just copied in are not yet marked visible to every
    transaction, and until they are an index-only scan (a pool's sums, its counts) still
    reads each row's table page."""
    if db.engine.dialect.name != "postgresql":
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        return
    tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM (ANALYZE) {tables}")
