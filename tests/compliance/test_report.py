"""The compliance report (G1–G21): a lab in order shows 21 met; each lapse flips exactly its G-id and names who is
behind it; another lab's gaps never show; auditors read it, technicians cannot; JSON, HTML (escaped) and PDF."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from importlib import resources

import pytest
import sqlalchemy as sa

from gateway.compliance import documents
from gateway.db.engine import transaction
from gateway.identity.models import Account
from gateway.incidents.plan import plan_template
from tests.compliance.people import audit_events, log_in_from_device, manager_of
from tests.compliance_setup import make_compliant, profile_for
from tests.gateway_fixtures import Person
from tests.identity.posture_samples import compliant_windows
from tests.identity.test_devices_and_stations import enrolled_device, verified_technician
from tests.pdf_text import pdf_text
from tests.transfer.scene import build_scene

FULL_NAME = profile_for("tanaka")["full_name"]


def publish(lab: Person, kind: str, body: str) -> None:
    with transaction(lab.gateway.backends.sessions) as session:
        manager = session.scalar(sa.select(Account).where(Account.username == lab.username))
        documents.publish(session, manager, kind, body)


def technician_in_order(lab: Person, username: str = "tanaka", plan: bool = True, **backdated) -> Person:
    """`lab` (trained manager, policy published) with its incident plan and a compliant technician logged in from an
    approved device; `trained_on` / `attested_on` backdate the technician's training and attestations."""
    if plan:
        publish(lab, "incident-plan", plan_template())
    technician = verified_technician(lab, username, compliant=False)
    make_compliant(lab, technician, **backdated)
    technician.device_id = enrolled_device(lab, technician)  # type: ignore[attr-defined]
    log_in_from_device(technician)
    return technician


def add_person(lab: Person, username: str, role: str) -> Person:
    created = lab.call("POST", "/api/v1/accounts", {"username": username, "role": role})
    assert created.status_code == 201, created.text
    person = Person(lab.gateway, lab.lab, username)
    person.account_id = created.json()["account"]["id"]  # type: ignore[attr-defined]
    person.activate(created.json()["activation_secret"])
    assert person.login().status_code == 200
    return person


def report(person: Person, lang: str = "en") -> dict:
    response = person.call("GET", f"/api/v1/compliance/report?format=json&lang={lang}")
    assert response.status_code == 200, response.text
    return response.json()


def flagged(body: dict) -> dict[str, dict]:
    return {row["id"]: row for row in body["rows"] if row["status"] != "met"}


def days_ago(lab: Person, days: int) -> date:
    return lab.gateway.clock().date() - timedelta(days=days)


def test_a_lab_in_order_meets_all_21_requirements_with_live_evidence(lab):
    publish(lab, "incident-plan", plan_template())
    build_scene(lab)  # a station, the lab's archive key, tanaka compliant on an approved device
    body = report(lab)
    assert [row["id"] for row in body["rows"]] == [f"G{n}" for n in range(1, 22)]
    assert flagged(body) == {}
    assert body["summary"] == {"met": 21, "attention": 0, "not-met": 0}
    rows = {row["id"]: row for row in body["rows"]}
    assert rows["G1"]["evidence"]["profiles_complete"] == {"count": 1, "of": 1}
    assert rows["G2"]["evidence"]["stations_active"] == 1
    assert rows["G6"]["evidence"]["accounts_with_mfa"] == {"count": 2, "of": 2}
    assert rows["G9"]["evidence"]["devices_in_order"] == {"count": 1, "of": 1}
    assert rows["G16"]["evidence"]["policy_version"] == body["policy_version"]
    assert rows["G16"]["evidence"]["policy_acknowledged"] == {"count": 1, "of": 1}
    assert rows["G17"]["evidence"]["plan_version"] is not None
    assert rows["G19"]["evidence"]["chain_verified"] is True
    assert rows["G21"]["evidence"]["people_trained"] == {"count": 2, "of": 2}
    assert rows["G4"]["evidence"]["measures_met"] == {"count": 15, "of": 15}
    ledger = rows["G8"]["evidence"]["ledger"]
    assert [(d["device"], d["serial_number"], d["ownership"]) for d in ledger] == [("CAD PC", "PF3ABCDE", "lab-lent")]
    assert body["lab"]["name"] == "Kyoto Dental Lab" and body["lang"] == "en"


def _posture(**changes: object) -> Callable[[Person], str]:
    def lapse(lab: Person) -> str:
        tanaka = technician_in_order(lab)
        posture = compliant_windows(lab.gateway.clock(), **changes)
        assert tanaka.call("POST", "/api/v1/devices/posture", {"posture": posture}).status_code == 200
        return "tanaka"

    return lapse


