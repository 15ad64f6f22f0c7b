"""Helpers for 歯科技工録 tests: uploads for a given case, a second technician, a complete draft, reading exports."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import sqlalchemy as sa

from gateway.audit.models import AuditEvent
from gateway.japan import JST
from gateway.transfer.manifest import parse_signed_manifest, sign_manifest
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import enrolled_device, verified_technician
from tests.transfer.scene import patch, sealed_design

CASE = "2026-1125-001"
PATIENT = "山田 花子"


def record_path(case: str = CASE, action: str = "") -> str:
    return f"/api/v1/records/{case}{action}"


def upload_case(scene: dict, case: str = CASE, process: str = "design") -> str:
    """The scene's technician sends a design for `case`; returns the design id."""
    manifest, ciphertext = sealed_design(scene, os.urandom(3_000))
    signed = parse_signed_manifest(json.dumps(manifest).encode())
    changed = signed.manifest.model_copy(update={"case_reference": case, "process": process})
    technician = scene["technician"]
    body = {"signed_manifest": sign_manifest(changed, technician.key).model_dump(mode="json")}
    opened = technician.call("POST", "/api/v1/uploads", body)
    assert opened.status_code == 201, opened.text
    done = patch(technician, opened.json()["upload_id"], 0, ciphertext)
    assert done.status_code == 200, done.text
    return done.json()["design_id"]


def second_technician(scene: dict, username: str = "sato") -> dict:
    """The scene with another compliant technician of the same lab, logged in from their own approved device."""
    lab = scene["lab"]
    technician = verified_technician(lab, username)
    device_id = enrolled_device(lab, technician)
    assert technician.login(posture=compliant_windows(lab.gateway.clock())).json()["scope"] == "full"
    return {**scene, "technician": technician, "device_id": device_id}


def complete_items(gateway) -> dict:
    """Every required item, dated consistently with a remote process done today (Japan time)."""
    today = gateway.clock().astimezone(JST).date()
    received = (today - timedelta(days=3)).isoformat()
    return {
        "model_received_on": received, "form_received_on": received, "patient_name": PATIENT,
        "site_and_design": "11 全部被覆冠", "method": "CAD/CAM 切削",
        "materials": [{"name": "ジルコニア", "product": "Katana HT", "lot": "ZR-2611"}],
        "process_record": "設計（遠隔）→ 切削 → 焼成 → 研磨", "final_inspection_on": today.isoformat(),
        "delivered_on": today.isoformat(),
    }  # fmt: skip


def audit_actions(gateway, action: str) -> list[AuditEvent]:
    with gateway.backends.sessions() as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))
