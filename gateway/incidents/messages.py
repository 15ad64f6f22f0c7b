"""What an incident notification says (G18), in Japanese and English: the type, the technician, the device, the
time, what the gateway already did, the plan's first steps and the incident id. Never the reporter's description
(it may name a patient) and never a secret: the description stays on the gateway, behind a login."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.incidents.plan import IncidentPlan
from gateway.japan import JST

FIRST_STEPS = 3
WEBHOOK_EVENT = "incident.reported"


@dataclass(frozen=True)
class IncidentFacts:
    """The facts a notification may carry; nothing typed by the reporter."""

    incident_id: uuid.UUID
    type: str
    lab: str
    technician: str
    reported_by: str
    reported_at: datetime
    device_id: uuid.UUID | None = None
    device_name: str | None = None
    contained_at: datetime | None = None
    device_revoked: bool = False
    sessions_ended: int = 0
    uploads_aborted: int = 0


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(JST):%Y-%m-%d %H:%M:%S} JST ({moment.astimezone(UTC):%H:%M:%S} UTC)"


def _device(facts: IncidentFacts, none: str) -> str:
    return none if facts.device_id is None else f"{facts.device_name} ({facts.device_id})"


def _containment_ja(facts: IncidentFacts) -> str:
    if facts.contained_at is None:
        return "未実施（管理者が封じ込めの要否を判断します）"
    done = "端末を失効、" if facts.device_revoked else ""
    return (
        f"{done}セッション {facts.sessions_ended} 件を終了、送信中のアップロード {facts.uploads_aborted} 件を中止"
        f"（{_when(facts.contained_at)}）"
    )


def _containment_en(facts: IncidentFacts) -> str:
    if facts.contained_at is None:
        return "not yet (the manager decides whether to contain)"
    done = "device revoked, " if facts.device_revoked else ""
    return (
        f"{done}{facts.sessions_ended} session(s) ended, {facts.uploads_aborted} pending upload(s) aborted "
        f"at {_when(facts.contained_at)}"
    )


def _steps(steps: tuple[str, ...]) -> list[str]:
    return [f"  {number}. {step}" for number, step in enumerate(steps[:FIRST_STEPS], start=1)]


def email_message(facts: IncidentFacts, plan: IncidentPlan) -> tuple[str, str]:
    """The e-mail's subject and plain-text body, Japanese first, then English."""
    procedure = plan.procedures[facts.type]
    subject = f"[DentGate] インシデント報告 / Incident reported: {procedure.title_en} ({facts.technician})"
    lines = [
        f"【DentGate インシデント報告】{facts.lab}",
        f"種別: {procedure.title_ja} ({facts.type})",
        f"技工士: {facts.technician}",
        f"端末: {_device(facts, '指定なし')}",
        f"報告日時: {_when(facts.reported_at)}（報告者: {facts.reported_by}）",
        f"封じ込め: {_containment_ja(facts)}",
        f"インシデントID: {facts.incident_id}",
        f"対応計画（{plan.version}）の初動:",
        *_steps(procedure.steps_ja),
        f"詳細はゲートウェイで確認してください: dentgate admin incident show {facts.incident_id}",
        "",
        "-----",
        "",
        f"[DentGate incident report] {facts.lab}",
        f"Type: {procedure.title_en} ({facts.type})",
        f"Technician: {facts.technician}",
        f"Device: {_device(facts, 'not named')}",
        f"Reported: {_when(facts.reported_at)} by {facts.reported_by}",
        f"Containment: {_containment_en(facts)}",
        f"Incident id: {facts.incident_id}",
        f"First steps of the response plan ({plan.version}):",
        *_steps(procedure.steps_en),
        f"Details on the gateway: dentgate admin incident show {facts.incident_id}",
    ]
    return subject, "\n".join(lines) + "\n"


def webhook_payload(facts: IncidentFacts, plan: IncidentPlan) -> dict[str, Any]:
    """The JSON a webhook receives: the same facts as fields, plus both texts for a chat channel."""
    procedure = plan.procedures[facts.type]
    subject, text = email_message(facts, plan)
    return {
        "event": WEBHOOK_EVENT,
        "incident": {
            "id": str(facts.incident_id),
            "type": facts.type,
            "title_ja": procedure.title_ja,
            "title_en": procedure.title_en,
            "lab": facts.lab,
            "technician": facts.technician,
            "reported_by": facts.reported_by,
            "reported_at": facts.reported_at.astimezone(UTC).isoformat(),
            "device": None if facts.device_id is None else {"id": str(facts.device_id), "name": facts.device_name},
            "contained_at": facts.contained_at.astimezone(UTC).isoformat() if facts.contained_at else None,
            "containment": {
                "device_revoked": facts.device_revoked,
                "sessions_ended": facts.sessions_ended,
                "uploads_aborted": facts.uploads_aborted,
            },
        },
        "plan": {
            "version": plan.version,
            "first_steps_ja": list(procedure.steps_ja[:FIRST_STEPS]),
            "first_steps_en": list(procedure.steps_en[:FIRST_STEPS]),
        },
        "summary": subject,
        "text": text,
    }
