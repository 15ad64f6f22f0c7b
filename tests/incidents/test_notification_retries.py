"""Notifications that could not be sent stay pending and are retried by housekeeping on any replica, each attempt
taken by one sender only; after the last allowed attempt they are failed, visibly (G18)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from gateway.audit.models import AuditEvent
from gateway.incidents.outbox import retry_notifications
from tests.conftest import free_port
from tests.incidents.conftest import start_smtp_sink
from tests.incidents.test_notifications import incident, lost_device, publish_plan


@pytest.fixture
def closed_port() -> int:
    return free_port()


@pytest.fixture
def notify_settings(closed_port: int) -> dict:
    """SMTP configured on a port where nothing listens yet: the mail server is down."""
    return {"smtp_host": "127.0.0.1", "smtp_port": closed_port, "smtp_from": "dentgate@kyoto-lab.example",
            "smtp_starttls": False, "notification_max_attempts": 3}  # fmt: skip


def test_a_down_mail_server_leaves_the_mail_pending_and_a_later_retry_delivers_it(scene, closed_port):
    gateway = scene["lab"].gateway
    publish_plan(gateway)
    reported = lost_device(scene)
    [pending] = incident(scene, reported["id"])["notifications"]
    assert (pending["status"], pending["attempts"]) == ("pending", 1)
    assert "refused" in pending["last_error"].lower()

    sink = start_smtp_sink(closed_port)  # the mail server is back
    try:
        assert retry_notifications(gateway.backends) == 0  # not yet due: it waits before trying again
        gateway.clock.advance(minutes=2)
        assert retry_notifications(gateway.backends) == 1
    finally:
        sink.stop()
    assert [e.rcpt_tos for e in sink.messages] == [["inoue@kyoto-lab.example"]]
    [sent] = incident(scene, reported["id"])["notifications"]
    assert (sent["status"], sent["attempts"], sent["last_error"]) == ("sent", 2, None)


def test_a_mail_never_delivered_is_given_up_as_failed_and_shows_on_the_incident(scene):
    gateway = scene["lab"].gateway
    reported = lost_device(scene)
    for _ in range(2):
        gateway.clock.advance(minutes=5)
        assert retry_notifications(gateway.backends) == 0
    shown = incident(scene, reported["id"])
    assert {(n["status"], n["attempts"]) for n in shown["notifications"]} == {("failed", 3)}
    assert [e["kind"] for e in shown["timeline"]].count("notify-failed") == 2
    gateway.clock.advance(minutes=5)
    retry_notifications(gateway.backends)
    assert {n["attempts"] for n in incident(scene, reported["id"])["notifications"]} == {3}  # no more tries
    with gateway.backends.sessions() as session:
        failures = session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.action == "incident.notify", AuditEvent.outcome == "failure")
        )
    assert failures == 2


def test_two_replicas_retrying_at_once_send_each_mail_once(scene, closed_port):
    gateway = scene["lab"].gateway
    lost_device(scene)  # two contacts in the template; the mail server is down
    sink = start_smtp_sink(closed_port)
    sink.delay = 0.3  # a slow server keeps each send in flight while the other replica looks
    gateway.clock.advance(minutes=2)
    try:
        with ThreadPoolExecutor(2) as pool:
            sent = sum(pool.map(retry_notifications, [gateway.backends] * 2))  # separate connections
    finally:
        sink.stop()
    assert sent == 2
    assert sorted(e.rcpt_tos[0] for e in sink.messages) == ["manager@lab.example", "security@lab.example"]
