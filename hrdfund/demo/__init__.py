"""A realistic demo world, written in bulk so that 100,000 applications load in about a minute.

Reference data (the fund, donors, pools, the demo accounts) goes through the ORM and the
account service. The bulk (applications and everything hanging off them, grants, ledger
rows) is written in batches with ids assigned here (``bulk``). Every ledger row is sealed
as the services seal theirs, and the ledger rules hold at every date: no pool below zero,
no allocation paid beyond what it commits.

One module per concept: ``people`` (the fund, partner organisations, accounts), ``pools``
(donors, pools, money in), ``rates`` (the monthly rate table), ``cases`` (the showcase and
the mix), ``answers`` (what a case asks for), ``paths`` (its steps and targets), ``parts``
(dependants, budget lines, references, consents, messages, reports), ``decisions``
(assessments, approvals, splits of pools), ``grants`` (allocations, plans, closing) and
``payments`` (payments, reversals, receipts), all reading and filling one ``World``.
"""

import random
import time

from .. import audit
from ..core.extensions import db
from ..disbursements import open_items
from ..ledger import daily
from .rates import PER_USD
from .world import World

__all__ = ["DEFAULT_SCALE", "PER_USD", "SEED", "load_demo_data"]

DEFAULT_SCALE = 300
SEED = 20261124


def load_demo_data(scale=DEFAULT_SCALE):
    """Build the demo world of ``scale`` applications; return counts and the accounts file."""
    started = time.monotonic()
    world = World(random.Random(SEED), scale)
    world.build()
    audit.record(
        "demo.loaded",
        object_type="funds",
        object_id=str(world.fund.id),
        fund=world.fund,
        **{name: count for name, count in world.counts.items() if count},
    )
    db.session.flush()
    # The bulk loader writes ledger rows around the ORM: the pools' days are added up once,
    # and the open items worked out once.
    daily.rebuild()
    open_items.rebuild()
    return {
        "applications": world.counts["applications"],
        "disbursements": world.counts["disbursements"],
        "seconds": time.monotonic() - started,
        "accounts_file": world.accounts_file,
    }
