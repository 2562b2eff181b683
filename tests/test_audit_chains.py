"""The audit chains of the funds and of the instance: each chain verifies on its own, an
entry moved from one chain to another, altered or deleted is named by `check --fund` and by
`check`, a case's events land in its fund's chain and what belongs to no fund in the
instance's, and on PostgreSQL one fund's appends never wait on another fund's lock."""

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa

from hrdfund import audit
from hrdfund.audit.models import AuditEvent
from hrdfund.auth.models import Fund, User
from hrdfund.cases.messages import post_message
from hrdfund.cases.models import Application, ApplicationStatus, Message
from hrdfund.cases.services import start_application, submit_application
from hrdfund.core.extensions import db
from hrdfund.disbursements.services import reverse_disbursement
from hrdfund.grants.decisions import approve_with_recorded_rates
from tests.conftest import MoneyWorld, make_costed_case, pay, sign_up

INSTANCE = audit.INSTANCE


def _chain(fund):
    """The entries of the chain of ``fund`` (None: the instance's), in order."""
    return (
        db.session.execute(
            sa.select(AuditEvent)
            .where(AuditEvent.chain == audit.chain_of(fund))
            .order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )


def _record(fund, name, n):
    for i in range(n):
        audit.record("test.event", object_type="things", object_id=f"{name}{i}", fund=fund, n=i)


def _sql(statement, **params):
    db.session.execute(sa.text(statement), params)
    db.session.commit()


def _check(runner, *args):
    result = runner.invoke(args=["hrdfund", "check", *args])
    return result.exit_code, result.output


@pytest.fixture
def funds(app, make_fund):
    """Fund A and Fund B, four entries in each chain and two in the instance's, written
    interleaved as work of both funds would be."""
    a, b = make_fund("Fund A"), make_fund("Fund B")
    for i in range(4):
        audit.record("test.event", object_type="things", object_id=f"a{i}", fund=a)
        audit.record("test.event", object_type="things", object_id=f"b{i}", fund=b.id)
        if i < 2:
            audit.record("test.event", object_type="things", object_id=f"i{i}", fund=None)
    db.session.commit()
    return a, b


def test_two_funds_events_form_two_chains_each_verifying(funds):
    a, b = funds
    for fund, name, count in ((a, "a", 4), (b, "b", 4), (None, "i", 2)):
        rows = _chain(fund)
        assert [r.seq for r in rows] == list(range(1, count + 1))
        assert [r.object_id for r in rows] == [f"{name}{i}" for i in range(count)]
        assert rows[0].prev_hash == audit.GENESIS
        assert all(later.prev_hash == r.hash for r, later in zip(rows, rows[1:], strict=False))
        assert audit.verify(fund=fund) == []
        assert audit.head(fund) == (count, rows[-1].hash)
    assert audit.heads() == {
        INSTANCE: audit.head(None),
        a.id: audit.head(a),
        b.id: audit.head(b.id),
    }
    # A fund without entries has an empty chain, which verifies.
    assert audit.verify(fund=a.id + b.id + 1) == [] and audit.head(99) == (0, audit.GENESIS)


def test_the_chain_is_the_fund_given_else_the_objects_else_the_actors(app, make_fund, make_user):
    a, b = make_fund("Fund A"), make_fund("Fund B")
    staff_of_b = make_user("reviewer", fund_id=b.id)
    applicant = make_user("applicant")
    case_of_a = make_costed_case(a)
    assert audit.record("t", case_of_a, actor=staff_of_b, fund=b).chain == b.id
    assert audit.record("t", case_of_a, actor=staff_of_b, fund=None).chain == INSTANCE
    assert audit.record("t", case_of_a, actor=staff_of_b).chain == a.id
    assert audit.record("t", case_of_a, actor=applicant).chain == a.id
    # An account of no fund (an applicant's): the actor's fund, else the instance's.
    assert audit.record("t", applicant, actor=staff_of_b).chain == b.id
    assert audit.record("t", applicant, actor=applicant).chain == INSTANCE
    assert audit.record("t", object_type="x", object_id="1", actor=staff_of_b).chain == b.id
    assert audit.record("t", object_type="x", object_id="1").chain == INSTANCE
    db.session.commit()
    before = audit.heads()
    # A row that carries no fund (a message, a fund itself) goes nowhere by default.
    for row in (Message(application_id=case_of_a.id, author_id=applicant.id), a):
        with pytest.raises(TypeError, match="carries no fund"):
            audit.record("t", row, actor=applicant)
    db.session.rollback()
    assert audit.heads() == before


def _staff_of(fund, make_user):
    def make(role, **fields):
        if role not in ("applicant", "partner"):
            fields["fund_id"] = fund.id
        return make_user(role, **fields)

    return make


def _world(fund, make_user, make_donor):
    """A fund with pools, rates and staff, built through the services."""
    return MoneyWorld(
        fund, _staff_of(fund, make_user), lambda name: make_donor(name, fund_id=fund.id)
    )


#: What happens to a case and its money, each recorded by the fund's services.
CASE_ACTIONS = {
    "application.started",
    "application.status",
    "message.posted",
    "grant.approved",
    "allocation.created",
    "plan.created",
    "payment.recorded",
    "payment.reversed",
    "pool.created",
    "contribution.recorded",
    "rate.recorded",
    "rate.confirmed",
}


def test_a_cases_events_land_in_its_funds_chain_and_the_rest_in_the_instances(
    app, client, runner, make_fund, make_user, make_donor
):
    """Fund B's staff, pools, cases and payments write to fund B's chain, whoever acts (a
    defender without a fund included); a fund created, a defender's sign-up and sign-in
    and a sign-in at no account write to the instance's; fund A, with no work, has none."""
    assert runner.invoke(args=["hrdfund", "create-fund", "Fund A"]).exit_code == 0
    a = db.session.execute(sa.select(Fund).where(Fund.name == "Fund A")).scalar_one()
    b = make_fund("Fund B")
    world = _world(b, make_user, make_donor)
    draft = start_application(world.applicant, "medical", b)
    post_message(world.grant("3000").application, world.applicant, "Thank you")
    grant = world.grant("2000", name="Defender Two")
    world.plan(grant, count=2)
    payment = pay(world, grant, "1000")
    reverse_disbursement(payment, world.finance, "Returned by the bank")
    db.session.commit()
    client.post("/login", data={"login": world.m1.login, "password": "not the password"})
    client.post("/login", data={"login": "nobody-at-all", "password": "not the password"})
    _signed_up, _login = sign_up(client)
    db.session.commit()

    actions = {
        chain: [(r.action, r.object_type, r.object_id) for r in _chain(chain)]
        for chain in (INSTANCE, a.id, b.id)
    }
    assert actions[a.id] == [], "nothing happened in fund A"
    in_b = {action for action, _type, _id in actions[b.id]}
    assert CASE_ACTIONS <= in_b
    assert ("application.started", "applications", draft.uid) in actions[b.id]
    assert ("auth.login_failed", "users", world.m1.uid) in actions[b.id]
    staff = {u.uid for u in (world.admin, world.m1, world.m2, world.finance, world.reviewer)}
    assert {i for action, _t, i in actions[b.id] if action == "auth.user_created"} == staff
    assert {action for action, _type, _id in actions[INSTANCE]} == {
        "fund.created",
        "auth.user_created",
        "auth.login",
        "auth.login_failed",
    }
    assert ("fund.created", "funds", str(a.id)) in actions[INSTANCE]
    assert ("auth.login_failed", None, None) in actions[INSTANCE]
    assert ("auth.user_created", "users", world.applicant.uid) in actions[INSTANCE]
    for chain in actions:
        assert audit.verify(fund=chain) == []


def test_the_network_writes_funds_to_the_instances_chain_and_settings_to_the_funds(
    app, make_fund, make_user
):
    """The network's administrator creating, suspending and resuming a fund writes to the
    instance's chain (the fund's first administrator, created with it, to the new fund's);
    a fund's administrator changing its settings writes to the fund's own."""
    from hrdfund.auth.services import hash_password
    from hrdfund.network import funds as network

    make_fund("Fund A")
    chief = make_user("network_admin")
    fund, admin = network.create_fund(chief, "Fund B", "b.admin", hash_password("x" * 16))
    network.suspend_fund(chief, fund)
    network.resume_fund(chief, fund)
    network.update_profile(admin, fund, True, ["medical"], ["KE"], ["en"])
    db.session.commit()
    instance = [(r.action, r.object_id) for r in _chain(None)]
    assert [a for a in instance if a[0].startswith("fund.")] == [
        ("fund.created", fund.uid),
        ("fund.suspended", fund.uid),
        ("fund.resumed", fund.uid),
    ]
    assert ("auth.user_created", chief.uid) in instance
    own = [(r.action, r.object_id) for r in _chain(fund)]
    assert own == [("auth.user_created", admin.uid), ("fund.profile_changed", fund.uid)]
    assert _chain(fund.id - 1) == [], "nothing of Fund B reached Fund A's chain"


def test_check_verifies_each_chain_and_check_fund_one(funds, runner):
    a, b = funds
    code, output = _check(runner)
    assert code == 0, output
    assert output.startswith("OK: ledger balanced, 3 audit chains verified.\n")
    assert "The instance's audit chain: verified up to entry 2." in output
    assert "The audit chain of fund 1 (Fund A): verified up to entry 4." in output
    assert "The audit chain of fund 2 (Fund B): verified up to entry 4." in output
    heads = " ".join(f"--head {c}:{s}:{h}" for c, (s, h) in audit.heads().items())
    assert f"Audit heads (record them elsewhere): {heads}\n" in output
    for ref in ("Fund A", str(a.id)):
        code, output = _check(runner, "--fund", ref)
        assert code == 0, output
        assert output.startswith("OK: ledger balanced, 1 audit chain verified.\n")
        assert "fund 1 (Fund A): verified up to entry 4." in output
        assert "Fund B" not in output and "instance" not in output
    code, output = _check(runner, "--fund", "Fund C")
    assert code == 1 and "no fund is named 'Fund C'" in output


def test_a_new_fund_without_entries_is_checked_too(funds, runner, make_fund):
    make_fund("Fund C")
    code, output = _check(runner)
    assert code == 0, output
    assert "The audit chain of fund 3 (Fund C): verified, no entries yet." in output
    assert "4 audit chains verified" in output


def _next_in(chain):
    return db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.max(AuditEvent.seq), 0) + 1).where(
            AuditEvent.chain == chain
        )
    )


