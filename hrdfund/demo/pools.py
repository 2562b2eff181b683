"""Pools and money in: three donors, eight pools in four currencies with their restrictions
and caps, and contributions quarter by quarter, always ahead of what each pool commits."""

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from .. import audit
from ..core.extensions import db
from ..core.money import convert, quantize
from ..ledger.models import Contribution
from ..pools.models import Donor, Pool, PoolRestriction, RestrictionKind

#: Pools opened a little before the first case.
POOLS_OPEN_DAYS = 1000
#: The donors' pools. Optional: a cap per grant; allowed categories, countries or regions;
#: a date window (opened and closed, in days before today); the currency contributions
#: arrive in when it is not the pool's.
POOLS = (
    {
        "donor": "Nordic Solidarity Foundation",
        "name": "Emergency Protection Pool",
        "currency": "SEK",
    },
    {
        "donor": "Nordic Solidarity Foundation",
        "name": "Relocation and Safe Haven",
        "currency": "EUR",
        "cap": "15000",
        "category": ("relocation", "medical", "dependants"),
        "paid_in": "SEK",
    },
    {"donor": "Open Horizons Trust", "name": "General Protection Fund", "currency": "USD"},
    {
        "donor": "Open Horizons Trust",
        "name": "Americas Defenders Pool",
        "currency": "USD",
        "cap": "20000",
        "region": ("Andean region", "Central America and Mexico", "South America"),
    },
    {
        "donor": "Open Horizons Trust",
        "name": "Election Period Emergency Window",
        "currency": "USD",
        "cap": "6000",
        "window": (700, 280),
        "country": ("KE", "UG", "TZ", "ZW", "NG", "VE", "BY", "GE", "PK", "BD"),
        "category": ("legal", "physical_security", "digital_security", "trial_monitoring"),
    },
    {
        "donor": "Ministry of Foreign Affairs (demo)",
        "name": "Human Rights Defenders Programme",
        "currency": "EUR",
    },
    {
        "donor": "Ministry of Foreign Affairs (demo)",
        "name": "Africa Emergency Window",
        "currency": "EUR",
        "cap": "10000",
        "region": ("East Africa", "Central Africa", "West Africa", "Southern Africa"),
    },
    {
        "donor": "Ministry of Foreign Affairs (demo)",
        "name": "Digital and Physical Security Pool",
        "currency": "GBP",
        "cap": "8000",
        "category": ("physical_security", "digital_security"),
        "paid_in": "EUR",
    },
)


def open_pools(world):
    """Three donors and eight pools in four currencies, with restrictions and caps."""
    donors = {}
    world.pools, world.paid_in = [], {}
    for spec in POOLS:
        if spec["donor"] not in donors:
            donors[spec["donor"]] = Donor(
                name=spec["donor"], fund=world.fund, created_at=world.fund.created_at
            )
            db.session.add(donors[spec["donor"]])
        starts, ends = world.today - timedelta(days=POOLS_OPEN_DAYS), None
        if "window" in spec:
            starts = world.today - timedelta(days=spec["window"][0])
            ends = world.today - timedelta(days=spec["window"][1])
        pool = Pool(
            fund=world.fund,
            donor=donors[spec["donor"]],
            name=spec["name"],
            currency=spec["currency"],
            cap_per_grant=Decimal(spec["cap"]) if "cap" in spec else None,
            starts_on=starts,
            ends_on=ends,
            created_at=datetime.combine(starts, datetime.min.time()),
        )
        rules = {kind: spec.get(kind.value, ()) for kind in RestrictionKind}
        for kind, values in rules.items():
            pool.restrictions += [PoolRestriction(kind=kind, value=v) for v in values]
        db.session.add(pool)
        world.pools.append(pool)
    db.session.flush()
    world.donors = list(donors.values())
    for pool, spec in zip(world.pools, POOLS, strict=True):
        world.paid_in[pool.id] = spec.get("paid_in", pool.currency)


def add_contributions(world):
    """Money into each pool, quarter by quarter, always ahead of what it commits."""
    rng = world.rng
    for pool in world.pools:
        paid_in = world.paid_in[pool.id]
        unit = Decimal(100000) if pool.currency == "SEK" else Decimal(10000)
        last = min(pool.ends_on or world.today, world.today)
        quarters = (last - pool.starts_on).days // 91 + 1
        received = needed = Decimal(0)
        for quarter in range(quarters):
            on = min(pool.starts_on + timedelta(days=91 * quarter), world.last_day)
            needed += world.draws[pool.id].get(quarter, Decimal(0))
            # Each quarter's contribution covers that quarter's commitments and more.
            target = needed * Decimal("1.15") + unit * 3
            if target <= received:
                continue
            rate = world.rates.rate(pool.currency, paid_in, on)
            want = (target - received) / rate
            received_amount = quantize((want / unit).to_integral_value(ROUND_CEILING) * unit)
            amount = convert(received_amount, rate)
            received += amount
            # The pool by its initials (a reference is short): "RSH grant letter 2026-Q3".
            initials = "".join(word[0] for word in pool.name.split() if word[0].isupper())
            letter = f"{initials} grant letter {on:%Y}-Q{(on.month - 1) // 3 + 1}"
            add_contribution(world, pool, amount, received_amount, paid_in, rate, on, letter)
            if pool is world.pools[0] and quarter == 0:
                # Booked twice by mistake, and the copy reversed a few days later.
                copy = add_contribution(
                    world, pool, amount, received_amount, paid_in, rate, on, letter
                )
                add_contribution(
                    world,
                    pool,
                    amount,
                    received_amount,
                    paid_in,
                    rate,
                    on + timedelta(days=rng.randint(2, 6)),
                    "Correction",
                    reverses=copy,
                )


def add_contribution(world, pool, amount, received, currency, rate, on, reference, reverses=None):
    """One sealed contribution row (or the reversal of ``reverses``); return its id."""
    values = {
        "uid": world.uid(),
        "pool_id": pool.id,
        "amount": amount,
        "received_amount": received,
        "received_currency": currency,
        "fx_rate": rate,
        "received_on": on,
        "reversal_of_id": reverses,
    }
    return world.tables[Contribution].add(
        {
            **values,
            "seal": audit.seal("contributions", values, world.audit_key),
            "reference": world.enc("contributions", "reference", values["uid"], reference),
            "reason": (
                world.enc("contributions", "reason", values["uid"], "Booked twice")
                if reverses
                else None
            ),
            "recorded_by_id": world.finance,
            "created_at": datetime.combine(on, datetime.min.time()) + timedelta(hours=11),
        }
    )
