"""Pool figures are sums over ledger rows, and `check` names every broken invariant."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund import audit
from hrdfund.cases.models import Application, ApplicationStatus
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from hrdfund.core.support import Category
from hrdfund.disbursements.checks import check_ledger
from hrdfund.grants.models import Grant
from hrdfund.ledger.balances import pool_figures
from hrdfund.ledger.models import (
    Allocation,
    Channel,
    Contribution,
    Disbursement,
    PayeeType,
    ReceiptAnswer,
    Release,
)
from hrdfund.pools.models import Pool
from tests.conftest import edit_behind_the_app


def _add(obj):
    """Write a row; ledger rows are sealed as they are inserted, once their ids are known."""
    db.session.add(obj)
    db.session.flush()
    return obj


class Ledger:
    """A small hand-built ledger: one fund, one donor, two pools, one granted case."""

    def __init__(self, fund, donor):
        self.fund = fund
        self.pool = _add(Pool(fund_id=fund.id, donor_id=donor.id, name="Safe", currency="EUR"))
        self.other_pool = _add(
            Pool(fund_id=fund.id, donor_id=donor.id, name="Other", currency="EUR")
        )
        self.first = self.contribute("10000")
        second = self.contribute("500")
        self.contribute("200", reversal_of=second)
        self.grant = self.make_grant("3000")
        self.allocation = _add(
            Allocation(
                grant_id=self.grant.id,
                pool_id=self.pool.id,
                amount=Decimal("3000"),
                grant_amount=Decimal("3000"),
                fx_rate=Decimal(1),
            )
        )
        self.release = _add(Release(allocation_id=self.allocation.id, amount=Decimal("400")))
        self.paid = self.pay("1000", fee="5")
        bounced = self.pay("500", fee="2")
        self.pay("500", fee="2", reversal_of=bounced)
        db.session.commit()

    def contribute(self, amount, reversal_of=None, pool=None):
        return _add(
            Contribution(
                pool_id=(pool or self.pool).id,
                amount=Decimal(amount),
                received_amount=Decimal(amount),
                received_currency="EUR",
                fx_rate=Decimal(1),
                received_on=date(2026, 1, 5),
                reversal_of_id=reversal_of.id if reversal_of else None,
            )
        )

    def make_grant(self, amount):
        case = _add(
            Application(
                fund_id=self.fund.id,
                category=Category.LEGAL,
                status=ApplicationStatus.PAYING,
                currency="EUR",
            )
        )
        return _add(
            Grant(
                fund_id=self.fund.id,
                application_id=case.id,
                amount=Decimal(amount),
                currency="EUR",
                approved_at=datetime(2026, 2, 1),
            )
        )

    def pay(self, amount, fee="0", reversal_of=None, pool=None, allocation=None):
        allocation = allocation or self.allocation
        return _add(
            Disbursement(
                grant_id=allocation.grant_id,
                allocation_id=allocation.id,
                pool_id=(pool or self.pool).id,
                payee_type=PayeeType.DEFENDER,
                channel=Channel.MOBILE_MONEY,
                amount_paid=Decimal(amount),
                currency_paid="EUR",
                amount=Decimal(amount),
                fx_rate=Decimal(1),
                fee_amount=Decimal(fee),
                paid_on=date(2026, 2, 4),
                idempotency_key=None if reversal_of else f"k-{amount}-{fee}-{id(self)}",
                reversal_of_id=reversal_of.id if reversal_of else None,
            )
        )


@pytest.fixture
def ledger(fund, make_donor):
    built = Ledger(fund, make_donor())
    assert check_ledger() == []
    return built


def test_pool_figures_are_the_sums_of_the_rows(ledger):
    """Received counts reversed contributions out; committed counts releases out; a reversed
    payment is not disbursed; available is what grants may still take once fees are paid."""
    figures = pool_figures()
    assert figures[ledger.pool.id] == {
        "received": Decimal("10300.00"),
        "committed": Decimal("2600.00"),
        "disbursed": Decimal("1000.00"),
        "fees": Decimal("5.00"),
        "exchange_differences": Decimal("0.00"),
        "available": Decimal("7695.00"),
        "outstanding": Decimal("1600.00"),
    }
    assert set(figures[ledger.other_pool.id].values()) == {Decimal("0.00")}
    assert pool_figures([ledger.other_pool.id]) == {
        ledger.other_pool.id: figures[ledger.other_pool.id]
    }


def test_pool_figures_as_they_stood_on_a_day(ledger):
    """Rows count from their own dates: money received on 5 January, paid on 4 February,
    committed today."""
    before_payments = pool_figures([ledger.pool.id], until=date(2026, 2, 1))[ledger.pool.id]
    assert before_payments["received"] == Decimal("10300.00")
    assert before_payments["disbursed"] == before_payments["committed"] == 0
    assert pool_figures([ledger.pool.id], until=date(2026, 1, 5))[ledger.pool.id][
        "received"
    ] == Decimal("0.00")
    tomorrow = utcnow().date() + timedelta(days=1)
    assert pool_figures(until=tomorrow) == pool_figures()


def test_every_ledger_row_is_sealed_over_its_amounts(ledger):
    for model in (Contribution, Allocation, Release, Disbursement):
        rows = db.session.execute(sa.select(model)).scalars().all()
        assert rows
        for row in rows:
            fields = audit.SEALED_FIELDS[model.__tablename__]
            values = {f: getattr(row, f) for f in fields}
            assert row.seal == audit.seal(model.__tablename__, values)


def _overdraw(ledger):
    grant = ledger.make_grant("8000")
    _add(
        Allocation(
            grant_id=grant.id,
            pool_id=ledger.pool.id,
            amount=Decimal("8000"),
            grant_amount=Decimal("8000"),
            fx_rate=Decimal(1),
        )
    )
    return f"pool {ledger.pool.id} is below zero: committed 10600.00 exceeds received 10300.00"


def _overpay(ledger):
    ledger.pay("2000")
    return (
        f"grant {ledger.grant.id} is paid beyond its commitment on allocation "
        f"{ledger.allocation.id}: paid 3000.00 + released 400.00 > committed 3000.00"
    )


def _over_reverse_payment(ledger):
    ledger.pay("1200", reversal_of=ledger.paid)
    return (
        f"disbursement {ledger.paid.id} is reversed by more than it was: amount 1200.00 of 1000.00"
    )


def _over_reverse_payment_in_parts(ledger):
    """Two reversals, each within the payment, together past it."""
    ledger.pay("600", reversal_of=ledger.paid)
    ledger.pay("500", reversal_of=ledger.paid)
    return (
        f"disbursement {ledger.paid.id} is reversed by more than it was: amount 1100.00 of 1000.00"
    )


def _over_reverse_contribution(ledger):
    small = ledger.contribute("100")
    ledger.contribute("300", reversal_of=small)
    return f"contribution {small.id} is reversed by more than it was: amount 300.00 of 100.00"


def _reverse_a_reversal(ledger):
    original = ledger.contribute("100")
    reversal = ledger.contribute("100", reversal_of=original)
    again = ledger.contribute("100", reversal_of=reversal)
    return f"contribution {again.id} reverses a reversal"


def _pay_from_another_pool(ledger):
    ledger.contribute("5000", pool=ledger.other_pool)
    stray = ledger.pay("100", pool=ledger.other_pool)
    return f"disbursement {stray.id} is not tied to its grant's allocation and pool"


def _reverse_on_another_allocation(ledger):
    grant = ledger.make_grant("100")
    other = _add(
        Allocation(
            grant_id=grant.id,
            pool_id=ledger.pool.id,
            amount=Decimal("100"),
            grant_amount=Decimal("100"),
            fx_rate=Decimal(1),
        )
    )
    reversal = ledger.pay("100", reversal_of=ledger.paid, allocation=other)
    return f"disbursement {reversal.id} is not on the allocation it reverses"


def _draw_a_capped_pool_twice(ledger):
    """Two allocations of one grant on a pool capped at 500 per grant, 400 each."""
    capped = _add(
        Pool(
            fund_id=ledger.fund.id,
            donor_id=ledger.pool.donor_id,
            name="Capped",
            currency="EUR",
            cap_per_grant=Decimal(500),
        )
    )
    ledger.contribute("5000", pool=capped)
    grant = ledger.make_grant("800")
    for _ in range(2):
        _add(
            Allocation(
                grant_id=grant.id,
                pool_id=capped.id,
                amount=Decimal(400),
                grant_amount=Decimal(400),
                fx_rate=Decimal(1),
            )
        )
    return f"grant {grant.id} draws 800.00 from pool {capped.id}, above its cap of 500.00 per grant"


@pytest.mark.parametrize(
    "breakage",
    [
        _overdraw,
        _overpay,
        _over_reverse_payment,
        _over_reverse_payment_in_parts,
        _over_reverse_contribution,
        _reverse_a_reversal,
        _pay_from_another_pool,
        _reverse_on_another_allocation,
        _draw_a_capped_pool_twice,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_each_broken_invariant_is_named(ledger, breakage):
    """Rows written around the services, each breaking one rule, are caught by name."""
    expected = breakage(ledger)
    db.session.commit()
    assert expected in check_ledger()


@pytest.mark.parametrize(
    "table, model, attribute",
    [
        ("contributions", Contribution, "first"),
        ("allocations", Allocation, "allocation"),
        ("releases", Release, "release"),
        ("disbursements", Disbursement, "paid"),
    ],
)
def test_an_amount_edited_in_the_database_breaks_its_seal(ledger, table, model, attribute):
    """Someone who edits an amount with SQL, around the application, is found out."""
    row_id = getattr(ledger, attribute).id
    edit_behind_the_app(
        table, f"UPDATE {table} SET amount = amount - 1 WHERE id = :i", {"i": row_id}
    )
    assert (
        f"{table} row {row_id} was altered in the database (its seal does not match its amounts)"
        in check_ledger()
    )


def test_the_check_command_passes_a_healthy_ledger(ledger, runner):
    db.session.commit()
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code == 0, result.output
    assert "OK: ledger balanced" in result.output
    assert "BROKEN" not in result.output
    # Each pool's figures, added up by `check` from the rows, as the pool page shows them.
    pool = ledger.pool
    assert (
        f"Pool {pool.uid} {pool.name} ({pool.currency}): received 10300.00, committed 2600.00,"
        " disbursed 1000.00, fees 5.00, exchange differences 0.00, available 7695.00"
    ) in result.output


def test_check_reports_pool_figures_that_are_not_the_sums_of_the_rows(ledger, monkeypatch):
    """Should the page's grouped sums ever drift from the rows, `check` names the figure."""
    import hrdfund.ledger.invariants as ledger_module

    honest = ledger_module.pool_figures

    def drifting(pool_ids=None):
        figures = honest(pool_ids)
        figures[ledger.pool.id]["fees"] += Decimal("0.01")
        return figures

    monkeypatch.setattr(ledger_module, "pool_figures", drifting)
    assert check_ledger() == [
        f"pool {ledger.pool.id}: the sums of its rows differ from its figures in fees"
    ]


