"""The compliance commands against the in-process gateway, as the manager and the technician type them."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from clients.api import GatewayClient
from clients.cli import main
from clients.commands import compliance
from gateway.compliance.acknowledgements import template_text
from tests.compliance.people import days_ago, working_technician


def as_person(monkeypatch, person) -> None:
    """The commands call the gateway as `person` (the client signs its proofs with the real time)."""
    person.gateway.clock.offset = timedelta()
    transport = person.gateway.client._transport
    client = GatewayClient("http://testserver", person.key, person.token, transport=transport)
    monkeypatch.setattr(compliance, "logged_in", lambda: client)


def run(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, list(args))
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def printed_json(output: str):
    """The command's JSON, after any in-process gateway log lines sharing its stdout here."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "[", "[]"))
    return json.loads("\n".join(lines[start:]))


@pytest.fixture
def people(lab):
    return lab, working_technician(lab)


def test_the_manager_records_training_confirms_attestations_and_files_the_roster(people, monkeypatch, tmp_path):
    manager, _ = people
    as_person(monkeypatch, manager)
    added = run("admin", "training", "add", "--date", days_ago(manager, 2), "--title", "遠隔作業研修",
                "--provider", "京都府歯科技工士会", "--topic", "security-measures", "--topic", "technician-record",
                "--duration", "90", "--attendee", "tanaka")  # fmt: skip
    assert "recorded (security-measures, technician-record) for tanaka" in added
    assert "遠隔作業研修" in run("admin", "training", "list")
    due = {row["username"]: row for row in printed_json(run("admin", "training", "due", "--json"))}
    assert due["tanaka"]["status"] == "current" and due["manager"]["status"] == "current"
    confirmed = run("admin", "attest", "tanaka", "screen-lock", "--date", days_ago(manager, 1))
    assert f"screen-lock of tanaka confirmed as of {days_ago(manager, 1)}" in confirmed
    assert "missing" not in run("admin", "attestations")
    unknown = run("admin", "attest", "nobody", "screen-lock", ok=False)
    assert "no account 'nobody'" in unknown

    out = tmp_path / "roster.csv"
    written = run("admin", "roster", "export", "--format", "csv", "--out", str(out))
    assert f"Roster written to {out}" in written
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert rows[0][0] == "氏名" and rows[1][1] == "有"
    assert "Last export" in run("admin", "roster", "show")
    run("admin", "roster", "export", "--out", str(tmp_path / "roster.pdf"), "--lang", "en")
    assert (tmp_path / "roster.pdf").read_bytes().startswith(b"%PDF")


def test_the_manager_publishes_a_policy_and_sees_who_acknowledged_it(people, monkeypatch, tmp_path):
    manager, technician = people
    as_person(monkeypatch, manager)
    bad = tmp_path / "bad.toml"
    bad.write_text(template_text("security-policy").replace("validity_months = 12", "validity_months = 0"))
    refused = run("admin", "policy", "publish", str(bad), ok=False)
    assert "training.validity_months" in refused and "[document-invalid]" in refused
    good = tmp_path / "policy.toml"
    shipped = printed_json(run("admin", "policy", "show", "--json"))["document"]["version"]
    good.write_text(template_text("security-policy").replace(f'version = "{shipped}"', 'version = "2027.01-1"'))
    assert "version 2027.01-1 published" in run("admin", "policy", "publish", str(good))
    assert "2027.01-1" in run("admin", "policy", "history")
    assert "Not yet acknowledged" in run("admin", "policy", "acknowledgements")

    as_person(monkeypatch, technician)
    assert "2027.01-1" in run("tech", "policy", "show")
    assert "version 2027.01-1 acknowledged" in run("tech", "policy", "acknowledge")
    stale = run("tech", "policy", "acknowledge", "--version", shipped, ok=False)
    assert "[conflict]" in stale


def test_the_technician_attests_and_sees_what_blocks_uploading(people, monkeypatch):
    _, technician = people
    as_person(monkeypatch, technician)
    attested = run("tech", "attest", "privacy-filter")
    assert "privacy-filter attested as of" in attested and "覗き見防止" in attested
    refused = run("tech", "attest", "personal-device-administration", ok=False)
    assert "give its id" in refused
    assert "Ready to upload." in run("tech", "readiness")
    ready = printed_json(run("tech", "readiness", "--json"))
    assert ready["ready"] is True and ready["training_due_on"]
