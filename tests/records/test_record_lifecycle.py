"""A case's 歯科技工録 (G20): started by the first upload, completed by the lab, finalized, amended in versions."""

from __future__ import annotations

import re
from datetime import datetime

from tests.records.cases import (
    CASE,
    PATIENT,
    audit_actions,
    complete_items,
    record_path,
    second_technician,
    upload_case,
)
from tests.transfer.scene import other_lab_scene


def test_an_upload_starts_the_cases_draft_with_its_remote_process(scene):
    design_id = upload_case(scene)
    manager = scene["lab"]
    case = manager.call("GET", record_path()).json()
    assert (case["current"]["version"], case["current"]["status"]) == (1, "draft")
    assert re.fullmatch(r"P-[A-Z2-7]{8}", case["patient_reference"])
    [process] = case["remote_processes"]
    assert process["design_id"] == design_id
    assert process["account_id"] == scene["technician"].account_id
    assert process["technician_name"] == "技工 tanaka"
    assert (process["device_id"], process["device_name"]) == (scene["device_id"], "CAD PC")
    assert (process["location_label"], process["location_address"]) == ("自宅", "京都府京都市左京区1-2-3")
    assert process["process"] == "design"
    assert datetime.fromisoformat(process["started_at"]) <= datetime.fromisoformat(process["ended_at"])
    assert case["current"]["missing"][:3] == ["model_received_on", "form_received_on", "patient_name"]

    second = upload_case(scene, process="design-revision")
    again = manager.call("GET", record_path()).json()
    assert len(again["versions"]) == 1 and again["patient_reference"] == case["patient_reference"]
    assert [p["design_id"] for p in again["remote_processes"]] == [design_id, second]


def test_finalize_refuses_an_incomplete_record_and_names_what_is_missing(scene):
    upload_case(scene)
    manager = scene["lab"]
    items = {"patient_name": PATIENT, "materials": [{"name": "ジルコニア", "product": "Katana HT"}]}
    assert manager.call("PATCH", record_path(), items).status_code == 200
    refused = manager.call("POST", record_path(action="/finalize"))
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "record-incomplete"
    assert body["missing"] == ["model_received_on", "form_received_on", "site_and_design", "method",
                               "material_product_and_lot", "final_inspection_on", "delivered_on"]  # fmt: skip
    assert "model received date" in body["detail"] and "product name and lot" in body["detail"]
    assert manager.call("GET", record_path()).json()["current"]["status"] == "draft"
    [failure] = audit_actions(manager.gateway, "record.finalize")
    assert (failure.outcome, failure.details["missing"][0]) == ("failure", "model_received_on")


def test_a_delivery_before_the_final_inspection_is_refused(scene):
    upload_case(scene)
    manager = scene["lab"]
    items = complete_items(manager.gateway) | {"delivered_on": "2020-01-01"}
    assert manager.call("PATCH", record_path(), items).status_code == 200
    refused = manager.call("POST", record_path(action="/finalize"))
    assert refused.status_code == 422
    assert "delivery date is before the final inspection date" in refused.json()["detail"]


