"""Another lab sees nothing of this lab's training, attestations, roster or policy readers, and cannot touch them."""

from __future__ import annotations

from tests.compliance.people import days_ago, manager_of, working_technician


def test_another_lab_sees_nothing_of_this_labs_compliance_records(gateway, lab):
    tanaka = working_technician(lab)
    kyoto_trainings = lab.call("GET", "/api/v1/training").json()
    assert kyoto_trainings
    assert lab.call("GET", "/api/v1/roster").json()["rows"]

    osaka = manager_of(gateway, "Osaka Dental Lab")
    osaka_ids = {t["id"] for t in osaka.call("GET", "/api/v1/training").json()}
    assert osaka_ids.isdisjoint(t["id"] for t in kyoto_trainings)
    assert [p["username"] for p in osaka.call("GET", "/api/v1/training/due").json()] == ["boss"]
    assert osaka.call("GET", "/api/v1/attestations").json() == []
    roster = osaka.call("GET", "/api/v1/roster").json()
    assert (roster["lab"], roster["rows"], roster["no_longer_listed"]) == ("Osaka Dental Lab", [], [])
    readers = osaka.call("GET", "/api/v1/documents/security-policy/acknowledgements").json()
    assert [r["username"] for r in readers["acknowledged"] + readers["not_acknowledged"]] == ["boss"]
    csv = osaka.call("POST", "/api/v1/roster/exports", {"format": "csv"}).content.decode("utf-8-sig")
    assert "tanaka" not in csv and csv.count("\n") == 1

    course = {"held_on": days_ago(osaka, 1), "title": "研修", "provider": "協会", "topics": ["security-measures"],
              "duration_minutes": 60, "attendees": [tanaka.account_id]}  # fmt: skip
    assert osaka.call("POST", "/api/v1/training", course).status_code == 404
    confirm = osaka.call("POST", f"/api/v1/accounts/{tanaka.account_id}/attestations", {"kind": "screen-lock"})
    assert confirm.status_code == 404
    assert lab.call("GET", "/api/v1/training").json() == kyoto_trainings
