"""A technician sees what blocks uploading, and the upload gate refuses on the same rules (G3, G21)."""

from __future__ import annotations

from datetime import date

from gateway.compliance.gates import add_months
from gateway.identity.profiles import PROFILE_FIELDS
from tests.compliance.people import log_in_from_device, working_technician


def readiness(technician) -> dict:
    response = technician.call("GET", "/api/v1/me/readiness")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_compliant_technician_is_ready_and_sees_when_training_and_attestations_run_out(lab):
    technician = working_technician(lab)
    ready = readiness(technician)
    assert (ready["ready"], ready["failures"]) == (True, [])
    today = lab.gateway.clock().date()
    assert today < date.fromisoformat(ready["training_due_on"]) <= add_months(today, 12)
    assert {a["kind"]: a["status"] for a in ready["attestations"]} == {
        "privacy-filter": "current", "screen-lock": "current", "removable-media": "current",
    }  # fmt: skip


def test_training_older_than_the_validity_refuses_the_upload_naming_g21(lab):
    technician = working_technician(lab)
    lab.gateway.clock.advance(days=400)
    log_in_from_device(technician)
    blocked = readiness(technician)
    assert blocked["ready"] is False
    [training] = [f for f in blocked["failures"] if f["requirement"] == "G21"]
    assert training["rule"] == "training-expired" and "ran out" in training["message"]
    assert date.fromisoformat(blocked["training_due_on"]) < lab.gateway.clock().date()
    upload = technician.call("POST", "/api/v1/uploads", {"signed_manifest": {}})
    assert upload.status_code == 403 and upload.json()["code"] == "remote-work-refused"
    assert "G21" in [f["requirement"] for f in upload.json()["failures"]]


def test_a_profile_change_blocks_uploading_until_the_roster_is_exported(lab):
    technician = working_technician(lab)
    path = f"/api/v1/accounts/{technician.account_id}/profile"
    current = lab.call("GET", f"{path}/history").json()[0]
    moved = {**{f: current[f] for f in PROFILE_FIELDS}, "location_label": "実家", "location_address": "奈良市1-1",
             "prefecture": "奈良県"}  # fmt: skip
    assert lab.call("PUT", path, moved).status_code == 200
    blocked = readiness(technician)
    assert [(f["rule"], f["requirement"]) for f in blocked["failures"]] == [("roster-unfiled", "G3")]
    assert lab.call("POST", "/api/v1/roster/exports", {"format": "pdf"}).status_code == 200
    assert readiness(technician)["ready"] is True


def test_readiness_is_a_technicians_own(lab):
    assert lab.call("GET", "/api/v1/me/readiness").status_code == 403
