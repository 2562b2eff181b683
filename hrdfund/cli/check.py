"""`flask hrdfund check`: the ledger's invariants and the audit chains (each fund's and the
instance's), verified from the rows."""

import sys

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from .. import audit
from ..auth.models import Fund
from ..core.digits import plain_number
from ..core.extensions import db
from ..disbursements import open_items
from ..disbursements.checks import check_ledger
from ..ledger import daily
from ..ledger.invariants import FIGURES, sums_of_rows
from ..pools.models import Pool
from .alerts import held_back_lines

#: How many broken things are listed before the rest is only counted.
SHOWN = 50


def _echo_pool_sums(sums, fund):
    """Each pool's figures as `check` added them up from the rows, to set beside the pool
    page: one line per pool (of ``fund`` when given), amounts in the pool's currency."""
    query = sa.select(Pool).order_by(Pool.id)
    if fund is not None:
        query = query.where(Pool.fund_id == fund.id)
    for pool in db.session.scalars(query):
        figures = ", ".join(f"{key.replace('_', ' ')} {sums[pool.id][key]}" for key in FIGURES)
        click.echo(f"Pool {pool.uid} {pool.name} ({pool.currency}): {figures}")


def _fund_of(ref):
    """The fund ``ref`` names (its name, or its id), or a clear refusal."""
    named = db.session.execute(sa.select(Fund).where(Fund.name == ref)).scalar_one_or_none()
    numbered = db.session.get(Fund, int(ref)) if plain_number(ref) and len(ref) < 10 else None
    if named is not None and numbered is not None and named.id != numbered.id:
        raise click.ClickException(
            f"{ref!r} is the name of fund {named.id} and the id of another; "
            f"`flask hrdfund funds` lists them"
        )
    if named is None and numbered is None:
        raise click.ClickException(f"no fund is named {ref!r}; `flask hrdfund funds` lists them")
    return named or numbered


def _recorded_heads(values, chain):
    """The heads given with --head, by chain: CHAIN:SEQ:HASH as `check` prints them, or
    SEQ:HASH for ``chain`` (the instance's, or the one --fund names)."""
    heads = {}
    for value in values:
        parts = value.split(":")
        try:
            if len(parts) == 2:
                parts.insert(0, str(chain))
            named, seq, digest = parts
            named, seq = int(named), int(seq)
        except ValueError as exc:
            raise click.ClickException(
                "--head takes CHAIN:SEQ:HASH (or SEQ:HASH for the instance's chain)"
            ) from exc
        if named in heads:
            raise click.ClickException(f"--head names chain {named} twice")
        heads[named] = (seq, digest)
    return heads


def _chain_name(chain, names):
    if chain == audit.INSTANCE:
        return "the instance's audit chain"
    if chain in names:
        return f"the audit chain of fund {chain} ({names[chain]})"
    return f"audit chain {chain}, of no fund"


def _chains_to_verify(fund, heads, names):
    """The chain of ``fund``; without one, every chain: the instance's, each fund's, any
    other holding entries or named by a head."""
    if fund is not None:
        return [fund.id]
    return sorted({audit.INSTANCE, *names, *audit.heads(), *heads})


def _echo_chains(verified, names):
    """One line per chain that verifies: how far it goes."""
    for chain, (seq, _digest) in verified.items():
        name = _chain_name(chain, names)
        found = f"verified up to entry {seq}" if seq else "verified, no entries yet"
        click.echo(f"{name[0].upper()}{name[1:]}: {found}.")


@click.command("check")
@click.option(
    "--fund",
    "fund_ref",
    default=None,
    help="Verify the audit chain of this fund only (its name or id); the ledger is checked whole.",
)
@click.option(
    "--head",
    "head_values",
    multiple=True,
    help="An audit head recorded earlier, CHAIN:SEQ:HASH as check prints it (SEQ:HASH: "
    "the instance's chain, or the chain of --fund); once per chain.",
)
@with_appcontext
def check(fund_ref, head_values):
    """Verify the ledger invariants and the audit chains (every one, or one fund's); exit
    non-zero if anything is broken."""
    fund = _fund_of(fund_ref) if fund_ref else None
    heads = _recorded_heads(head_values, fund.id if fund else audit.INSTANCE)
    if fund is not None and set(heads) - {fund.id}:
        raise click.ClickException(f"--fund checks chain {fund.id} only, and --head names another")
    names = dict(db.session.execute(sa.select(Fund.id, Fund.name)).all())
    sums = sums_of_rows()  # added up once: checked against the pool figures, then printed
    problems = check_ledger(sums)
    verified = {}
    for chain in _chains_to_verify(fund, heads, names):
        name = _chain_name(chain, names)
        broken = audit.verify(fund=chain, head=heads.get(chain))
        problems += [f"{name}: {line}" for line in broken]
        if not broken:
            verified[chain] = audit.head(chain)
    if problems:
        _echo_chains(verified, names)
        for line in problems[:SHOWN]:
            click.echo(f"BROKEN: {line}", err=True)
        if len(problems) > SHOWN:
            click.echo(f"... and {len(problems) - SHOWN} more", err=True)
        _echo_held_back()
        sys.exit(1)
    plural = "s" if len(verified) != 1 else ""
    click.echo(f"OK: ledger balanced, {len(verified)} audit chain{plural} verified.")
    _echo_held_back()
    _echo_chains(verified, names)
    _echo_pool_sums(sums, fund)
    recorded = [
        f"--head {chain}:{seq}:{digest}" for chain, (seq, digest) in verified.items() if seq
    ]
    if recorded:
        click.echo(f"Audit heads (record them elsewhere): {' '.join(recorded)}")


def _echo_held_back():
    """A warning (not a failure) when a setting holds back every discreet notice: after
    the verdict, so that the verdict stays the first line and the heads the last."""
    for line in held_back_lines():
        click.echo(line, err=True)


@click.command("rebuild-figures")
@with_appcontext
def rebuild_figures():
    """Add up again the figures kept as rows are written (each pool's money by day, the
    open items staff chase) from the rows; `check` reports any that differ."""
    days = daily.rebuild()
    items = open_items.rebuild()
    db.session.commit()
    click.echo(f"Each pool's money by day added up again: {days} days with money moving.")
    click.echo(f"Open items staff chase worked out again: {items} open.")
