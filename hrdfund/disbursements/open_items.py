"""What the fund's staff must chase, kept as it opens and closes: payments the payee side
has not answered on, cases paid whose use-of-funds report has not come, instalments of
open grants that payments have not settled, payments a bank reported short or failed and
not yet corrected, payments the payee side reported short or not received and finance has
not resolved, and grants approved without a plan that are not paid in full.

:func:`open_rows` is the one rule of each kind, over the cases staff may open (not purged,
approved, paying or completed): one row per open item, with the day its clock starts
(the payment's date, the first payment's, the instalment's due date, the bank's report,
the payee's answer, the approval). Follow-up, finance's list to pay, the instalment alerts
and the dashboard all read these rows, so they agree; the dashboard counts them through
their index, without reading the payments, the cases or anything else.

The rows of a case are worked out again from that rule whenever anything the rule reads of
that case is written (a payment or its reversal, a payee's answer or finance's
resolution of it, a bank's report, a use-of-funds report, a plan or its instalments, the
grant, the case's status), in the same flush and transaction: an item is kept exactly
while the rule finds it open, whichever service writes. On PostgreSQL the case's row is
locked first, so two transactions touching one case take turns and the second sees the
first's rows. Work written around the ORM (the demo's bulk loading, retention's purge)
calls :func:`refresh` or :func:`rebuild` itself; `flask hrdfund check` compares the kept
rows with the rule worked out again (:func:`differences`).
"""

import enum
import functools
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped

from ..auth.models import Role
from ..cases.access import MONEY_STATES, REVIEW_ROLES, conflicted_ids
from ..cases.models import Application, UseOfFundsReport
from ..core.columns import INTERNAL, Text, col, fk
from ..core.extensions import db
from ..core.sql import alias
from ..grants.models import Grant, GrantStatus, Instalment, PaymentPlan
from ..ledger.balances import grants_paid, instalments_paid
from ..ledger.models import (
    Delivery,
    DeliveryStatus,
    Disbursement,
    ReceiptAnswer,
    ReceiptAnswerKind,
    ReceiptResolution,
)
from ..ledger.reversals import taken_back
from .rules import COVER_TOLERANCE, instalment_unsettled, standing


class ItemKind(enum.StrEnum):
    #: A payment that stands and the payee side has not answered on; its day is the
    #: payment's.
    RECEIPT = "receipt"
    #: A case paid whose use-of-funds report has not come; its day is the first payment's.
    REPORT = "report"
    #: An instalment of an open grant that payments, net of reversals, have not settled;
    #: its day is the due date.
    INSTALMENT = "instalment"
    #: A payment reported short and not reversed, or failed and not reversed in full; its
    #: day is the bank's report.
    MISMATCH = "mismatch"
    #: A payee's answer that stands (no later answer to the payment) saying less arrived,
    #: or nothing, that finance has not resolved; its day is the answer's (UTC).
    ANSWER = "answer"
    #: An open grant without a plan, not paid in full; its day is the approval's.
    UNPLANNED = "unplanned"


class OpenItem(db.Model):
    """One thing staff must chase, while it is open: see the module's docstring."""

    __tablename__ = "open_items"
    __table_args__ = (
        # Each count is a range of this index: a fund's items of one kind up to a day.
        sa.Index("ix_open_items_count", "fund_id", "kind", "day", "item_id"),
    )
    kind = col(sa.String(16), INTERNAL, text=Text.CODE, primary_key=True)
    #: The payment, case, instalment, bank report, payee's answer or grant, by the kind.
    item_id = col(sa.Integer, INTERNAL, primary_key=True, autoincrement=False)
    application_id: Mapped[int] = fk("applications.id", ondelete="CASCADE")
    fund_id: Mapped[int] = fk("funds.id", index=False)
    day = col(sa.Date, INTERNAL, nullable=False)


def _kept(cases):
    """SQL: the cases whose items are kept (those staff may open), among ``cases`` (a
    condition on the case) when given."""
    condition = sa.and_(
        Application.purged_at.is_(None), Application.status.in_(sorted(MONEY_STATES))
    )
    return condition if cases is None else sa.and_(condition, cases)


def _columns(kind, item_id, day):
    return (
        sa.literal(kind.value, sa.String(16)).label("kind"),
        item_id.label("item_id"),
        Application.id.label("application_id"),
        Application.fund_id.label("fund_id"),
        day.label("day"),
    )