def _head_hash(chain):
    return audit.head(chain)[1]


def _move_whole_chain(source, target):
    """Put the entries of chain ``source`` in place of those of chain ``target``."""
    _sql("DELETE FROM audit_events WHERE chain = :t", t=target)
    _sql("UPDATE audit_events SET chain = :t WHERE chain = :s", t=target, s=source)


#: Each way to break fund A's chain (1) or fund B's (2), and what `check` says of it.
TAMPERING = {
    "altered": (
        lambda: _sql("UPDATE audit_events SET object_id = 'a9' WHERE chain = 1 AND seq = 2"),
        1,
        "audit entry 2 was altered (its hash does not verify)",
    ),
    "deleted": (
        lambda: _sql("DELETE FROM audit_events WHERE chain = 1 AND seq = 2"),
        1,
        "audit entry 2 is missing (next entry is 3)",
    ),
    "moved-to-another-fund": (
        lambda: _sql(
            "UPDATE audit_events SET chain = 2, seq = :n WHERE chain = 1 AND seq = 4",
            n=_next_in(2),
        ),
        2,
        "audit entry 5 does not follow entry 4 (deleted, reordered or moved from another chain)",
    ),
    "moved-and-linked": (
        # Linked to the last entry of its new chain, it still names fund A in its hash.
        lambda: _sql(
            "UPDATE audit_events SET chain = 2, seq = :n, prev_hash = :p "
            "WHERE chain = 1 AND seq = 4",
            n=_next_in(2),
            p=_head_hash(2),
        ),
        2,
        "audit entry 5 was altered (its hash does not verify)",
    ),
    "moved-whole-to-another-fund": (
        lambda: _move_whole_chain(1, 2),
        2,
        "audit entry 1 was altered (its hash does not verify)",
    ),
    "moved-to-the-instance": (
        lambda: _sql(
            "UPDATE audit_events SET chain = 0, seq = :n, prev_hash = :p "
            "WHERE chain = 1 AND seq = 4",
            n=_next_in(0),
            p=_head_hash(0),
        ),
        0,
        "audit entry 3 was altered (its hash does not verify)",
    ),
}
NAMES = {
    0: "the instance's audit chain",
    1: "the audit chain of fund 1 (Fund A)",
    2: "the audit chain of fund 2 (Fund B)",
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_an_entry_moved_altered_or_deleted_is_named_by_check_fund_and_check(funds, runner, how):
    a, b = funds
    recorded = {chain: audit.head(chain) for chain in NAMES}
    tamper, broken, message = TAMPERING[how]
    tamper()
    line = f"BROKEN: {NAMES[broken]}: {message}"
    code, output = _check(runner)
    assert code == 1 and line in output, output
    # Every chain is verified, and each one that verifies says so.
    for chain in set(NAMES) - {broken}:
        emptied = how == "moved-whole-to-another-fund" and chain == a.id
        found = "verified, no entries yet" if emptied else "verified up to"
        assert f"{NAMES[chain][0].upper()}{NAMES[chain][1:]}: {found}" in output
    if broken:
        code, output = _check(runner, "--fund", str(broken))
        assert code == 1 and line in output, output
    # The chain an entry left looks whole on its own, up to the head recorded elsewhere.
    if how.startswith("moved"):
        assert _check(runner, "--fund", "Fund A")[0] == 0
        seq, digest = recorded[a.id]
        code, output = _check(runner, "--fund", "Fund A", "--head", f"{seq}:{digest}")
        assert code == 1, output
        assert f"BROKEN: {NAMES[1]}: audit chain ends at " in output
        assert f"before the recorded head {seq}: entries were cut" in output
        code, output = _check(runner, "--head", f"{a.id}:{seq}:{digest}")
        assert code == 1 and "entries were cut" in output


def test_heads_recorded_by_check_catch_a_cut_tail_in_any_chain(funds, runner):
    a, b = funds
    output = _check(runner)[1]
    printed = output.split("Audit heads (record them elsewhere): ")[1].split()
    assert printed[0] == "--head" and len(printed) == 6
    assert _check(runner, *printed)[0] == 0
    _sql("DELETE FROM audit_events WHERE chain = 2 AND seq = 4")
    assert _check(runner)[0] == 0, "without the heads a cut tail looks whole"
    code, output = _check(runner, *printed)
    assert code == 1
    assert (
        f"BROKEN: {NAMES[2]}: audit chain ends at 3, before the recorded head 4: entries were cut"
    ) in output
    assert "The audit chain of fund 1 (Fund A): verified up to entry 4." in output
    # A head of the instance's chain alone, as recorded before chains were per fund.
    seq, digest = audit.head(None)
    assert _check(runner, "--fund", "Fund A", "--head", f"{seq}:{digest}")[0] == 1
    code, output = _check(runner, "--fund", "Fund A", "--head", f"0:{seq}:{digest}")
    assert code == 1 and "--head names another" in output
    code, output = _check(runner, "--head", "five:abc")
    assert code == 1 and "--head takes CHAIN:SEQ:HASH" in output


@pytest.mark.parametrize("writers_per_chain", [2])
def test_concurrent_appends_to_several_chains_never_fork_one(app, make_fund, writers_per_chain):
    """Writers of two funds and of the instance at once: each chain is whole."""
    a, b = make_fund("Fund A"), make_fund("Fund B")
    chains = (a.id, b.id, None)
    db.session.commit()  # reading the ids began a transaction, which holds SQLite's lock
    errors = []
    start = threading.Barrier(len(chains) * writers_per_chain)

    def writer(chain, k):
        with app.app_context():
            try:
                start.wait()
                for i in range(8):
                    audit.record(
                        "test.concurrent", object_type="w", object_id=f"{k}-{i}", fund=chain
                    )
                    db.session.commit()
            except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=writer, args=(chain, f"{chain}-{k}"))
        for chain in chains
        for k in range(writers_per_chain)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for chain in chains:
        rows = _chain(chain)
        assert [r.seq for r in rows] == list(range(1, 8 * writers_per_chain + 1))
        assert {r.object_id.rsplit("-", 2)[0] for r in rows} == {str(chain)}
        assert audit.verify(fund=chain) == []


