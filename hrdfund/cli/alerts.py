"""`flask hrdfund alerts`: queue alerts for cases close to a target, instalments fallen due
and renewal reviews come, and send the outbox. Run it from cron every few minutes."""

import smtplib

import click

from ..alerts import notices, outbox
from ..cases import alerts as services
from ..core.extensions import db
from ..disbursements import alerts as payment_alerts
from ..grants import alerts as grant_alerts


def held_back_lines():
    """What an admin reads when a setting holds back every discreet notice to the applicant
    side: which setting, and what to set."""
    lines = []
    for setting, value in notices.held_back_by_settings():
        change = "HRDFUND_NOTICE_MAIL_FROM" if setting == "HRDFUND_MAIL_FROM" else setting
        lines.append(
            f"WARNING: notices to the applicant side are held back, none is sent: {setting} "
            f"({value}) names the fund or the product, which a discreet notice must not; "
            f"set {change} to an address that does not name it"
        )
    return lines


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
    for line in held_back_lines():
        click.echo(line, err=True)
    if not outbox.mail_configured():
        click.echo("no mail server is configured (HRDFUND_SMTP_HOST): alerts wait in the outbox")
