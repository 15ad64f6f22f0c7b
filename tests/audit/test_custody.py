"""A design's custody for inspectors (G19): the gateway hands over the signed chain, the client checks it.

In-process: upload → claim → download → acknowledgement, then the custody report, checked with the
CLI's own logic; a tampered acknowledgement fails; who may ask. End to end: `dentgate demo`, then
`dentgate audit custody` as an auditor against its gateway, every signature checked on the client.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.commands.audit_custody import check_custody, render
from gateway.audit.models import AuditEvent
from gateway.audit.service import verify
from gateway.transfer.models import DeliveryJob
from tests.gateway_fixtures import Person
from tests.transfer.scene import other_lab_scene
from tests.transfer.test_delivery_api import delivered
from tests.transfer.test_design_api import add_account


def custody(person: Person, design_id: str):
    return person.call("GET", f"/api/v1/audit/custody/{design_id}")


def checks_by_step(result: dict) -> dict[tuple[str, str], bool | None]:
    return {(check["step"], check["kind"]): check["ok"] for check in result["checks"]}


def test_custody_after_a_delivery_shows_every_link_verified(scene):
    lab: Person = scene["lab"]
    design_id, job_id = delivered(scene)
    auditor = add_account(lab, "inspector", "auditor")
    response = custody(auditor, design_id)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["signed_manifest"]["manifest"]["design_id"] == design_id
    assert report["device_id"] == scene["device_id"]
    [job] = report["jobs"]
    assert (job["job_id"], job["station_id"], job["state"], job["attempts"]) == (
        job_id, scene["station_id"], "acknowledged", 1,
    )  # fmt: skip
    assert job["signed_acknowledgement"]["acknowledgement"]["design_id"] == design_id

    result = check_custody(report, lab.gateway.backends.keys.public_key())
    assert result["verified"] is True
    assert checks_by_step(result) == {
        ("manifest", "signature"): True,
        ("manifest", "link"): True,
        ("receipt", "signature"): True,
        ("receipt", "link"): True,
        ("acknowledgement", "signature"): True,
        ("acknowledgement", "link"): True,
    }
    actions = [event["action"] for event in report["events"]]
    assert actions == [
        "upload.start", "design.commit", "job.claim", "design.download", "job.acknowledge", "design.read-metadata",
    ]  # fmt: skip
    assert [event["seq"] for event in report["events"]] == sorted(event["seq"] for event in report["events"])
    inspection = report["events"][-1]
    assert (inspection["actor_type"], inspection["actor_id"], inspection["outcome"]) == (
        "auditor", auditor.account_id, "success",
    )  # fmt: skip
    text = render(result)
    assert text.count("✔") == 7 and "✘" not in text  # six checks and the verdict
    assert "job.acknowledge" in text

    assert custody(lab, design_id).status_code == 200  # managers may inspect too


def test_a_tampered_acknowledgement_in_the_database_is_shown_as_failing(scene):
    lab: Person = scene["lab"]
    design_id, job_id = delivered(scene)
    backends = lab.gateway.backends
    with backends.sessions() as session, session.begin():
        job = session.get(DeliveryJob, uuid.UUID(job_id))
        forged = json.loads(json.dumps(job.acknowledgement))
        forged["acknowledgement"]["import_name"] = "somewhere-else"
        job.acknowledgement = forged
    auditor = add_account(lab, "inspector", "auditor")
    result = check_custody(custody(auditor, design_id).json(), backends.keys.public_key())
    assert result["verified"] is False
    checks = checks_by_step(result)
    assert checks[("acknowledgement", "signature")] is False
    assert checks[("acknowledgement", "link")] is None  # not checkable without a valid signature
    assert checks[("manifest", "signature")] is checks[("receipt", "signature")] is True
    text = render(result)
    assert "✘ acknowledgement signature" in text
    assert "Custody NOT verified" in text


def test_a_receipt_is_only_trusted_with_the_pinned_gateway_key(scene):
    lab: Person = scene["lab"]
    design_id, _ = delivered(scene)
    report = custody(lab, design_id).json()
    impostor = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    result = check_custody(report, impostor)
    checks = checks_by_step(result)
    assert (checks[("receipt", "signature")], checks[("receipt", "link")]) == (False, None)
    assert checks[("manifest", "signature")] is True
    assert result["verified"] is False


def test_a_technician_is_refused_and_another_labs_auditor_finds_nothing(scene, gateway):
    design_id, _ = delivered(scene)
    refused = custody(scene["technician"], design_id)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")

    other = other_lab_scene(gateway)
    stranger = add_account(other["lab"], "nosy", "auditor")
    missing = custody(stranger, design_id)
    assert (missing.status_code, missing.json()["code"]) == (404, "design-not-found")

    with gateway.backends.sessions() as session:
        forbidden = session.execute(
            sa.select(AuditEvent.actor_id, AuditEvent.details).where(AuditEvent.action == "request.forbidden")
        ).all()
        assert (scene["technician"].account_id, f"/api/v1/audit/custody/{design_id}") in [
            (actor, details["path"]) for actor, details in forbidden
        ]
        denied = session.execute(
            sa.select(AuditEvent.lab_id, AuditEvent.outcome).where(
                AuditEvent.action == "design.read-metadata",
                AuditEvent.actor_id == stranger.account_id,
                AuditEvent.target == f"design:{design_id}",
            )
        ).all()
        assert denied == [(uuid.UUID(other["lab_id"]), "denied")]  # on the inspector's own lab chain
    for lab_id in (scene["lab_id"], other["lab_id"]):
        with gateway.backends.sessions() as session:
            verify(session, uuid.UUID(lab_id), gateway.backends.keys.public_key())


def dentgate(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real `dentgate` command as the inspector runs it, with their own client home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DENTGATE_")}
    env |= {"DENTGATE_HOME": str(home), "DENTGATE_KEY_PASSPHRASE": "inspector's own passphrase"}
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", *args],
        input=stdin, capture_output=True, text=True, env=env, cwd=home.parent, timeout=120,
    )  # fmt: skip


@pytest.mark.timeout(300)
def test_dentgate_audit_custody_checks_the_design_the_demo_delivered(tmp_path):
    from clients.demo import LAB, PASSWORD, activate, run_demo, running_gateway, totp_code
    from gateway.db.engine import transaction
    from gateway.identity.accounts import add_account as add_lab_account
    from gateway.identity.models import Account
    from gateway.policy import default_policy
    from gateway.settings import Settings

    result = run_demo(tmp_path / "demo", lambda _: None)
    # The demo's gateway stops when it returns; its data stays. Serve that data again and inspect the design.
    settings = Settings(data_dir=tmp_path / "demo" / "gateway-data", host="127.0.0.1")
    with running_gateway(settings) as (url, backends):
        with transaction(backends.sessions) as session:
            manager = session.scalars(sa.select(Account).where(Account.username == "manager")).one()
            issued = add_lab_account(session, manager, "inspector", "auditor", default_policy().identity)
            secret = issued.activation_secret
        totp_secret, _ = activate(url, "inspector", secret)

        home = tmp_path / "inspector"
        login = dentgate(home, "login", "--gateway", url, "--lab", LAB, "--username", "inspector",
                         "--password-stdin", "--totp", totp_code(totp_secret, 1), stdin=PASSWORD + "\n")  # fmt: skip
        assert login.returncode == 0, login.stderr

        shown = dentgate(home, "audit", "custody", str(result.design_id), "--json")
        assert shown.returncode == 0, shown.stdout + shown.stderr
        checked = json.loads(shown.stdout)
        assert checked["verified"] is True
        assert len(checked["checks"]) == 6 and all(check["ok"] is True for check in checked["checks"])
        assert [job["state"] for job in checked["jobs"]] == ["acknowledged"]
        assert {"design.commit", "job.claim", "job.acknowledge"} <= {event["action"] for event in checked["events"]}
        pinned = json.loads((home / "gateway-key.json").read_text())
        assert (pinned["gateway"], base64.b64decode(pinned["public_key"])) == (url, backends.keys.public_key())

        text = dentgate(home, "audit", "custody", str(result.design_id))
        assert text.returncode == 0, text.stderr
        assert text.stdout.count("✔") == 7 and "✘" not in text.stdout
        assert "Custody verified" in text.stdout

        # Another gateway key than the one pinned on first use: refused, nothing shown.
        pinned["public_key"] = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()
        (home / "gateway-key.json").write_text(json.dumps(pinned))
        refused = dentgate(home, "audit", "custody", str(result.design_id))
        assert refused.returncode != 0
        assert "pins another gateway key" in refused.stderr
        assert refused.stdout == ""
