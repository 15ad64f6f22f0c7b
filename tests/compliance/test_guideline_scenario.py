"""The guideline end to end: a lab with one compliant technician and one who is not. The compliant one uploads;
the other is refused with every reason named, and the compliance report marks exactly those G-ids and names
the technician (G3, G5, G9, G21)."""

from __future__ import annotations

import json
from datetime import timedelta

from gateway.compliance import documents
from gateway.db.engine import transaction
from gateway.identity.models import Account
from gateway.incidents.plan import plan_template
from tests.compliance_setup import make_compliant, profile_for
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import enrolled_device, verified_technician
from tests.transfer.scene import build_scene, patch, sealed_design

PLAINTEXT = b"solid crown\n" + b"facet normal 0 0 1\n" * 200


def _publish_plan(lab) -> None:
    with transaction(lab.gateway.backends.sessions) as session:
        manager = session.query(Account).filter_by(username=lab.username).one()
        documents.publish(session, manager, "incident-plan", plan_template())


def _start_upload(scene: dict, technician, device_id: str):
    manifest, ciphertext = sealed_design({**scene, "technician": technician, "device_id": device_id}, PLAINTEXT)
    return technician.call("POST", "/api/v1/uploads", {"signed_manifest": manifest}), ciphertext


def _lapsed_technician(lab) -> tuple[object, str]:
    """suzuki: training and privacy-filter attestation that run out within days, and a new remote location not
    yet on the roster filed with the prefecture."""
    today = lab.gateway.clock().date()
    technician = verified_technician(lab, "suzuki", compliant=False)
    make_compliant(lab, technician, trained_on=today - timedelta(days=360),
                   attested_on={"privacy-filter": today - timedelta(days=175)})  # fmt: skip
    device_id = enrolled_device(lab, technician)
    moved = {**profile_for("suzuki"), "location_label": "サテライトオフィス", "location_address": "京都府宇治市5-6"}
    assert lab.call("PUT", f"/api/v1/accounts/{technician.account_id}/profile", moved).status_code == 200
    return technician, device_id


def test_the_compliant_technician_uploads_and_the_lapsed_one_is_refused_with_every_reason(lab):
    scene = build_scene(lab)  # tanaka: fully compliant, with a station and the lab's archive key
    _publish_plan(lab)
    suzuki, device_id = _lapsed_technician(lab)
    clock = lab.gateway.clock
    clock.advance(days=10)  # suzuki's training (12 months) and privacy-filter attestation (180 days) run out
    for person in (lab, scene["technician"]):
        assert person.login(posture=compliant_windows(clock()) if person is not lab else None).status_code == 200

    manifest, ciphertext = sealed_design(scene, PLAINTEXT)
    started = scene["technician"].call("POST", "/api/v1/uploads", {"signed_manifest": manifest})
    assert started.status_code == 201, started.text
    assert patch(scene["technician"], started.json()["upload_id"], 0, ciphertext).status_code == 200

    # Logged in from a compliant posture, the lapsed technician still may not upload: three reasons.
    assert suzuki.login(posture=compliant_windows(clock())).status_code == 200
    started, _ = _start_upload(scene, suzuki, device_id)
    assert started.status_code == 403
    assert started.json()["code"] == "remote-work-refused"
    assert {f["requirement"] for f in started.json()["failures"]} == {"G3", "G5", "G21"}

    # The device then reports Bluetooth on: four reasons, each named.
    bluetooth = compliant_windows(clock(), bluetooth_enabled=True)
    assert suzuki.call("POST", "/api/v1/devices/posture", {"posture": bluetooth}).status_code == 200
    started, _ = _start_upload(scene, suzuki, device_id)
    assert started.status_code == 403
    failures = started.json()["failures"]
    assert {f["requirement"] for f in failures} == {"G3", "G5", "G9", "G21"}
    assert {f["rule"] for f in failures} >= {"roster-unfiled", "attestation-expired", "training-expired"}
    detail = started.json()["detail"]
    for words in ("luetooth", "privacy-filter", "roster", "training"):
        assert words in detail

    # Logging in again from that device is refused with the same reasons at once.
    again = suzuki.login(posture=bluetooth)
    assert again.status_code == 403
    assert {f["requirement"] for f in again.json()["failures"]} == {"G3", "G5", "G9", "G21"}

    report = lab.call("GET", "/api/v1/compliance/report?format=json&lang=en")
    assert report.status_code == 200, report.text
    rows = {row["id"]: row for row in report.json()["rows"]}
    assert len(rows) == 21
    flagged = {gid for gid, row in rows.items() if row["status"] != "met"}
    assert flagged == {"G3", "G5", "G9", "G21"}, {g: rows[g] for g in flagged}
    for gid in flagged:
        named = json.dumps(rows[gid]["subjects"], ensure_ascii=False)
        assert "suzuki" in named and "tanaka" not in named, (gid, named)
