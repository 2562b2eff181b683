"""The `flask hrdfund ...` command group, one module per concept. Commands call services and
commit themselves."""

import click

from .accounts import (
    confirm_invitation,
    create_fund,
    create_user,
    funds,
    pools,
    reset_second_factor,
)
from .alerts import alerts
from .backup import backup_command, restore_command
from .check import check, rebuild_figures
from .demo import demo_data
from .documents import move_documents_command
from .exchange import import_referral, network_keys
from .keys import rotate_keys_command
from .reports import report
from .retention import purge_command


@click.group("hrdfund")
def hrdfund_cli():
    """hrdfund administration."""


for _command in (
    alerts,
    backup_command,
    check,
    confirm_invitation,
    create_fund,
    create_user,
    demo_data,
    funds,
    import_referral,
    move_documents_command,
    network_keys,
    pools,
    purge_command,
    rebuild_figures,
    report,
    reset_second_factor,
    restore_command,
    rotate_keys_command,
):
    hrdfund_cli.add_command(_command)