# -- PostgreSQL: one chain's lock, held, does not hold up another's ---------------------------

#: How long a transaction here waits for a lock before PostgreSQL refuses it (55P03).
WAIT = "3s"


def _without_waiting(work):
    """Run ``work`` in a transaction that waits at most WAIT for any lock, and commit."""
    db.session.execute(sa.text(f"SET LOCAL lock_timeout = '{WAIT}'"))
    value = work()
    db.session.commit()
    return value


def _refused_for_waiting(work):
    """``work`` and its commit (where its audit entries are appended) wait for a lock
    until the timeout and are refused; nothing is written."""
    db.session.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
    with pytest.raises(sa.exc.OperationalError) as refused:
        work()
        db.session.commit()
    db.session.rollback()
    return getattr(refused.value.orig, "sqlstate", None)


class Holder:
    """Another connection's open transaction, doing ``work`` (given the app) and waiting,
    uncommitted, until released; then rolled back."""

    def __init__(self, app, work):
        self.app, self.work = app, work
        self.started, self.release = threading.Event(), threading.Event()
        self.errors = []
        #: Commit the work once released (rolled back otherwise).
        self.commit_on_release = False
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        with self.app.app_context():
            try:
                self.work()
                self.started.set()
                self.release.wait(60)
                if self.commit_on_release:
                    db.session.commit()
            except Exception as exc:  # noqa: BLE001  (reported by the test)
                self.errors.append(exc)
                self.started.set()
            finally:
                db.session.rollback()
                db.session.remove()

    def __enter__(self):
        self.thread.start()
        assert self.started.wait(60) and self.errors == [], self.errors
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(60)


