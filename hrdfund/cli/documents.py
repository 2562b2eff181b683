"""`flask hrdfund move-documents`: the document files of the instance's folder moved into
the database, where every app server on it serves them."""

import sys

import click
from flask.cli import with_appcontext

from ..ops.moving import MoveError, move_documents


@click.command("move-documents")
@with_appcontext
def move_documents_command():
    """Move the stored document files into the database (PostgreSQL).

    Each file is checked (decrypted), written into the database, read back and compared,
    then overwritten and removed. Safe to stop and to run again."""
    try:
        result = move_documents()
    except MoveError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"Moved into the database: {result.moved} documents; "
        f"finished from an earlier run: {result.finished}; "
        f"already without a file: {result.in_database}."
    )
    if result.unreadable:
        click.echo(
            f"UNREADABLE: {result.unreadable} files do not decrypt under the keys given, or "
            "differ from their copy in the database; they were left in the folder.",
            err=True,
        )
        sys.exit(1)