def open_rows(cases=None):
    """SQL: every open item (kind, item_id, application_id, fund_id, day) by the rule of
    its kind; with ``cases`` (a condition on Application), only theirs."""
    kept = _kept(cases)
    grants = sa.select(Grant.id).join(Application, Application.id == Grant.application_id)
    grants = grants.where(kept)
    receipts = (
        sa.select(*_columns(ItemKind.RECEIPT, Disbursement.id, Disbursement.paid_on))
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(
            kept,
            standing(),
            Disbursement.id.not_in(sa.select(ReceiptAnswer.disbursement_id)),
        )
    )
    reports = (
        sa.select(*_columns(ItemKind.REPORT, Application.id, sa.func.min(Disbursement.paid_on)))
        .join(Grant, Grant.application_id == Application.id)
        .join(Disbursement, Disbursement.grant_id == Grant.id)
        .where(kept, standing(), Application.id.not_in(sa.select(UseOfFundsReport.application_id)))
        .group_by(Application.id, Application.fund_id)
    )
    net = instalments_paid(None if cases is None else grants)
    paid = sa.func.coalesce(net.c.paid, 0)
    instalments = (
        sa.select(*_columns(ItemKind.INSTALMENT, Instalment.id, Instalment.due_on))
        .join(PaymentPlan, PaymentPlan.id == Instalment.plan_id)
        .join(Grant, Grant.id == PaymentPlan.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .outerjoin(net, net.c.instalment_id == Instalment.id)
        .where(kept, Grant.status == GrantStatus.ACTIVE, instalment_unsettled(paid))
    )
    # Settled by a reversal: a payment delivered short by any, one failed by reversals
    # that took all of it back (a payment may be reversed in several parts).
    back = taken_back(Disbursement, "open item: reversals")
    mismatches = (
        sa.select(*_columns(ItemKind.MISMATCH, Delivery.id, Delivery.reported_on))
        .join(Disbursement, Disbursement.id == Delivery.disbursement_id)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .where(
            kept,
            sa.or_(
                sa.and_(Delivery.status == DeliveryStatus.SHORT, back == 0),
                sa.and_(Delivery.status == DeliveryStatus.FAILED, back < Disbursement.amount),
            ),
        )
    )
    later = alias(ReceiptAnswer, "open item: later answer")
    answers = (
        sa.select(*_columns(ItemKind.ANSWER, ReceiptAnswer.id, _day(ReceiptAnswer.answered_at)))
        .join(Disbursement, Disbursement.id == ReceiptAnswer.disbursement_id)
        .join(Grant, Grant.id == Disbursement.grant_id)
        .join(Application, Application.id == Grant.application_id)
        .outerjoin(ReceiptResolution, ReceiptResolution.answer_id == ReceiptAnswer.id)
        .where(
            kept,
            ReceiptAnswer.answer != ReceiptAnswerKind.RECEIVED,
            ReceiptResolution.id.is_(None),
            ~sa.exists().where(
                later.disbursement_id == ReceiptAnswer.disbursement_id, later.id > ReceiptAnswer.id
            ),
        )
    )
    by_grant = grants_paid(None if cases is None else grants)
    granted = sa.func.coalesce(by_grant.c.paid, 0)
    unplanned = (
        sa.select(
            *_columns(ItemKind.UNPLANNED, Grant.id, sa.func.date(Grant.approved_at, type_=sa.Date))
        )
        .join(Application, Application.id == Grant.application_id)
        .outerjoin(by_grant, by_grant.c.grant_id == Grant.id)
        .where(
            kept,
            Grant.status == GrantStatus.ACTIVE,
            Grant.id.not_in(sa.select(PaymentPlan.grant_id)),
            granted < Grant.amount - COVER_TOLERANCE,
        )
    )
    return sa.union_all(receipts, reports, instalments, mismatches, answers, unplanned)


class FirstPayment(db.Model):
    """A grant's first payment, beside the day its case was decided: the time to money the
    dashboard charts, kept with the open items and by the same rule of which cases."""

    __tablename__ = "first_payments"
    __table_args__ = (
        # The chart reads a range of this index: a fund's grants first paid since a day.
        sa.Index("ix_first_payments_chart", "fund_id", "paid_on", "decided_on", "application_id"),
    )
    grant_id: Mapped[int] = fk("grants.id", index=False, primary_key=True)
    application_id: Mapped[int] = fk("applications.id", ondelete="CASCADE")
    fund_id: Mapped[int] = fk("funds.id", index=False)
    #: The date of the grant's first payment (reversed or not; reversal rows aside).
    paid_on = col(sa.Date, INTERNAL, nullable=False)
    #: The day (UTC) the case was decided.
    decided_on = col(sa.Date, INTERNAL, nullable=False)


def _day(column):
    """SQL: the UTC day of a time column, as a Date column stores it."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.cast(column, sa.Date)
    return sa.func.date(column, type_=sa.Date)


def first_rows(cases=None):
    """SQL: every grant's first payment (grant_id, application_id, fund_id, paid_on,
    decided_on) of the cases staff may open, decided and paid; with ``cases`` (a condition
    on Application), only theirs."""
    return (
        sa.select(
            Grant.id.label("grant_id"),
            Application.id.label("application_id"),
            Application.fund_id.label("fund_id"),
            sa.func.min(Disbursement.paid_on).label("paid_on"),
            _day(Application.decided_at).label("decided_on"),
        )
        .join(Application, Application.id == Grant.application_id)
        .join(Disbursement, Disbursement.grant_id == Grant.id)
        .where(
            _kept(cases),
            Application.decided_at.is_not(None),
            Disbursement.reversal_of_id.is_(None),
        )
        .group_by(Grant.id, Application.id, Application.fund_id, Application.decided_at)
    )


#: The kept tables, each with its rule.
KEPT = ((OpenItem, open_rows), (FirstPayment, first_rows))


# -- kept as rows are written -----------------------------------------------------------------


def refresh(case_ids, connection=None):
    """Work the open items of the cases ``case_ids`` out again from the rule, in the
    current transaction (on ``connection`` when given, as a flush does)."""
    ids = sorted({int(i) for i in case_ids if i is not None})
    if not ids:
        return
    connection = connection if connection is not None else db.session.connection()
    if connection.dialect.name == "postgresql":
        # Two transactions touching one case take turns: the second works it out again
        # from what the first committed.
        for case_id in ids:
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"open-items:{case_id}"},
            )
    for statement in _refresh_statements(connection.dialect.name):
        connection.execute(statement, {"ids": ids})


@functools.cache
def _refresh_statements(dialect):
    """By database: the DELETE and INSERT of each kept table for the cases of the bound
    parameter ``ids``. Built once: building the rules' statement took longer than running
    it for a case."""
    ids = sa.bindparam("ids", expanding=True)
    built = []
    for model, rule in KEPT:
        table = model.__table__
        built.append(sa.delete(table).where(table.c.application_id.in_(ids)))
        built.append(_insert(model, rule(Application.id.in_(ids))))
    return tuple(built)


def _insert(model, query):
    """INSERT of ``query``'s rows into ``model``'s table, column by column name."""
    rows = query.subquery()
    names = [c.name for c in model.__table__.columns]
    return sa.insert(model.__table__).from_select(names, sa.select(*(rows.c[n] for n in names)))


def _whole_rule(model, rule):
    """``rule`` over every case: the statement of all rows ``model`` should keep, built
    once per database as the refresh's are."""
    return _rule_over_every_case(db.session.get_bind().dialect.name, model, rule)