def _held_entry(a_id):
    """An entry appended to fund A's chain and not committed: a transaction at its commit."""
    audit.record("test.held", object_type="t", object_id="h", fund=a_id)
    audit.append()


#: What the other transaction holds fund A's chain with: an entry appended and not yet
#: committed, or the chain's lock alone.
HOLDING = {"an-entry": _held_entry, "the-lock": lambda a_id: audit.lock_chains(a_id)}


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("holding", list(HOLDING))
def test_fund_b_appends_while_fund_a_holds_its_chain_and_fund_a_waits(app, make_fund, holding):
    a, b = make_fund("Fund A"), make_fund("Fund B")
    a_id, b_id = a.id, b.id
    with Holder(app, lambda: HOLDING[holding](a_id)):
        event = _without_waiting(
            lambda: audit.record("test.free", object_type="t", object_id="b", fund=b_id)
        )
        assert event.chain == b_id
        event = _without_waiting(lambda: audit.record("test.free", object_type="t", object_id="i"))
        assert event.chain == INSTANCE
        # The same chain waits (else this test would pass on a lock that held nothing up).
        sqlstate = _refused_for_waiting(
            lambda: audit.record("test.waits", object_type="t", object_id="a", fund=a_id)
        )
        assert sqlstate == "55P03", "lock_not_available"
    assert [r.object_id for r in _chain(b_id)] == ["b"]
    assert _chain(a_id) == [], "the held entry was rolled back, the waiting one refused"
    # Once released, fund A appends again.
    _without_waiting(lambda: audit.record("test.after", object_type="t", object_id="a", fund=a_id))
    assert [r.seq for r in _chain(a_id)] == [1]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_two_funds_submit_and_approve_at_once_without_waiting_on_each_other(
    app, make_fund, make_user, make_donor
):
    """While a manager of fund A approves a grant (its transaction open, fund A's chain
    locked), fund B's defender sends a case and fund B's manager approves and pays one,
    none waiting for a lock; fund A's own defender waits."""
    a, b = make_fund("Fund A"), make_fund("Fund B")
    world_a, world_b = _world(a, make_user, make_donor), _world(b, make_user, make_donor)
    to_approve_a = world_a.recommended("Defender of A").id
    to_approve_b = world_b.recommended("Defender of B")
    draft_b = make_costed_case(
        b,
        status=ApplicationStatus.DRAFT,
        submitted_at=None,
        applicant_id=world_b.applicant.id,
        defender_work="Land rights",
        threat="Threats",
        details={"provider": "Clinic", "treatment": "Care", "link_to_threat": "Attack"},
    )
    db.session.commit()
    ids = {"m1": world_a.m1.id, "pool": world_a.eur.id}

    def approve_in_a():
        case = db.session.get(Application, to_approve_a)
        manager = db.session.get(User, ids["m1"])
        approve_with_recorded_rates(case, manager, Decimal(2500), [(ids["pool"], Decimal(2500))])
        audit.append()  # at its commit: fund A's chain is locked from here

    with Holder(app, approve_in_a):
        _without_waiting(lambda: submit_application(draft_b, world_b.applicant))
        grant = _without_waiting(
            lambda: approve_with_recorded_rates(
                to_approve_b, world_b.m1, Decimal(2500), [(world_b.eur.id, Decimal(2500))]
            )
        )
        payment = _without_waiting(lambda: pay(world_b, grant, "1000", instalment=None))
        sqlstate = _refused_for_waiting(lambda: start_application(world_a.applicant, "medical", a))
        assert sqlstate == "55P03", "fund A's own work waits for fund A's chain"
    assert draft_b.status == ApplicationStatus.SUBMITTED and payment.grant_id == grant.id
    assert audit.verify(fund=b) == [] and audit.verify(fund=a) == []
    assert {r.action for r in _chain(b)} >= {"application.status", "grant.approved"}
    assert "grant.approved" not in {r.action for r in _chain(a)}, "fund A's approval rolled back"


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_submission_holds_its_funds_chain_only_at_its_commit(app, make_fund, make_user):
    """While a defender's case is being sent (the case written, its audit entry recorded,
    nothing committed yet), another transaction appends to the same fund's chain and
    commits without waiting; the submission then commits after it, and the chain verifies
    with both entries in the order they were committed."""
    a = make_fund("Fund A")
    applicant = make_user("applicant")
    draft = make_costed_case(
        a,
        status=ApplicationStatus.DRAFT,
        submitted_at=None,
        applicant_id=applicant.id,
        defender_work="Land rights",
        threat="Threats",
        details={"provider": "Clinic", "treatment": "Care", "link_to_threat": "Attack"},
    )
    db.session.commit()
    ids = {"case": draft.id, "applicant": applicant.id, "fund": a.id}

    def send():
        case = db.session.get(Application, ids["case"])
        submit_application(case, db.session.get(User, ids["applicant"]))
        db.session.flush()

    holder = Holder(app, send)
    holder.commit_on_release = True
    with holder:
        _without_waiting(
            lambda: audit.record("test.beside", object_type="t", object_id="x", fund=ids["fund"])
        )
    assert holder.errors == []
    assert [r.action for r in _chain(ids["fund"])] == ["test.beside", "application.status"]
    assert audit.verify(fund=ids["fund"]) == []
    assert db.session.get(Application, ids["case"]).status == ApplicationStatus.SUBMITTED