def test_the_check_command_fails_a_broken_ledger(ledger, runner):
    """An operator running `flask hrdfund check` sees what is wrong and gets a failing exit."""
    edit_behind_the_app(
        "disbursements", "UPDATE disbursements SET amount = 1 WHERE id = :i", {"i": ledger.paid.id}
    )
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code != 0
    assert f"BROKEN: disbursements row {ledger.paid.id} was altered" in result.output


def test_the_check_command_fails_a_broken_audit_chain(ledger, runner):
    for uid in ("p1", "p2"):
        audit.record("test.payment", object_type="disbursements", object_id=uid)
    db.session.commit()
    assert runner.invoke(args=["hrdfund", "check"]).exit_code == 0
    db.session.execute(
        sa.text("UPDATE audit_events SET actor = 'u999' WHERE chain = 0 AND seq = 1")
    )
    db.session.commit()
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code != 0
    assert "BROKEN: the instance's audit chain: audit entry 1 was altered" in result.output
    # The fund's chain, untouched, is said to verify.
    assert f"The audit chain of fund {ledger.pool.fund_id} (Test Fund): verified" in result.output


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize(
    "table", ["contributions", "allocations", "releases", "disbursements", "receipt_answers"]
)
@pytest.mark.parametrize("statement", ["UPDATE {table} SET id = id", "DELETE FROM {table}"])
def test_postgresql_refuses_to_edit_or_delete_ledger_rows(ledger, table, statement):
    """On PostgreSQL even SQL written around the application cannot change a past row
    (SQLite relies on the application's own guard, tested above)."""
    _add(
        ReceiptAnswer(
            disbursement_id=ledger.paid.id, answer="received", answered_at=datetime(2026, 2, 9)
        )
    )
    db.session.commit()
    before = db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
    with pytest.raises(sa.exc.DBAPIError, match="rows are never edited or deleted"):
        db.session.execute(sa.text(statement.format(table=table)))
    db.session.rollback()
    assert db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == before > 0