@functools.cache
def _rule_over_every_case(_dialect, _model, rule):
    return rule()


def rebuild():
    """Work every open item and first payment out again from the rows; returns how many
    items are open."""
    connection = db.session.connection()
    for model, rule in KEPT:
        table = model.__table__
        connection.execute(sa.delete(table))
        connection.execute(_insert(model, _whole_rule(model, rule)))
    return db.session.execute(sa.select(sa.func.count()).select_from(OpenItem)).scalar()


def differences():
    """Each open item or first payment kept that its rule does not find, or found and not
    kept, as words; empty when every kept row is the rule's."""
    problems = []
    for model, rule in KEPT:
        table = model.__table__
        key = [c.name for c in table.primary_key.columns]
        names = [c.name for c in table.columns]

        def rows(query, key=key, names=names):
            found = {}
            for row in db.session.execute(query).mappings():
                found[tuple(row[k] for k in key)] = tuple(str(row[n])[:10] for n in names)
            return found

        kept = rows(sa.select(table))
        worked_out = rows(_whole_rule(model, rule))
        for item in sorted(set(kept) | set(worked_out)):
            if kept.get(item) != worked_out.get(item):
                problems.append(
                    f"{table.name} {item}: kept {kept.get(item)}, found {worked_out.get(item)}"
                    " (flask hrdfund rebuild-figures works them out again)"
                )
    return problems


def _case_of_changed(state, names):
    """Whether any of the attributes ``names`` of the object's ``state`` changed."""
    return any(state.attrs[name].history.has_changes() for name in names)


def _may_hold_items(application, state, session):
    """Whether the case had items kept before this flush or may have some after it: the
    rule keeps them only for cases in a money state, so a case that was in none and is in
    none (a draft saved, a case sent or reviewed) had none and has none, and nothing needs
    working out again. A status not loaded before it changed is not known: it may have."""
    history = state.attrs.status.history
    if application not in session.new and history.added and not history.deleted:
        return True
    statuses = [*history.added, *history.deleted, *history.unchanged]
    return not statuses or any(status in MONEY_STATES for status in statuses)


