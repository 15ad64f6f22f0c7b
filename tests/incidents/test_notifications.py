"""The plan's contacts hear of an incident at once by e-mail, and the webhook gets a signed POST; what could
not be sent stays pending, is retried, and is given up visibly (G18)."""

from __future__ import annotations

import hashlib
import hmac
import json
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa

from gateway.compliance import documents
from gateway.db.engine import transaction
from gateway.identity.models import Account
from gateway.incidents.outbox import retry_notifications
from gateway.incidents.plan import plan_template
from tests.incidents.conftest import WEBHOOK_SECRET

PATIENT = "患者 山田花子"  # what a worried technician might type; it must never leave the gateway


def publish_plan(gateway, notify_email: str = "inoue@kyoto-lab.example") -> None:
    """The lab's own plan: one contact to notify by e-mail, one who is only listed."""
    body = plan_template().replace('version = "2026.11-1"', 'version = "2026.12-kyoto"')
    body = body.replace("manager@lab.example", notify_email).replace("03-0000-0000", "075-111-2222")
    listed_only = 'email = "it@kyoto-lab.example"\nnotify = false'
    body = body.replace('email = "security@lab.example"\nnotify = true', listed_only)
    assert listed_only in body
    with transaction(gateway.backends.sessions) as session:
        manager = session.scalar(sa.select(Account).where(Account.username == "manager"))
        documents.publish(session, manager, "incident-plan", body)


def lost_device(scene: dict):
    response = scene["technician"].call(
        "POST", "/api/v1/incidents", {"type": "lost-device", "description": f"bag with the {PATIENT} case notes"}
    )
    assert response.status_code == 201, response.text
    return response.json()


def incident(scene: dict, incident_id: str) -> dict:
    return scene["lab"].call("GET", f"/api/v1/incidents/{incident_id}").json()


def test_the_plans_contact_gets_a_bilingual_email_without_the_description(scene, smtp_sink):
    publish_plan(scene["lab"].gateway)
    reported = lost_device(scene)

    assert [envelope.rcpt_tos for envelope in smtp_sink.messages] == [["inoue@kyoto-lab.example"]]
    mail = message_from_bytes(smtp_sink.messages[0].content, policy=policy.default)
    text = mail.get_content()
    assert "Incident reported" in mail["Subject"] and "インシデント報告" in mail["Subject"]
    assert reported["id"] in text and "tanaka" in text and "CAD PC" in text
    assert "端末の紛失・盗難" in text and "Lost or stolen device" in text
    assert "直ちに報告する" in text and "Report at once" in text  # the plan's first steps, both languages
    assert "device revoked" in text and "端末を失効" in text
    assert PATIENT not in text and "bag with" not in text
    shown = incident(scene, reported["id"])
    assert [(n["channel"], n["status"]) for n in shown["notifications"]] == [("email", "sent"), ("webhook", "sent")]
    assert [e["kind"] for e in shown["timeline"]].count("notified") == 2


def test_the_webhook_gets_the_incident_signed_with_the_shared_secret(scene, webhook_sink):
    reported = lost_device(scene)

    [(headers, body)] = webhook_sink.requests
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-dentgate-signature-256"], expected)
    payload = json.loads(body)
    assert payload["event"] == "incident.reported"
    assert payload["incident"]["id"] == reported["id"]
    assert payload["incident"]["device"] == {"id": scene["device_id"], "name": "CAD PC"}
    assert payload["incident"]["containment"]["device_revoked"] is True
    assert payload["plan"]["first_steps_en"][0].startswith("Report at once")
    assert PATIENT not in body.decode() and WEBHOOK_SECRET not in body.decode()


@pytest.mark.parametrize("notify_settings", [{}])
def test_email_not_configured_is_said_on_the_incident(scene, notify_settings):
    reported = lost_device(scene)
    shown = incident(scene, reported["id"])["notifications"]
    assert {(n["channel"], n["status"]) for n in shown} == {("email", "unconfigured")}
    assert all("DENTGATE_SMTP_HOST" in n["last_error"] for n in shown)
    assert retry_notifications(scene["lab"].gateway.backends) == 0
