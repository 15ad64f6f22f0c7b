"""The identity commands end to end against a running gateway, as a lab would use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
import sqlalchemy as sa

from gateway.audit.models import AuditEvent
from tests.gateway_process import start_gateway, stop_gateway
from tests.identity.posture_samples import compliant_windows

PASSWORD = "cobalt chrome zirconia milling 2026"


class Cli:
    """Runs `dentgate` as one person, with their own client home."""

    def __init__(self, home: Path, cwd: Path, **env: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DENTGATE_")}
        self.env.update({"DENTGATE_HOME": str(home), **env})
        self.cwd = cwd

    def run(self, *args: str, stdin: str = "", ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "clients.cli", *args],
            input=stdin, capture_output=True, text=True, env=self.env, cwd=self.cwd, timeout=60,
        )  # fmt: skip
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
        return result

    def json(self, *args: str, stdin: str = "") -> dict:
        return json.loads(self.run(*args, "--json", stdin=stdin).stdout)


def code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC) + timedelta(seconds=30 * steps_ahead))


def activate(cli: Cli, gateway: str, lab: str, username: str, secret: str) -> tuple[str, list[str]]:
    who = ["--gateway", gateway, "--lab", lab, "--username", username, "--activation-secret", secret]
    totp_secret = cli.json("activate", *who, "--password-stdin", stdin=PASSWORD + "\n")["totp_secret"]
    codes = cli.json("activate", *who, "--totp", code(totp_secret))["recovery_codes"]
    return totp_secret, codes


@pytest.mark.timeout(300)
def test_lab_bootstrap_to_device_login_and_revocation(tmp_path, database_url):
    process, gateway = start_gateway(tmp_path, env={"DENTGATE_DATABASE_URL": database_url})
    try:
        lab = "Sapporo Dental Lab"
        server = Cli(tmp_path / "server-home", tmp_path, DENTGATE_DATABASE_URL=database_url)
        secret = server.json("admin", "init", "--lab", lab, "--manager", "boss")["activation_secret"]

        manager = Cli(tmp_path / "manager", tmp_path, DENTGATE_KEY_PASSPHRASE="manager's own passphrase")
        manager_totp, _ = activate(manager, gateway, lab, "boss", secret)
        login = ["login", "--gateway", gateway, "--lab", lab, "--password-stdin"]
        assert (
            manager.json(*login, "--username", "boss", "--totp", code(manager_totp, 1), stdin=PASSWORD)["role"]
            == "manager"
        )

        # A manager approves remote workers and devices only with current training (G21).
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        topics = [arg for topic in ("staff-management", "security-measures", "technician-record")
                  for arg in ("--topic", topic)]  # fmt: skip
        manager.run("admin", "training", "add", "--date", yesterday, "--title", "遠隔作業研修", "--provider",
                    "京都府歯科技工士会", *topics, "--duration", "90", "--attendee", "boss")  # fmt: skip
        added = manager.json("admin", "user", "add", "tanaka", "--role", "technician")
        account_id = added["account"]["id"]
        manager.run("admin", "user", "verify-identity", account_id, "--method", "in-person",
                    "--document-type", "driver-licence")  # fmt: skip
        where = ["--location-label", "自宅", "--address", "北海道札幌市中央区1-1", "--prefecture", "北海道"]
        profile = manager.json("admin", "user", "profile", account_id, "--full-name", "田中 花子", "--licence",
                               "第012345号", "--phone", "011-000-0000", *where)  # fmt: skip
        assert (profile["full_name"], profile["prefecture"]) == ("田中 花子", "北海道")
        wrong = manager.run("admin", "user", "profile", account_id, "--full-name", "田中 花子", "--licence", "1",
                            "--phone", "011-000-0000", *where[:4], "--prefecture", "Hokkaido", ok=False)  # fmt: skip
        assert "47 prefectures" in wrong.stderr

        technician = Cli(tmp_path / "technician", tmp_path, DENTGATE_KEY_PASSPHRASE="correct horse battery staple")
        tech_totp, recovery = activate(technician, gateway, lab, "tanaka", added["activation_secret"])
        posture = tmp_path / "posture.json"
        posture.write_text(json.dumps(compliant_windows(datetime.now(UTC))))
        device_login = [*login, "--username", "tanaka", "--device", "--posture-file", str(posture)]
        first = technician.json(*device_login, "--recovery-code", recovery[0], stdin=PASSWORD)
        assert first["scope"] == "enrol"
        device_id = technician.json("tech", "enroll-device", "--name", "CAD PC", "--posture-file", str(posture))[
            "device"
        ]["id"]
        manager.run("admin", "device", "approve", device_id, "--ownership", "lab-lent")

        totp = code(tech_totp, 1)
        full = technician.json(*device_login, "--totp", totp, stdin=PASSWORD)
        assert (full["scope"], full["device_id"]) == ("full", device_id)
        replay = technician.run(*device_login, "--totp", totp, stdin=PASSWORD, ok=False)
        assert replay.returncode != 0
        assert "totp-replayed" in replay.stderr

        session = json.loads((tmp_path / "technician" / "session.json").read_text())
        assert set(session) == {"gateway", "lab", "username", "token", "role", "scope", "uses_device_key"}
        stolen = httpx.get(f"{gateway}/api/v1/me", headers={"Authorization": f"DPoP {session['token']}"})
        assert stolen.status_code == 401

        assert technician.json("tech", "posture", "--posture-file", str(posture))["compliant"] is True
        manager.run("admin", "device", "revoke", device_id, "--reason", "laptop stolen")
        after = technician.run("tech", "posture", "--posture-file", str(posture), ok=False)
        assert after.returncode != 0
        assert "device-revoked" in after.stderr

        manager.run("admin", "user", "add", "kato", "--role", "technician")
        intruder = Cli(tmp_path / "intruder", tmp_path)
        for _ in range(10):
            wrong = intruder.run(*login, "--username", "kato", "--totp", "000000", stdin="guess\n", ok=False)
            assert "invalid-credentials" in wrong.stderr
    finally:
        stop_gateway(process)
    engine = sa.create_engine(database_url)
    with engine.connect() as db:
        lockouts = db.execute(
            sa.select(AuditEvent.details).where(AuditEvent.action == "account.lockout", AuditEvent.outcome == "success")
        ).all()
        assert [row.details["username"] for row in lockouts] == ["kato"]
        refused = db.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "request.refused"))
        assert refused >= 2
    engine.dispose()