def _backdated(**backdated: object) -> Callable[[Person], str]:
    def lapse(lab: Person) -> str:
        technician_in_order(lab, **{key: value(lab) for key, value in backdated.items()})  # type: ignore[operator]
        return "tanaka"

    return lapse


def later(lab: Person, days: int) -> None:
    """The gateway's clock moves on (an attestation already expired is refused, so it expires in time)."""
    lab.gateway.clock.advance(days=days)
    assert lab.login().status_code == 200


def _privacy_filter_expired(lab: Person) -> str:
    technician_in_order(lab, attested_on={"privacy-filter": days_ago(lab, 175)})
    later(lab, 10)
    return "tanaka"


def _moved(lab: Person) -> str:
    tanaka = technician_in_order(lab)
    moved = {**profile_for("tanaka"), "location_label": "実家", "location_address": "京都府宇治市5-6"}
    assert lab.call("PUT", f"/api/v1/accounts/{tanaka.account_id}/profile", moved).status_code == 200
    return "tanaka"


def _unverified_newcomer(lab: Person) -> str:
    technician_in_order(lab)
    add_person(lab, "sato", "technician")
    return "sato"


def _reset_auditor(lab: Person) -> str:
    technician_in_order(lab)
    kato = add_person(lab, "kato", "auditor")
    assert lab.call("POST", f"/api/v1/accounts/{kato.account_id}/reset").status_code == 200
    return "kato"


def _new_policy_version(lab: Person) -> str:
    technician_in_order(lab)
    shipped = resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8")
    publish(lab, "security-policy", shipped.replace('version = "', 'version = "lab-', 1))
    return "tanaka"


def _no_plan(lab: Person) -> str:
    technician_in_order(lab, plan=False)
    return "Kyoto Dental Lab"


LAPSES = [
    ("G3", "not-met", "roster-unfiled", _moved),
    ("G5", "not-met", "attestation-expired", _privacy_filter_expired),
    ("G5", "attention", "attestation-expiring",
     _backdated(attested_on=lambda lab: {"privacy-filter": days_ago(lab, 165)})),
    ("G6", "attention", "identity-not-verified", _unverified_newcomer),
    ("G7", "not-met", "open-wifi",
     _posture(network={"kind": "wifi", "wifi_ssid": "Cafe", "wifi_security": "open", "wifi_open": True})),
    ("G9", "not-met", "bluetooth", _posture(bluetooth_enabled=True)),
    ("G10", "attention", "password-change-pending", _reset_auditor),
    ("G15", "not-met", "disk-encryption", _posture(disk_encryption=False)),
    ("G16", "not-met", "policy-not-acknowledged", _new_policy_version),
    ("G17", "not-met", "plan-not-published", _no_plan),
    ("G21", "not-met", "training-expired", _backdated(trained_on=lambda lab: days_ago(lab, 400))),
    ("G21", "attention", "training-due", _backdated(trained_on=lambda lab: days_ago(lab, 350))),
]  # fmt: skip


@pytest.mark.parametrize(("gid", "status", "rule", "lapse"), LAPSES, ids=[f"{g}-{r}" for g, _, r, _ in LAPSES])
def test_each_lapse_flips_exactly_its_requirement_and_names_who(lab, gid, status, rule, lapse):
    who = lapse(lab)
    body = report(lab)
    assert {g: row["status"] for g, row in flagged(body).items()} == {gid: status}
    subjects = flagged(body)[gid]["subjects"]
    assert [(s["status"], s["rule"]) for s in subjects] == [(status, rule)]
    assert who in subjects[0]["label"]
    if who == "tanaka":
        assert subjects[0]["username"] == "tanaka" and subjects[0]["full_name"] == FULL_NAME
        assert FULL_NAME in subjects[0]["label"]


def test_the_guideline_scenario_flips_exactly_g3_g5_g9_g21_naming_the_technician_and_the_device(lab):
    tanaka = technician_in_order(lab, trained_on=days_ago(lab, 400), attested_on={"privacy-filter": days_ago(lab, 175)})
    later(lab, 10)
    moved = {**profile_for("tanaka"), "location_label": "実家", "location_address": "京都府宇治市5-6"}
    assert lab.call("PUT", f"/api/v1/accounts/{tanaka.account_id}/profile", moved).status_code == 200
    refused = tanaka.login(posture=compliant_windows(lab.gateway.clock(), bluetooth_enabled=True))
    assert refused.status_code == 403
    body = report(lab)
    rows = flagged(body)
    assert {g: row["status"] for g, row in rows.items()} == dict.fromkeys(("G3", "G5", "G9", "G21"), "not-met")
    for gid in ("G3", "G5", "G21"):
        assert [(s["kind"], s["username"], s["full_name"]) for s in rows[gid]["subjects"]] == [
            ("person", "tanaka", FULL_NAME)
        ]
    assert [(s["kind"], s["id"], s["device_name"]) for s in rows["G9"]["subjects"]] == [
        ("device", tanaka.device_id, "CAD PC")  # type: ignore[attr-defined]
    ]
    assert body["rows"][3]["evidence"]["measures_not_met"] == ["G5", "G9"]  # G4 summarises, keeps its own status


