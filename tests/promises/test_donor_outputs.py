"""Promise 31: donor outputs are aggregates without a trace of anyone.

One test per promise of SECURITY.md, named after its number; docs/security.md maps each
to its test here and to the thorough tests (sweeps over every route, field and output)
elsewhere in the suite.
"""

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa

from hrdfund.cases.models import (
    Consent,
    ConsentKind,
    Dependant,
    Message,
    Reference,
    Story,
    UseOfFundsReport,
)
from hrdfund.core.columns import PERSONAL, Encrypted, utcnow
from hrdfund.core.extensions import db
from hrdfund.ledger.seals import FINAL_TABLES
from hrdfund.reports.data import build_report
from hrdfund.reports.grid import breakdown
from hrdfund.reports.periods import parse_period
from tests.clock import Clock
from tests.conftest import (
    MoneyWorld,
    pay,
    signed_in,
)

from .common import get_closed, read_pdf


def _plant_canaries():
    """A unique canary in every encrypted field and every personal text column of every
    row but the ledger's (written once, canaries given at creation) and stories (written
    for donors to read); returns the number planted."""
    planted = 0
    for mapper in db.Model.registry.mappers:
        model = mapper.class_
        if model is Story or mapper.local_table.name in FINAL_TABLES:
            continue
        encrypted = [name for name, attr in vars(model).items() if isinstance(attr, Encrypted)]
        personal = [
            mapper.get_property_by_column(column).key
            for column in mapper.columns
            if column.info.get("data_class") == PERSONAL
            and isinstance(column.type, sa.String)
            and not isinstance(column.type, sa.Enum)
            and (column.type.length or 0) >= 16
        ]
        for row in db.session.execute(sa.select(model)).scalars():
            for name in encrypted:
                planted += 1
                canary = f"CANARY{planted:05d}"
                setattr(row, name, {"field": canary} if vars(model)[name].json else canary)
            for name in personal:
                planted += 1
                setattr(row, name, f"canary{planted:05d}")
    db.session.commit()
    return planted


def test_promise_31_donor_outputs_are_aggregates_without_a_trace_of_anyone(
    app, fund, make_user, make_donor
):
    """Canaries in every sensitive field of every case: the donor's PDF (text, metadata)
    and CSV, for a year, a quarter and a month, show none of them, no case or grant code,
    no payee and no payment date; small counts read "fewer than 5" and a lone small cell
    takes its neighbour with it; a month's hidden figure is not its quarter's less the
    other months'; free date ranges are refused."""
    world = MoneyWorld(fund, make_user, make_donor)
    # Each grant is approved and paid on its day: reports count what was recorded by the
    # end of their period, and say it once the period has ended.
    for n in range(5):
        with Clock().on(datetime(2026, 1, 12 + n, 10)):
            january = world.grant("700", name=f"January {n}")
            pay(world, january, str(600 + n), instalment=None, paid_on=date(2026, 1, 12 + n))
    with Clock().on(datetime(2026, 2, 3, 10)):
        grants = _pay_three(world)
    donor = signed_in(app, make_user("donor", donor_id=world.donor.id))
    _rest_of_promise_31(world, grants, donor)


def _pay_three(world):
    """Three grants paid in February, with every kind of case content beside them."""
    grants = []
    for n in range(3):
        grant = world.grant(str(1000 + n), name=f"Defender {n}")
        case = grant.application
        case.dependants = [Dependant(relation="x", age=4)]
        case.references = [Reference(name="x", organisation="x", contact="x", notes="x")]
        db.session.add(Message(application_id=case.id, from_staff=False, body="x"))
        db.session.add(
            UseOfFundsReport(
                application_id=case.id, felt_safer=True, narrative="x", submitted_at=utcnow()
            )
        )
        if n:
            db.session.add(
                Consent(
                    application_id=case.id,
                    kind=ConsentKind.STORY,
                    method="form",
                    given_at=utcnow(),
                )
            )
        db.session.commit()
        pay(world, grant, "500", instalment=None, payee_details=f"CANARY-PAYEE-{n}")
        grants.append(grant)
    return grants


def _rest_of_promise_31(world, grants, donor):
    assert _plant_canaries() >= 30
    outputs = 0
    for period in ("2026", "2026-Q1", "2026-02"):
        url = f"/donor/pools/{world.eur.uid}/report?period={period}&format="
        pdf = get_closed(donor, url + "pdf")
        csv_text = get_closed(donor, url + "csv").get_data(as_text=True)
        assert pdf.status_code == 200 and csv_text.startswith("Grant code,")
        text, metadata = read_pdf(pdf.get_data())
        assert metadata.title == "Donor report"
        assert not any(metadata.get(k) for k in ("/Author", "/Creator", "/Producer", "/Subject"))
        if period == "2026-Q1":
            assert "fewer than 5" in text and "Not listed" in csv_text
        for output in (text, " ".join(str(v) for v in metadata.values()), csv_text):
            assert "CANARY" not in output.upper(), period
            assert "2026-02-03" not in output and "3 February 2026" not in output
            for grant in grants:
                assert grant.uid not in output and grant.application.uid not in output
        assert b"CANARY" not in pdf.get_data().upper()
        outputs += 1
    assert outputs == 3
    for free in ("2026-01-01:2026-02-01", "2026-02-03", "last-90-days"):
        url = f"/donor/pools/{world.eur.uid}/report?period={free}&format=csv"
        assert get_closed(donor, url).status_code == 404, free
    table = breakdown(
        "category",
        {
            "legal": {"grants": 3, "defenders": 3, "dependants": 0, "amount": Decimal(900)},
            "medical": {"grants": 6, "defenders": 6, "dependants": 6, "amount": Decimal(1800)},
            "relocation": {"grants": 9, "defenders": 9, "dependants": 9, "amount": Decimal(5000)},
        },
    )
    grants_cells = {row.label: row.cells["grants"] for row in table.rows}
    assert not grants_cells["legal"].shown and not grants_cells["medical"].shown
    assert grants_cells["relocation"].shown and table.total.cells["grants"].shown
    # The first quarter is January (5 grants) and February (3): what February's report
    # hides, the quarter's and January's reports do not both show.
    quarter, jan, feb = (
        build_report(world.eur, parse_period(code))["breakdowns"]
        for code in ("2026-Q1", "2026-01", "2026-02")
    )
    hidden = 0
    for name in ("category", "region", "gender", "month"):
        for label in [r.label for r in quarter[name].rows] + ["total"]:
            for measure in ("grants", "defenders", "dependants", "amount"):
                cells = [_cell_of(t[name], label, measure) for t in (quarter, jan, feb)]
                if cells[2] is not None and not cells[2].shown and cells[2].value:
                    hidden += 1
                    assert not all(c is not None and c.shown for c in cells[:2]), (name, label)
    assert hidden >= 3


def _cell_of(table, label, measure):
    """A figure of a breakdown, or None when the table lists no such row."""
    for row in table.rows + [table.total]:
        if row.label == label:
            return row.cells[measure]
    return None
