"""The demo lab meets the guideline before remote work starts, through the API as a manager would do it: the
manager's training, the lab's policy and incident plan, the technician's profile, training and attestations,
the policy acknowledged, the prefecture roster filed (G1, G3, G5, G15, G16, G17, G21)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from clients.api import GatewayClient
from gateway.policy import default_policy

TRAINING = {"title": "遠隔歯科技工の研修（管理者・技工士）", "provider": "DentGate demo", "duration_minutes": 120}


def _yesterday() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


def _shipped(name: str) -> str:
    return resources.files("policies").joinpath(name).read_text(encoding="utf-8")


def adopt_guideline(manager: GatewayClient, say: Callable[[str], None]) -> None:
    """The manager records their training, then publishes the lab's security policy and incident plan."""
    manager_id = manager.request("GET", "/api/v1/me")["account_id"]
    topics = [t.id for t in default_policy().training.topics]
    manager.post("/api/v1/training", {**TRAINING, "held_on": _yesterday(), "topics": topics, "attendees": [manager_id]})
    policy = manager.post("/api/v1/documents/security-policy", {"body": _shipped("default.toml")})
    plan = manager.post("/api/v1/documents/incident-plan", {"body": _shipped("incident_plan.toml")})
    say(f"Manager's training recorded (G21); security policy {policy['version']} and incident plan "
        f"{plan['version']} published (G16, G17)")  # fmt: skip


def register_remote_worker(manager: GatewayClient, technician_id: str, say: Callable[[str], None]) -> None:
    """Profile with licence and remote location, training, the manager-confirmed attestations (G1, G5, G15, G21)."""
    profile: dict[str, Any] = {
        "full_name": "田中 花子", "licence_number": "第012345号", "phone": "075-000-1234", "location_label": "自宅",
        "location_address": "京都府京都市左京区下鴨1-2-3", "prefecture": "京都府", "employed_by_lab": True,
    }  # fmt: skip
    manager.request("PUT", f"/api/v1/accounts/{technician_id}/profile", profile)
    topics = list(default_policy().training.required_topics("technician"))
    manager.post("/api/v1/training", {**TRAINING, "held_on": _yesterday(), "topics": topics,
                                      "attendees": [technician_id]})  # fmt: skip
    for kind in default_policy().attestation.required:
        manager.post(f"/api/v1/accounts/{technician_id}/attestations", {"kind": kind})
    say("Technician's licence and remote location registered, training recorded, privacy filter, screen lock and "
        "removable-media rules confirmed by the manager")  # fmt: skip


def ready_for_remote_work(manager: GatewayClient, technician: GatewayClient, say: Callable[[str], None]) -> None:
    """The technician acknowledges the policy in force; the manager files the roster; nothing blocks uploading."""
    version = technician.request("GET", "/api/v1/documents/security-policy")["document"]["version"]
    technician.post("/api/v1/documents/security-policy/acknowledgements", {"version": version})
    manager.download("POST", "/api/v1/roster/exports", {"format": "pdf", "lang": "ja"})
    readiness = technician.request("GET", "/api/v1/me/readiness")
    if readiness["failures"]:
        raise RuntimeError(f"the demo technician may not upload: {readiness['failures']}")
    say(f"Policy {version} acknowledged by the technician; prefecture roster exported for filing (G3); "
        "nothing blocks remote work")  # fmt: skip


def show_compliance(manager: GatewayClient, case_reference: str, workdir: Path, say: Callable[[str], None]) -> Path:
    """The upload started the case's 歯科技工録 (G20); the compliance report, as the lab would hand it over."""
    case = manager.request("GET", f"/api/v1/records/{case_reference}")
    for process in case["remote_processes"]:
        say(f"歯科技工録 {case_reference} ({case['patient_reference']}): remote process '{process['process']}' by "
            f"{process['technician_name']} at {process['location_label']} on {process['device_name']}")  # fmt: skip
    report = manager.request("GET", "/api/v1/compliance/report?format=json&lang=en")
    pdf, _ = manager.download("GET", "/api/v1/compliance/report?format=pdf&lang=ja")
    path = workdir / "compliance-report.pdf"
    path.write_bytes(pdf)
    rows = report["rows"]
    met = sum(row["status"] == "met" for row in rows)
    open_rows = ", ".join(f"{row['id']} {row['status']}" for row in rows if row["status"] != "met") or "none open"
    say(f"Compliance report (G1–G21): {met} of {len(rows)} met ({open_rows}); Japanese PDF in {path}")
    return path