def _touched_cases(session, connection):
    """The ids of the cases whose open items the flush may have changed."""
    cases, grants, plans, payments, answers = set(), set(), set(), set(), set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Application):
            state = sa.inspect(obj)
            if obj in session.deleted or (
                _case_of_changed(state, ("status", "purged_at", "fund_id", "decided_at"))
                and _may_hold_items(obj, state, session)
            ):
                cases.add(obj.id)
        elif isinstance(obj, Grant):
            cases.add(obj.application_id)
        elif isinstance(obj, UseOfFundsReport):
            cases.add(obj.application_id)
        elif isinstance(obj, PaymentPlan):
            grants.add(obj.grant_id)
        elif isinstance(obj, Instalment):
            plans.add(obj.plan_id)
        elif isinstance(obj, Disbursement):
            grants.add(obj.grant_id)
        elif isinstance(obj, (Delivery, ReceiptAnswer)):
            payments.add(obj.disbursement_id)
        elif isinstance(obj, ReceiptResolution):
            answers.add(obj.answer_id)
    if answers:
        payments |= set(
            connection.execute(
                sa.select(ReceiptAnswer.disbursement_id).where(ReceiptAnswer.id.in_(answers))
            ).scalars()
        )
    if payments:
        grants |= set(
            connection.execute(
                sa.select(Disbursement.grant_id).where(Disbursement.id.in_(payments))
            ).scalars()
        )
    if plans:
        grants |= set(
            connection.execute(
                sa.select(PaymentPlan.grant_id).where(PaymentPlan.id.in_(plans))
            ).scalars()
        )
    grants.discard(None)
    if grants:
        cases |= set(
            connection.execute(
                sa.select(Grant.application_id).where(Grant.id.in_(grants))
            ).scalars()
        )
    cases.discard(None)
    return cases


def _after_flush(session, _context):
    connection = session.connection()
    cases = _touched_cases(session, connection)
    if cases:
        refresh(cases, connection)


_installed = False


def install():
    """Keep the open items and the first payments as rows are written, through the ORM,
    by any service. Calling it again changes nothing."""
    global _installed
    if _installed:
        return
    sa.event.listen(sa.orm.Session, "after_flush", _after_flush)
    _installed = True


# -- counted and listed -------------------------------------------------------------------------


def among_visible(user, model=None):
    """SQL condition on OpenItem (or ``model``, another kept table): the rows of the cases
    ``user`` may open, as ``visible_cases`` says, read from the rows alone. They are kept
    only for cases not purged and approved, paying or completed (which every role that
    sees money may open), so what is left of the rule is the reader's fund, less the cases
    they declared a conflict on."""
    if user.role not in REVIEW_ROLES and user.role != Role.FINANCE:
        return sa.false()
    model = model or OpenItem
    conflicted = conflicted_ids(user)
    condition = model.fund_id == user.fund_id
    if conflicted:
        condition = sa.and_(condition, model.application_id.not_in(conflicted))
    return condition


def count_open(user, spans):
    """How many items ``user`` may see of each of ``spans``: {name: (kind, last day or
    None)}. One statement, each count a range of the items' index."""
    visible = among_visible(user)
    counts = []
    for kind, last in spans.values():
        query = (
            sa.select(sa.func.count()).select_from(OpenItem).where(visible, OpenItem.kind == kind)
        )
        if last is not None:
            query = query.where(OpenItem.day <= last)
        counts.append(query.scalar_subquery())
    found = db.session.execute(sa.select(*counts)).one()
    return dict(zip(spans, found, strict=True))


def late_spans(today, config):
    """The spans Follow-up and the dashboard count, by the fund's settings: receipts and
    reports overdue, instalments due by today (late) or within the notice, payments reported
    short or failed by a statement (mismatches) or by the payee side (answers), and grants
    without a plan."""
    return {
        "receipts": (ItemKind.RECEIPT, today - timedelta(days=config["RECEIPT_OVERDUE_DAYS"])),
        "reports": (ItemKind.REPORT, today - timedelta(days=config["REPORT_OVERDUE_DAYS"])),
        "instalments_late": (ItemKind.INSTALMENT, today - timedelta(days=1)),
        "instalments_due": (
            ItemKind.INSTALMENT,
            today + timedelta(days=config["INSTALMENT_NOTICE_DAYS"]),
        ),
        "mismatches": (ItemKind.MISMATCH, None),
        "answers": (ItemKind.ANSWER, None),
        "unplanned": (ItemKind.UNPLANNED, None),
    }
