"""`flask hrdfund backup` and `restore`: the database and the documents in one archive, and
back, checked against the archive's manifest."""

import sys

import click
from flask.cli import with_appcontext

from ..ops.archive import BackupError, heads_arguments, listed_heads
from ..ops.backup import write_backup
from ..ops.restore import restore_backup


@click.command("backup")
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
    try:
        result = write_backup(out)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    manifest = result.manifest
    heads = listed_heads(manifest)
    click.echo(
        f"Backup written to {result.path} ({result.size} bytes): "
        f"{sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables, "
        f"{len(manifest['documents'])} document files, "
        f"{manifest['documents_in_database']} documents in the database, "
        f"{len(heads)} audit chain{'' if len(heads) == 1 else 's'}."
    )
    if heads:
        click.echo(f"Audit heads: {heads_arguments(heads)}")
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


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def restore_command(archive):
    """Restore a backup into an empty database and an instance without documents, then
    check every table's row count and every audit chain's head against the archive's manifest.

    Set the keys the backup was written under first: they are not in the archive."""
    try:
        result = restore_backup(archive)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    manifest = result.manifest
    heads = heads_arguments(listed_heads(manifest))
    click.echo(
        f"Restored the backup of {manifest['created_at']} (schema revision "
        f"{manifest['alembic_revision'] or 'unknown'}): "
        f"{sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables, "
        f"{len(manifest['documents'])} document files, "
        f"{manifest.get('documents_in_database', 0)} documents in the database."
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
    click.echo("OK: every table's row count and every audit chain's head match the manifest.")
    check = f"flask hrdfund check {heads}".rstrip()
    click.echo(
        f"Next: `flask db upgrade`, then `{check}` under the keys the backup was written with."
    )
