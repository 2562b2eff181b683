"""`flask hrdfund alerts`: queue alerts for cases close to a target, instalments fallen due
and renewal reviews come, and send the outbox. Run it from cron every few minutes."""

import smtplib

import click

from ..alerts import outbox
from ..cases import alerts as services
from ..core.extensions import db
from ..disbursements import alerts as payment_alerts
from ..grants import alerts as grant_alerts


@click.command("alerts")
def alerts():
    """Queue target, instalment and renewal alerts, then send what waits in the outbox."""
    queued = services.queue_target_alerts()
    queued += payment_alerts.queue_instalment_alerts()
    queued += grant_alerts.queue_renewal_alerts()
    db.session.commit()
    try:
        sent = services.send_pending()
    except (OSError, smtplib.SMTPException) as exc:
        click.echo(f"queued {queued}, sent 0")
        raise click.ClickException(
            f"the mail server could not be reached ({type(exc).__name__}); "
            "alerts wait in the outbox for the next run"
        ) from exc
    click.echo(f"queued {queued}, sent {sent}")
    if not outbox.mail_configured():
        click.echo("no mail server is configured (HRDFUND_SMTP_HOST): alerts wait in the outbox")
