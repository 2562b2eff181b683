"""The outbox sent from several places at once: each alert reaches its recipient once,
whatever number of senders run together against a slow mail server (on SQLite and
PostgreSQL); a claim left by a sender that died is taken again once it has expired; an
alert that can no longer be sent is settled and never keeps newer ones back; and a setting
that holds back every discreet notice is said where an admin looks."""

import asyncio
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hrdfund.alerts import outbox
from hrdfund.alerts.models import Alert, AlertKind
from hrdfund.cases import alerts
from hrdfund.core.columns import utcnow
from hrdfund.core.extensions import db
from tests.conftest import make_case
from tests.test_staff_alerts import Mailbox, serving_mail

#: How long the test's mail server takes over each message.
SLOW = 0.15


class SlowMailbox(Mailbox):
    """A mail server that takes its time over each message, so senders overlap."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        await asyncio.sleep(SLOW)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def mailbox(app):
    yield from serving_mail(app, SlowMailbox())


def _queue(fund, users, count):
    """``count`` urgent-case alerts for each of ``users``, each on a case of its own."""
    for _ in range(count):
        case = make_case(fund)
        outbox.notify_users(users, case, AlertKind.URGENT_CASE)
    db.session.commit()


def _at_once(app, senders):
    """Run ``senders`` send_pending at the same moment, each in its own app context (its
    own session and connection, as a server's thread or the cron command has)."""
    # End this thread's transaction: on SQLite it would hold the write lock.
    db.session.remove()
    start, outcomes = threading.Barrier(senders), []

    def send():
        with app.app_context():
            try:
                start.wait()
                outcomes.append(alerts.send_pending())
            except Exception as exc:  # noqa: BLE001  (any failure fails the test below)
                outcomes.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_senders_running_at_once_send_each_alert_once(app, fund, make_user, mailbox):
    """Three senders (two servers after their responses and the cron command, say) take
    the same outbox at once: every alert arrives, and none twice."""
    readers = [make_user("reviewer", contact=f"r{n}@fund.example") for n in range(2)]
    _queue(fund, readers, 4)
    outcomes = _at_once(app, 3)
    assert all(isinstance(sent, int) for sent in outcomes), outcomes
    assert sum(outcomes) == 8
    arrived = mailbox.wait_for(8)
    assert (
        sorted(rcpts[0] for rcpts, _body in arrived)
        == ["r0@fund.example"] * 4 + ["r1@fund.example"] * 4
    )
    links = [body.split("/applications/")[1].split()[0] for _rcpts, body in arrived]
    assert len(set(zip([r[0] for r, _b in arrived], links, strict=True))) == 8
    rows = db.session.execute(sa.select(Alert)).scalars().all()
    assert all(row.sent_at is not None and row.claimed_until is None for row in rows)
    # Nothing is left for a later run.
    assert alerts.send_pending() == 0
    assert len(mailbox.messages) == 8


def test_a_claim_left_by_a_sender_that_died_is_taken_again_after_it_expires(
    app, fund, make_user, mailbox, clock
):
    """A sender claims the alert, then dies before the mail server hears of it: no other
    run sends it while the claim holds; once it has expired, the next run sends it, once."""
    reader = make_user("reviewer", contact="rev@fund.example")
    start = utcnow().replace(microsecond=0)
    clock.at(start)
    _queue(fund, [reader], 1)
    outgoing, _seen = outbox._claim(alerts.may_receive, 500, 0)
    assert len(outgoing) == 1  # claimed and committed; the process dies here
    clock.at(start + outbox.CLAIM - timedelta(seconds=1))
    assert alerts.send_pending() == 0
    assert mailbox.messages == []
    clock.at(start + outbox.CLAIM)
    assert alerts.send_pending() == 1
    assert [rcpts for rcpts, _body in mailbox.wait_for(1)] == [["rev@fund.example"]]
    assert alerts.send_pending() == 0
    assert len(mailbox.messages) == 1


def test_a_sender_does_not_send_on_a_claim_about_to_end(app, fund, make_user, mailbox, clock):
    """A sender whose claim has nearly run out (its mail server slow) leaves what is left
    to the next run rather than risk sending what another run may take."""
    reader = make_user("reviewer", contact="rev@fund.example")
    start = utcnow().replace(microsecond=0)
    clock.at(start)
    _queue(fund, [reader], 2)
    outgoing, _seen = outbox._claim(alerts.may_receive, 500, 0)
    clock.at(start + outbox.CLAIM - timedelta(seconds=1))
    assert outbox._send(app.config, outgoing) == 0
    assert mailbox.messages == []
    rows = db.session.execute(sa.select(Alert)).scalars().all()
    assert [(row.sent_at, row.claimed_until) for row in rows] == [(None, None)] * 2
    assert alerts.send_pending() == 2


def test_an_alert_nobody_can_receive_is_not_queued(app, fund, make_user):
    """Staff without an email address, or whose account is closed, are passed over when
    an alert is queued: it would wait in the outbox for ever."""
    reachable = make_user("reviewer", contact="rev@fund.example")
    nowhere = make_user("reviewer")
    closed = make_user("reviewer", contact="gone@fund.example")
    closed.active = False
    case = make_case(fund)
    assert outbox.notify_users([reachable, nowhere, closed], case, AlertKind.URGENT_CASE) == 1
    db.session.commit()
    assert db.session.execute(sa.select(Alert.user_id)).scalars().all() == [reachable.id]


def test_alerts_that_can_no_longer_be_sent_never_keep_newer_ones_back(
    app, fund, make_user, mailbox
):
    """501 alerts whose recipient lost their email address since they were queued, then
    one that can go: the run sends that one, settles the 501, and no run reads them again."""
    lost = make_user("reviewer", contact="lost@fund.example")
    reader = make_user("reviewer", contact="rev@fund.example")
    case = make_case(fund)
    db.session.add_all(
        Alert(user_id=lost.id, application_id=case.id, kind=AlertKind.URGENT_CASE)
        for _ in range(501)
    )
    db.session.flush()
    db.session.add(Alert(user_id=reader.id, application_id=case.id, kind=AlertKind.URGENT_CASE))
    lost.contact = None
    db.session.commit()
    assert alerts.send_pending() == 1
    assert [rcpts for rcpts, _body in mailbox.wait_for(1)] == [["rev@fund.example"]]
    settled = sa.select(sa.func.count()).where(Alert.dropped_at.is_not(None))
    assert db.session.execute(settled).scalar() == 501
    assert db.session.execute(sa.select(sa.func.count()).where(outbox.pending())).scalar() == 0
    assert alerts.send_pending() == 0


def _held_back(result):
    return [line for line in result.output.splitlines() if "held back" in line]


def test_check_says_when_the_default_sender_holds_back_every_notice(app, fund, runner):
    """With the default sender (hrdfund@localhost), a discreet notice would name the product
    and is held back: `check` and `alerts` say so, and which setting to change."""
    app.config.update(MAIL_FROM="hrdfund@localhost", NOTICE_MAIL_FROM=None, SIGN_IN_URL=None)
    for command in ("check", "alerts"):
        result = runner.invoke(args=["hrdfund", command])
        assert result.exit_code == 0, result.output
        (line,) = _held_back(result)
        assert "HRDFUND_MAIL_FROM (hrdfund@localhost)" in line
        assert "set HRDFUND_NOTICE_MAIL_FROM" in line


def test_check_names_a_sign_in_address_that_names_the_fund(app, fund, runner):
    fund.name = "Quillfeather"
    db.session.commit()
    app.config.update(
        NOTICE_MAIL_FROM="notices@mail.example", SIGN_IN_URL="https://quillfeather.example/in"
    )
    (line,) = _held_back(runner.invoke(args=["hrdfund", "check"]))
    assert "set HRDFUND_SIGN_IN_URL" in line


def test_check_is_quiet_when_notices_can_go(app, fund, runner):
    app.config.update(NOTICE_MAIL_FROM="notices@mail.example", SIGN_IN_URL="https://door.example")
    result = runner.invoke(args=["hrdfund", "check"])
    assert result.exit_code == 0 and _held_back(result) == []
