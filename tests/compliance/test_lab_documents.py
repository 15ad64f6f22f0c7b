"""The lab's security policy (G16) and incident plan (G17): the version in force, publishing, history, and who
has acknowledged it."""

from __future__ import annotations

from gateway.compliance.acknowledgements import template_text
from gateway.policy import default_policy
from tests.compliance.people import manager_of, working_technician

POLICY = "/api/v1/documents/security-policy"
SHIPPED = default_policy().version  # the version the test labs publish (tests/compliance_setup.py)


def next_version(text: str, version: str) -> str:
    return text.replace(f'version = "{SHIPPED}"', f'version = "{version}"', 1)


def test_members_read_the_policy_in_force(lab):
    found = lab.call("GET", POLICY).json()
    assert found["published"] is True and found["template"] is None
    assert found["document"]["version"] == SHIPPED and "[training]" in found["document"]["body"]
    assert f"{SHIPPED} is in force" in found["message"]


def test_a_lab_without_a_policy_is_told_so_and_shown_the_shipped_default_to_start_from(gateway):
    boss = manager_of(gateway, "Nara Dental Lab", ready=False)
    found = boss.call("GET", POLICY).json()
    assert (found["published"], found["document"]) == (False, None)
    assert "published no security-policy" in found["message"]
    assert found["template"] == template_text("security-policy") and found["template_version"] == SHIPPED
    assert boss.call("GET", f"{POLICY}/acknowledgements").status_code == 404
    plan = boss.call("GET", "/api/v1/documents/incident-plan").json()
    assert plan["published"] is False and plan["template"] == template_text("incident-plan")


def test_an_invalid_policy_is_refused_naming_the_bad_setting(lab):
    text = next_version(template_text("security-policy"), "2026.12-1")
    bad = text.replace("validity_months = 12", "validity_months = 0")
    refused = lab.call("POST", POLICY, {"body": bad})
    assert refused.status_code == 422 and refused.json()["code"] == "document-invalid"
    assert "training.validity_months: Input should be greater than or equal to 1" in refused.json()["detail"]
    typo = lab.call("POST", POLICY, {"body": text.replace("require_firewall", "require_firewal")})
    assert "posture.require_firewal" in typo.json()["detail"]
    not_toml = lab.call("POST", POLICY, {"body": "version = "})
    assert not_toml.status_code == 422
    assert lab.call("GET", POLICY).json()["document"]["version"] == SHIPPED


def test_a_new_version_is_in_force_and_must_be_acknowledged_again(lab):
    technician = working_technician(lab)
    readers = lab.call("GET", f"{POLICY}/acknowledgements").json()
    assert "tanaka" in [r["username"] for r in readers["acknowledged"]]
    published = lab.call("POST", POLICY, {"body": next_version(template_text("security-policy"), "2026.12-1")})
    assert published.status_code == 201, published.text
    assert [d["version"] for d in lab.call("GET", f"{POLICY}/history").json()] == ["2026.12-1", SHIPPED]
    again = lab.call("POST", POLICY, {"body": next_version(template_text("security-policy"), "2026.12-1")})
    assert again.status_code == 409

    readers = lab.call("GET", f"{POLICY}/acknowledgements").json()
    assert readers["version"] == "2026.12-1"
    assert sorted(r["username"] for r in readers["not_acknowledged"]) == ["manager", "tanaka"]
    old = technician.call("POST", f"{POLICY}/acknowledgements", {"version": SHIPPED})
    assert old.status_code == 409 and "'2026.12-1'" in old.json()["detail"]
    done = technician.call("POST", f"{POLICY}/acknowledgements", {"version": "2026.12-1"})
    assert done.status_code == 201, done.text
    readers = lab.call("GET", f"{POLICY}/acknowledgements").json()
    assert [r["username"] for r in readers["acknowledged"]] == ["tanaka"]
    assert [r["username"] for r in readers["not_acknowledged"]] == ["manager"]


def test_a_technician_neither_publishes_nor_sees_who_acknowledged(lab):
    technician = working_technician(lab)
    assert technician.call("GET", POLICY).status_code == 200
    body = {"body": next_version(template_text("security-policy"), "2027.01-1")}
    assert technician.call("POST", POLICY, body).status_code == 403
    assert technician.call("GET", f"{POLICY}/acknowledgements").status_code == 403
    assert lab.call("GET", "/api/v1/documents/tax-return").status_code == 422
