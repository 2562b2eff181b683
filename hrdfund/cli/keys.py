"""`flask hrdfund rotate-keys`: every field and document encrypted again under the current
key."""

import sys

import click
from flask.cli import with_appcontext

from ..core.columns import cipher
from ..ops.rotation import left_under_old_keys, rotate_keys


@click.command("rotate-keys")
@with_appcontext
def rotate_keys_command():
    """Encrypt every field and document again under HRDFUND_ENCRYPTION_KEY.

    Set the new key in HRDFUND_ENCRYPTION_KEY and the old one in HRDFUND_ENCRYPTION_OLD_KEYS
    first; remove the old key once this reports nothing left under it."""
    result = rotate_keys()
    for where, count in sorted(result.values.items()):
        click.echo(f"{where}: {count} re-encrypted")
    click.echo(f"Documents: {result.documents} re-encrypted")
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
