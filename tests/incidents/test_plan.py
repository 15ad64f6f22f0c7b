"""The incident plan in force, for every member, also from a phone; and on the technician's machine when the
gateway is out of reach: the CLI shows its cached copy, phone numbers first (G17)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from gateway.compliance import documents
from gateway.db.engine import create_db_engine, session_factory, transaction
from gateway.identity.models import Account
from gateway.incidents.plan import plan_template
from tests.gateway_fixtures import add_technician
from tests.gateway_process import start_gateway, stop_gateway
from tests.identity.test_cli_end_to_end import PASSWORD, Cli, activate, code

LAB = "Otsu Dental Lab"


def lab_plan_text() -> str:
    """The template made the lab's own: its version and its manager's real number."""
    body = plan_template().replace('version = "2026.11-1"', 'version = "2026.12-otsu"')
    return body.replace("03-0000-0000", "077-555-0101")


def publish(sessions, manager: str, body: str) -> None:
    with transaction(sessions) as session:
        account = session.scalar(sa.select(Account).where(Account.username == manager))
        documents.publish(session, account, "incident-plan", body)


def test_the_template_applies_until_the_lab_publishes_its_own_plan(lab):
    technician = add_technician(lab)
    assert technician.login().json()["scope"] == "enrol"  # e.g. logged in from a phone: may still read the plan
    template = technician.call("GET", "/api/v1/incident-plan")
    assert template.status_code == 200, template.text
    assert (template.json()["template"], template.json()["version"], template.json()["published_at"]) == (
        True,
        "2026.11-1",
        None,
    )
    publish(lab.gateway.backends.sessions, "manager", lab_plan_text())
    own = technician.call("GET", "/api/v1/incident-plan").json()
    assert (own["template"], own["version"]) == (False, "2026.12-otsu")
    assert own["published_at"] is not None and len(own["sha256"]) == 64
    assert own["plan"]["contacts"][0]["phone"] == "077-555-0101"
    assert set(own["plan"]["procedures"]) == {"lost-device", "malware", "suspicious", "other"}


def log_in(cli: Cli, gateway: str, username: str, totp_secret: str) -> dict:
    login = ["login", "--gateway", gateway, "--lab", LAB, "--username", username, "--password-stdin"]
    return cli.json(*login, "--totp", code(totp_secret, 1), stdin=PASSWORD)


@pytest.mark.timeout(300)
def test_the_plan_command_works_offline_from_its_cache_and_incidents_run_through_the_cli(tmp_path, database_url):
    process, gateway = start_gateway(tmp_path, env={"DENTGATE_DATABASE_URL": database_url})
    try:
        server = Cli(tmp_path / "server-home", tmp_path, DENTGATE_DATABASE_URL=database_url)
        secret = server.json("admin", "init", "--lab", LAB, "--manager", "boss")["activation_secret"]
        engine = create_db_engine(database_url)
        publish(session_factory(engine), "boss", lab_plan_text())
        engine.dispose()
        manager = Cli(tmp_path / "manager", tmp_path, DENTGATE_KEY_PASSPHRASE="manager passphrase")
        log_in(manager, gateway, "boss", activate(manager, gateway, LAB, "boss", secret)[0])
        added = manager.json("admin", "user", "add", "tanaka", "--role", "technician")
        technician = Cli(tmp_path / "technician", tmp_path, DENTGATE_KEY_PASSPHRASE="technician passphrase")
        tech_totp, _ = activate(technician, gateway, LAB, "tanaka", added["activation_secret"])
        assert log_in(technician, gateway, "tanaka", tech_totp)["scope"] == "enrol"  # from a phone

        online = technician.run("tech", "incident", "plan").stdout
        assert "077-555-0101" in online and "2026.12-otsu" in online and "Cached copy" not in online

        reported = technician.json("tech", "incident", "report", "--type", "suspicious", "--description", "odd SMS")
        assert (reported["status"], reported["technician"]) == ("reported", "tanaka")
        assert [i["id"] for i in manager.json("admin", "incident", "list", "--status", "reported")] == [reported["id"]]
        manager.run("admin", "incident", "contain", reported["id"], "--note", "account password reset")
        shown = manager.run("admin", "incident", "resolve", reported["id"], "--note", "smishing; nothing leaked")
        assert "resolved" in shown.stdout and "smishing" in shown.stdout
        assert [i["status"] for i in technician.json("tech", "incident", "list")] == ["resolved"]
    finally:
        stop_gateway(process)

    offline = technician.run("tech", "incident", "plan").stdout
    assert "077-555-0101" in offline and "Cached copy fetched" in offline and "cannot be reached" in offline
    assert offline.index("077-555-0101") < offline.index("[lost-device]")  # phone numbers first
    cached = json.loads(technician.run("tech", "incident", "plan", "--json").stdout)
    assert (cached["source"], cached["version"], cached["lab"]) == ("cache", "2026.12-otsu", LAB)
    stranger = Cli(tmp_path / "stranger", tmp_path).run("tech", "incident", "plan", ok=False)
    assert stranger.returncode != 0 and "no copy of the incident plan is cached" in stranger.stderr
