"""Attestations (G5, G8, G15): a technician attests their measures, the manager confirms them; each runs out."""

from __future__ import annotations

from gateway.japan import japan_today
from tests.compliance.people import audit_events, days_ago, log_in_from_device, working_technician
from tests.gateway_fixtures import add_technician
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import verified_technician

REQUIRED = ["privacy-filter", "screen-lock", "removable-media"]


def confirm(manager, technician, kind: str, attested_on: str | None = None, **extra: object):
    body = {"kind": kind, **({"attested_on": attested_on} if attested_on else {}), **extra}
    return manager.call("POST", f"/api/v1/accounts/{technician.account_id}/attestations", body)


def statuses(manager, username: str) -> dict[str, dict]:
    rows = manager.call("GET", "/api/v1/attestations").json()
    return {row["kind"]: row for row in rows if row["username"] == username}


def test_a_technician_attests_their_own_measure_in_the_standard_words(lab):
    technician = working_technician(lab)
    attested = technician.call("POST", "/api/v1/me/attestations", {"kind": "privacy-filter"})
    assert attested.status_code == 201, attested.text
    body = attested.json()
    assert body["attested_on"] == japan_today(lab.gateway.clock()).isoformat()
    assert "覗き見防止フィルター" in body["statement"] and "privacy filter" in body["statement"]
    assert body["recorded_by"] == technician.account_id
    event = [e for e in audit_events(lab, "attestation.record") if e["actor_id"] == technician.account_id][-1]
    assert event["details"]["kind"] == "privacy-filter" and event["details"]["confirmed_by_manager"] is False


def test_a_manager_confirms_a_measure_for_a_technician_in_their_own_words(lab):
    technician = add_technician(lab)
    confirmed = confirm(lab, technician, "screen-lock", days_ago(lab, 10), statement="自宅訪問で確認済み")
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["statement"] == "自宅訪問で確認済み"
    assert confirmed.json()["recorded_by"] != technician.account_id
    [event] = [e for e in audit_events(lab, "attestation.record") if e["target"] == f"account:{technician.account_id}"]
    assert event["details"]["confirmed_by_manager"] is True and event["details"]["requirement"] == "G5"
    assert statuses(lab, "tanaka")["screen-lock"]["status"] == "current"


def test_attestations_run_out_after_the_policy_validity(lab):
    technician = add_technician(lab, "tanaka")
    add_technician(lab, "suzuki")
    for kind in REQUIRED:
        assert confirm(lab, technician, kind, days_ago(lab, 170)).status_code == 201
    before = statuses(lab, "tanaka")
    assert sorted(before) == sorted(REQUIRED) and {r["status"] for r in before.values()} == {"current"}
    assert before["privacy-filter"]["valid_until"] == days_ago(lab, -10)
    assert {r["status"] for r in statuses(lab, "suzuki").values()} == {"missing"}

    lab.gateway.clock.advance(days=20)
    assert lab.login().status_code == 200
    after = statuses(lab, "tanaka")
    assert {r["status"] for r in after.values()} == {"expired"}
    assert after["removable-media"]["requirement"] == "G15"


def test_a_future_or_stale_date_an_unknown_kind_or_a_manager_is_refused(lab):
    technician = add_technician(lab)
    future = confirm(lab, technician, "screen-lock", days_ago(lab, -3))
    assert future.status_code == 422 and "in the future" in future.json()["detail"]
    stale = confirm(lab, technician, "screen-lock", days_ago(lab, 200))
    assert stale.status_code == 422 and "already have expired" in stale.json()["detail"]
    unknown = confirm(lab, technician, "firewall")
    assert unknown.status_code == 422 and "privacy-filter" in unknown.json()["detail"]
    manager_id = lab.call("GET", "/api/v1/me").json()["account_id"]
    manager = lab.call("POST", f"/api/v1/accounts/{manager_id}/attestations", {"kind": "screen-lock"})
    assert manager.status_code == 422 and manager.json()["code"] == "attestation-invalid"
    assert statuses(lab, "tanaka")["screen-lock"]["status"] == "missing"


def test_personal_device_administration_is_attested_for_the_technicians_own_personal_device(lab):
    tanaka = working_technician(lab)
    kind = "personal-device-administration"
    no_device = tanaka.call("POST", "/api/v1/me/attestations", {"kind": kind})
    assert no_device.status_code == 422 and "give its id" in no_device.json()["detail"]
    lab_lent = tanaka.call("POST", "/api/v1/me/attestations", {"kind": kind, "device_id": tanaka.device_id})
    assert lab_lent.status_code == 422 and "not an approved personal device" in lab_lent.json()["detail"]

    suzuki = verified_technician(lab, "suzuki")
    suzuki.login()
    posture = compliant_windows(lab.gateway.clock())
    device_id = suzuki.call("POST", "/api/v1/devices", {"name": "home PC", "posture": posture}).json()["device"]["id"]
    approval = {"ownership": "personal", "manager_can_administer": True}
    assert lab.call("POST", f"/api/v1/devices/{device_id}/approve", approval).status_code == 200
    row = statuses(lab, "suzuki")[kind]
    assert (row["status"], row["device_id"], row["requirement"]) == ("missing", device_id, "G8")
    someone_elses = tanaka.call("POST", "/api/v1/me/attestations", {"kind": kind, "device_id": device_id})
    assert someone_elses.status_code == 404
    log_in_from_device(suzuki)
    blocked = suzuki.call("GET", "/api/v1/me/readiness").json()["failures"]
    assert [(f["rule"], f["requirement"]) for f in blocked] == [("attestation-missing", "G8")]
    assert confirm(lab, suzuki, kind, device_id=device_id).status_code == 201
    assert statuses(lab, "suzuki")[kind]["status"] == "current"
    assert suzuki.call("GET", "/api/v1/me/readiness").json()["ready"] is True


def test_a_technician_neither_confirms_for_others_nor_reads_the_lab_table(lab):
    tanaka = working_technician(lab)
    suzuki = add_technician(lab, "suzuki")
    assert confirm(tanaka, suzuki, "screen-lock").status_code == 403
    assert tanaka.call("GET", "/api/v1/attestations").status_code == 403
