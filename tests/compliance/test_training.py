"""Training of managers and technicians (G21): recorded with topics and attendees, and who is due again."""

from __future__ import annotations

from gateway.policy import default_policy
from tests.compliance.people import audit_events, days_ago, manager_of
from tests.gateway_fixtures import add_technician

TECHNICIAN_TOPICS = list(default_policy().training.required_topics("technician"))


def training(attendees: list[str], held_on: str, topics: list[str] | None = None, **changes: object) -> dict:
    return {
        "held_on": held_on, "title": "遠隔歯科技工の研修", "provider": "京都府歯科技工士会",
        "topics": topics if topics is not None else TECHNICIAN_TOPICS, "duration_minutes": 90,
        "attendees": attendees, **changes,
    }  # fmt: skip


def test_a_training_is_recorded_with_its_topics_and_attendees_and_audited(lab):
    tanaka, suzuki = add_technician(lab, "tanaka"), add_technician(lab, "suzuki")
    body = training([tanaka.account_id, suzuki.account_id], days_ago(lab, 3), topics=TECHNICIAN_TOPICS[::-1])
    recorded = lab.call("POST", "/api/v1/training", body)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["topics"] == TECHNICIAN_TOPICS  # curriculum order
    listed = lab.call("GET", "/api/v1/training").json()
    mine = next(t for t in listed if t["id"] == recorded.json()["id"])
    assert mine["held_on"] == days_ago(lab, 3) and mine["provider"] == "京都府歯科技工士会"
    assert sorted(a["username"] for a in mine["attendees"]) == ["suzuki", "tanaka"]
    [event] = [e for e in audit_events(lab, "training.record") if e["target"] == f"training:{mine['id']}"]
    assert sorted(a["username"] for a in event["details"]["attendees"]) == ["suzuki", "tanaka"]


def test_a_training_in_the_future_or_with_an_unknown_topic_or_nobody_is_refused(lab):
    tanaka = add_technician(lab)
    future = lab.call("POST", "/api/v1/training", training([tanaka.account_id], days_ago(lab, -3)))
    assert future.status_code == 422 and future.json()["code"] == "training-invalid"
    assert "in the future" in future.json()["detail"]
    unknown = lab.call("POST", "/api/v1/training", training([tanaka.account_id], days_ago(lab, 1), ["cooking"]))
    assert unknown.status_code == 422
    assert "'cooking'" in unknown.json()["detail"] and "security-measures" in unknown.json()["detail"]
    nobody = lab.call("POST", "/api/v1/training", training([], days_ago(lab, 1)))
    assert nobody.status_code == 422 and "attendee" in nobody.json()["detail"]
    no_time = lab.call("POST", "/api/v1/training", training([tanaka.account_id], days_ago(lab, 1), duration_minutes=0))
    assert no_time.status_code == 422 and "duration" in no_time.json()["detail"]
    recorded = lab.call("GET", "/api/v1/training").json()
    assert all(tanaka.account_id not in [a["id"] for a in t["attendees"]] for t in recorded)


def test_attendees_are_managers_and_technicians_of_this_lab(gateway, lab):
    auditor = lab.call("POST", "/api/v1/accounts", {"username": "inspector", "role": "auditor"}).json()["account"]
    refused = lab.call("POST", "/api/v1/training", training([auditor["id"]], days_ago(lab, 1)))
    assert refused.status_code == 422 and "auditor" in refused.json()["detail"]
    osaka = manager_of(gateway, "Osaka Dental Lab")
    stranger = add_technician(osaka, "yamada")
    foreign = lab.call("POST", "/api/v1/training", training([stranger.account_id], days_ago(lab, 1)))
    assert foreign.status_code == 404


def test_a_technician_cannot_record_training(lab):
    tanaka = add_technician(lab)
    assert tanaka.login().status_code == 200
    refused = tanaka.call("POST", "/api/v1/training", training([tanaka.account_id], days_ago(lab, 1)))
    assert refused.status_code == 403


def test_training_due_says_current_due_soon_overdue_or_never_with_the_date_and_missing_topics(lab):
    people = {name: add_technician(lab, name) for name in ("current", "soon", "overdue", "never", "partial")}
    held = {"current": 30, "soon": 350, "overdue": 400}
    for name, days in held.items():
        body = training([people[name].account_id], days_ago(lab, days))
        assert lab.call("POST", "/api/v1/training", body).status_code == 201
    partial = training([people["partial"].account_id], days_ago(lab, 5), topics=["security-measures"])
    assert lab.call("POST", "/api/v1/training", partial).status_code == 201
    due = {row["username"]: row for row in lab.call("GET", "/api/v1/training/due").json()}
    assert due["manager"]["status"] == "current" and due["manager"]["role"] == "manager"
    assert due["current"]["status"] == "current" and due["current"]["missing_topics"] == []
    assert due["soon"]["status"] == "due-soon" and due["soon"]["due_on"] is not None
    assert due["overdue"]["status"] == "overdue" and due["overdue"]["missing_topics"] == TECHNICIAN_TOPICS
    assert due["overdue"]["due_on"] < days_ago(lab, 0) < due["soon"]["due_on"] < due["current"]["due_on"]
    assert (due["never"]["status"], due["never"]["due_on"], due["never"]["last_trained_on"]) == ("never", None, None)
    assert due["partial"]["status"] == "overdue" and due["partial"]["missing_topics"] == ["technician-record"]