def test_a_finalized_version_is_immutable_and_an_amendment_makes_version_2(scene):
    upload_case(scene)
    manager, technician = scene["lab"], scene["technician"]
    assert technician.call("PATCH", record_path(), complete_items(manager.gateway)).status_code == 200
    assert technician.call("POST", record_path(action="/finalize")).status_code == 403
    finalized = manager.call("POST", record_path(action="/finalize"))
    assert finalized.status_code == 200, finalized.text
    assert finalized.json()["status"] == "finalized"

    for editor in (manager, technician):
        refused = editor.call("PATCH", record_path(), {"method": "鋳造"})
        assert refused.status_code == 409
        assert refused.json()["code"] == "record-finalized"
        assert "is finalized and cannot be changed" in refused.json()["detail"]
    assert manager.call("POST", record_path(action="/amend"), {}).status_code == 422
    assert technician.call("POST", record_path(action="/amend"), {"reason": "lot"}).status_code == 403

    amended = manager.call("POST", record_path(action="/amend"), {"reason": "ロット番号の誤記"})
    assert amended.status_code == 201, amended.text
    assert (amended.json()["version"], amended.json()["status"]) == (2, "draft")
    assert amended.json()["materials"][0]["lot"] == "ZR-2611" and amended.json()["missing"] == []
    fixed = {"materials": [{"name": "ジルコニア", "product": "Katana HT", "lot": "ZR-2612"}]}
    assert manager.call("PATCH", record_path(), fixed).status_code == 200

    case = manager.call("GET", record_path()).json()
    first, second = case["versions"]
    assert (first["status"], first["materials"][0]["lot"]) == ("superseded", "ZR-2611")
    assert (second["status"], second["materials"][0]["lot"], second["amendment_reason"]) == (
        "draft", "ZR-2612", "ロット番号の誤記",
    )  # fmt: skip
    assert first["patient_name"] == second["patient_name"] == PATIENT
    assert manager.call("POST", record_path(action="/finalize")).json()["version"] == 2
    [amend] = audit_actions(manager.gateway, "record.amend")
    assert (amend.reason, amend.details["supersedes"], amend.details["version"]) == ("ロット番号の誤記", 1, 2)
    updates = audit_actions(manager.gateway, "record.update")
    assert updates[-1].details["fields"] == ["materials"]


def test_a_technician_edits_only_the_cases_they_worked_on(scene):
    upload_case(scene)
    other = second_technician(scene)
    upload_case(other, case="2026-1125-002")
    tanaka, sato = scene["technician"], other["technician"]

    refused = tanaka.call("PATCH", record_path("2026-1125-002"), {"method": "CAD/CAM 切削"})
    assert refused.status_code == 403
    assert tanaka.call("GET", record_path("2026-1125-002")).status_code == 403
    assert [r["case_reference"] for r in tanaka.call("GET", "/api/v1/records").json()] == [CASE]
    assert sato.call("PATCH", record_path("2026-1125-002"), {"method": "CAD/CAM 切削"}).status_code == 200
    assert sato.call("PATCH", record_path(), {"method": "鋳造"}).status_code == 403
    denials = [e for e in audit_actions(scene["lab"].gateway, "record.update") if e.outcome == "denied"]
    assert [(e.actor_id, e.details["case"]) for e in denials] == [
        (tanaka.account_id, "2026-1125-002"), (sato.account_id, CASE),
    ]  # fmt: skip
    assert len(scene["lab"].call("GET", "/api/v1/records").json()) == 2


def test_another_lab_sees_nothing_of_a_case_even_with_the_same_number(scene):
    upload_case(scene)
    kyoto = scene["lab"].call("GET", record_path()).json()
    nagoya = other_lab_scene(scene["lab"].gateway)
    boss = nagoya["lab"]
    assert boss.call("GET", "/api/v1/records").json() == []
    for method, path, body in (
        ("GET", record_path(), None),
        ("PATCH", record_path(), {"method": "鋳造"}),
        ("POST", record_path(action="/finalize"), None),
        ("GET", f"/api/v1/records/export?case={CASE}&format=csv", None),
    ):
        response = boss.call(method, path, body)
        assert (response.status_code, response.json()["code"]) == (404, "record-not-found")

    upload_case(nagoya)  # Nagoya's own case with the same instruction-form number
    theirs = boss.call("GET", record_path()).json()
    assert theirs["patient_reference"] != kyoto["patient_reference"]
    assert [p["technician_name"] for p in theirs["remote_processes"]] == ["技工 suzuki"]
    assert len(scene["lab"].call("GET", record_path()).json()["remote_processes"]) == 1


def test_a_remote_process_after_finalizing_does_not_change_the_finalized_version(scene):
    first = upload_case(scene)
    manager = scene["lab"]
    manager.call("PATCH", record_path(), complete_items(manager.gateway))
    assert manager.call("POST", record_path(action="/finalize")).status_code == 200
    manager.gateway.clock.advance(minutes=5)
    later = upload_case(scene, process="remake")
    case = manager.call("GET", record_path()).json()
    assert case["current"]["remote_processes"] == [first]
    assert [p["design_id"] for p in case["remote_processes"]] == [first, later]
    amended = manager.call("POST", record_path(action="/amend"), {"reason": "再製作の工程を追加"}).json()
    assert amended["remote_processes"] == [first, later]
