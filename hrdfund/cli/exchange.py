"""`flask hrdfund network-keys` and `import-referral`: a fund's keys for packets between
servers, and importing a packet from a partner fund."""

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..auth.models import User
from ..core.extensions import db, reading
from ..network import exchange, keys, packets
from .accounts import _the_fund


@click.command("network-keys")
@click.option("--fund", "fund_name", default=None, help="The member fund (when there are several).")
@click.option(
    "--new",
    "rotate",
    is_flag=True,
    help="Make new keys: the old ones still open packets addressed to them for "
    f"{keys.FundKey.RETIRED_DAYS} days.",
)
@with_appcontext
def network_keys(fund_name, rotate):
    """Make the fund's keys for packets (X25519 and Ed25519) if it has none, or new ones
    with --new, and print the key line to give partner funds with its fingerprint."""
    fund = _the_fund(fund_name)
    key = keys.current_key(fund)
    if key is None or rotate:
        try:
            key = keys.make_keys(fund)
        except keys.PartnerError as exc:
            db.session.rollback()
            raise click.ClickException(str(exc)) from exc
        db.session.commit()
        click.echo(f"Made new keys for {fund.name}.")
    click.echo("Key line (give it to partner funds):")
    click.echo(keys.key_line(fund, key))
    click.echo(f"Fingerprint (read it out on a call): {keys.spoken(key.fingerprint)}")


@click.command("import-referral")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--fund", "fund_name", default=None, help="The member fund (when there are several).")
@click.option("--by", "login", required=True, help="Login of the reviewer or manager importing.")
@click.option("--yes", is_flag=True, help="Import after the preview without asking.")
@with_appcontext
def import_referral(path, fund_name, login, yes):
    """Check a packet from a partner fund (a referral or an answer), show what it brings,
    and import it once confirmed."""
    fund = _the_fund(fund_name)
    actor = db.session.execute(sa.select(User).where(User.login == login)).scalar_one_or_none()
    if actor is None or actor.fund_id != fund.id or not exchange.may_import(actor):
        raise click.ClickException("--by names no reviewer or manager of that fund")
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        with reading():
            opened = exchange.check_packet(data, fund)
        cleaned = exchange.clean_documents(opened)
    except (packets.PacketRefused, exchange.ExchangeError) as exc:
        raise click.ClickException(f"refused: {exc}") from exc
    if opened.kind not in (packets.REFERRAL, packets.ANSWER):
        raise click.ClickException("refused: this command imports referrals and their answers")
    body = opened.body
    click.echo(f"From {opened.partner.name}, a packet of kind {opened.kind}:")
    if opened.kind == packets.REFERRAL:
        months = f", months {body['months'][0]}-{body['months'][1]}" if body["months"] else ""
        click.echo(f"  {body['category']}{months}, {body['amount']} {body['currency']}")
        click.echo(f"  shared: {', '.join(body['shared']) or 'nothing but what is asked'}")
        click.echo(f"  documents: {len(body['documents'])}")
    else:
        click.echo(f"  referral {body['referral']}: {body['status']}")
    db.session.rollback()  # no transaction open while the operator reads and answers
    if not yes and not click.confirm("Import it?"):
        click.echo("Nothing imported.")
        return
    try:
        kind, value = exchange.check_and_import(actor, data, cleaned=cleaned)
        db.session.commit()
    except (packets.PacketRefused, exchange.ExchangeError) as exc:
        db.session.rollback()
        raise click.ClickException(f"refused: {exc}") from exc
    click.echo(f"Imported: referral {value.uid}.")