def test_the_other_labs_gaps_never_appear(lab):
    tanaka = technician_in_order(lab)
    nagoya = manager_of(lab.gateway, "Nagoya Dental Lab")
    suzuki = technician_in_order(nagoya, "suzuki", plan=False, trained_on=days_ago(lab, 400))
    kyoto = report(lab)
    assert flagged(kyoto) == {}
    assert kyoto["rows"][0]["evidence"]["remote_technicians"] == 1
    seen = json.dumps(kyoto, ensure_ascii=False)
    assert "suzuki" not in seen and suzuki.account_id not in seen and suzuki.device_id not in seen
    other = report(nagoya)
    assert set(flagged(other)) == {"G17", "G21"}
    assert [s["username"] for s in flagged(other)["G21"]["subjects"]] == ["suzuki"]
    seen = json.dumps(other, ensure_ascii=False)  # (the sample posture's device user is called tanaka)
    assert FULL_NAME not in seen and tanaka.account_id not in seen and tanaka.device_id not in seen


def test_an_auditor_reads_the_report_a_technician_cannot_and_each_reading_is_audited(lab):
    tanaka = technician_in_order(lab)
    auditor = add_person(lab, "kato", "auditor")
    assert report(auditor)["summary"]["met"] == 21
    refused = tanaka.call("GET", "/api/v1/compliance/report?format=json")
    assert refused.status_code == 403
    readings = audit_events(lab, "compliance.report")
    assert [(e["actor_id"], e["details"]["format"], e["details"]["summary"]["met"]) for e in readings] == [
        (auditor.account_id, "json", 21)  # type: ignore[attr-defined]
    ]


def test_an_open_incident_needs_attention_and_a_contained_one_shows_its_time_to_containment(lab):
    tanaka = technician_in_order(lab)
    suspicious = {"type": "suspicious", "description": "an e-mail asked for my password"}
    assert tanaka.call("POST", "/api/v1/incidents", suspicious).status_code == 201
    rows = flagged(report(lab))
    assert set(rows) == {"G18"} and rows["G18"]["status"] == "attention"
    open_ones = [s for s in rows["G18"]["subjects"] if s["rule"] == "incident-open"]
    assert [(s["username"], s["full_name"]) for s in open_ones] == [("tanaka", FULL_NAME)]
    lost = {"type": "lost-device", "description": "left on the train", "technician": "tanaka"}
    assert lab.call("POST", "/api/v1/incidents", lost).status_code == 201
    g18 = {row["id"]: row for row in report(lab)["rows"]}["G18"]
    assert g18["evidence"]["incidents"] == 2 and g18["evidence"]["incidents_open"] == 1
    assert g18["evidence"]["longest_minutes_to_containment"] == 0


def test_the_pdf_is_in_japanese_and_names_the_technician_behind_a_gap(lab):
    technician_in_order(lab, trained_on=days_ago(lab, 400))
    response = lab.call("GET", "/api/v1/compliance/report?format=pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert "attachment" in response.headers["content-disposition"]
    text = pdf_text(response.content)
    for words in ("コンプライアンス報告書", "要件", "状況", "根拠", "対象", "不適合", "適合", "G21", "tanaka"):
        assert words in text, words
    assert "".join(FULL_NAME.split()) in text


def test_the_html_escapes_a_hostile_name_and_colours_each_status(lab):
    tanaka = technician_in_order(lab, trained_on=days_ago(lab, 400))
    hostile = {**profile_for("tanaka"), "full_name": "<script>alert('x')</script>"}
    assert lab.call("PUT", f"/api/v1/accounts/{tanaka.account_id}/profile", hostile).status_code == 200
    response = lab.call("GET", "/api/v1/compliance/report?format=html")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "コンプライアンス報告書" in html and 'lang="ja"' in html
    assert 'class="status status-not-met">不適合' in html and 'class="status status-met">適合' in html
    english = lab.call("GET", "/api/v1/compliance/report?format=html&lang=en").text
    assert "Compliance report" in english and "not met" in english


def test_a_tampered_audit_chain_is_not_met(lab):
    technician_in_order(lab)
    with transaction(lab.gateway.backends.sessions) as session:
        session.execute(sa.text("UPDATE audit_events SET reason = 'rewritten' WHERE seq = 2"))
    rows = flagged(report(lab))
    assert set(rows) == {"G19"}
    assert [s["rule"] for s in rows["G19"]["subjects"]] == ["chain-broken"]