def _waiting_for_a_lock():
    """How many advisory locks other connections wait for."""
    return db.session.scalar(
        sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    )


def _free(chain):
    """Whether another transaction may lock ``chain`` now, without waiting."""
    with db.engine.connect() as other:
        free = other.execute(
            sa.text("SELECT pg_try_advisory_xact_lock(:k, :c)"), {"k": audit.PG_LOCK_ID, "c": chain}
        ).scalar()
        other.rollback()
    return free


@pytest.mark.parametrize("backend", ["postgresql"])
def test_writing_to_two_chains_takes_their_locks_in_one_order(app, make_fund):
    """A transaction that recorded to fund B, then to fund A, takes A's lock first at its
    commit: while it waits for A (held by another at its commit) it holds nothing, so B
    stays free, and a transaction holding A that goes on to B never waits on it in a
    circle (PostgreSQL would otherwise cancel one as a deadlock)."""
    a_id, b_id = make_fund("Fund A").id, make_fund("Fund B").id
    db.session.commit()
    assert a_id < b_id
    outcome = {}

    def second():  # records to B and then A, as the other referral would
        with app.app_context():
            try:
                db.session.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
                audit.record("test.second", object_type="t", object_id="1", fund=b_id)
                audit.record("test.second", object_type="t", object_id="2", fund=a_id)
                db.session.commit()
                outcome["second"] = "written"
            except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
                outcome["second"] = exc
            finally:
                db.session.rollback()
                db.session.remove()

    with Holder(app, lambda: _held_entry(a_id)):
        thread = threading.Thread(target=second)
        thread.start()
        for _ in range(200):  # until the second waits for A's lock
            if _waiting_for_a_lock():
                break
            db.session.rollback()
            threading.Event().wait(0.05)
        db.session.rollback()
        assert _waiting_for_a_lock() == 1, "the second waits for fund A's chain"
        assert _free(b_id), "waiting for A, it holds B's lock not yet"
    thread.join(30)
    assert outcome == {"second": "written"}
    assert [r.object_id for r in _chain(a_id)] == ["2"], "the held entry was rolled back"
    assert [r.object_id for r in _chain(b_id)] == ["1"]
    assert audit.verify(fund=a_id) == [] and audit.verify(fund=b_id) == []
