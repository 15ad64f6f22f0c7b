"""The auditor's API (G19): "who touched this design, from where?" answered from the chain; exports that an
inspector verifies offline; the chain verified on demand. Auditors read metadata, never content."""

from __future__ import annotations

import base64
import json
import os

import sqlalchemy as sa
from click.testing import CliRunner

from clients.commands.audit import audit
from gateway.audit.export import TRAILER, ExportInvalid, parse_trailer, verify_export
from gateway.audit.models import AuditEvent
from tests.gateway_fixtures import Person
from tests.transfer.scene import other_lab_scene
from tests.transfer.test_delivery_api import delivered, uploaded
from tests.transfer.test_design_api import add_account


def exported(person: Person, **params: str) -> tuple[list[bytes], dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = person.call("GET", f"/api/v1/audit/export?{query}")
    assert response.status_code == 200, response.text
    lines = response.content.splitlines(keepends=True)
    assert lines[-1].startswith(TRAILER)
    return lines[:-1], parse_trailer(lines[-1].rstrip(b"\n"))


def test_an_auditor_answers_who_touched_a_design_and_the_query_is_on_record(scene):
    design_id, _ = delivered(scene)
    uploaded(scene, os.urandom(5_000))  # another design: must not show up
    auditor = add_account(scene["lab"], "inspector", "auditor")
    page = auditor.call("GET", f"/api/v1/audit/events?design={design_id}").json()
    actions = [event["action"] for event in page["events"]]
    assert actions[:1] == ["upload.start"] or "design.commit" in actions
    for step in ("design.commit", "job.claim", "design.download", "job.acknowledge"):
        assert step in actions
    assert {event["target"] for event in page["events"]} == {f"design:{design_id}"}
    claim = next(e for e in page["events"] if e["action"] == "job.claim")
    assert claim["actor_type"] == "station" and claim["client_address"]
    again = auditor.call("GET", "/api/v1/audit/events?action=audit.query").json()["events"]
    assert again and again[0]["details"]["filters"] == {"design": design_id}
    assert again[0]["actor_id"] == auditor.account_id


def test_pages_follow_the_chain_without_gaps_or_repeats(scene):
    delivered(scene)
    auditor = add_account(scene["lab"], "inspector", "auditor")
    everything = auditor.call("GET", "/api/v1/audit/events?category=operation&limit=1000").json()["events"]
    seen, after = [], 0
    while True:
        page = auditor.call("GET", f"/api/v1/audit/events?category=operation&limit=3&after={after}").json()
        seen += [event["seq"] for event in page["events"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen[: len(everything)] == [event["seq"] for event in everything]
    assert len(seen) == len(set(seen))


def test_filters_narrow_by_prefix_outcome_and_case(scene):
    design_id, _ = delivered(scene)
    auditor = add_account(scene["lab"], "inspector", "auditor")
    denied = auditor.call("GET", f"/api/v1/designs/{design_id}/ciphertext")
    assert denied.status_code == 403
    refusals = auditor.call("GET", "/api/v1/audit/events?outcome=denied&action=design.*").json()["events"]
    assert [(e["action"], e["details"]["rule"]) for e in refusals] == [
        ("design.download", "auditors-never-get-content")
    ]
    by_case = auditor.call("GET", "/api/v1/audit/events?case=2026-1125-001").json()["events"]
    assert by_case and {e["target"] for e in by_case} == {f"design:{design_id}"}
    assert auditor.call("GET", "/api/v1/audit/events?case=NO-SUCH-CASE").json()["events"] == []


def test_technicians_may_not_read_the_audit_log_and_other_labs_see_nothing(scene):
    delivered(scene)
    assert scene["technician"].call("GET", "/api/v1/audit/events").status_code == 403
    other = other_lab_scene(scene["lab"].gateway)
    theirs = other["lab"].call("GET", "/api/v1/audit/events?limit=1000").json()["events"]
    assert theirs and all(not (e["target"] or "").startswith("design:") for e in theirs)
    assert other["lab"].call("GET", "/api/v1/audit/export?to=2100-01-01T00:00:00Z").status_code == 200


def test_an_export_verifies_offline_and_one_changed_byte_fails(scene, tmp_path):
    delivered(scene)
    auditor = add_account(scene["lab"], "inspector", "auditor")
    gateway_key = scene["lab"].gateway.backends.keys.public_key()
    for file_format in ("jsonl", "csv"):
        lines, signed = exported(auditor, format=file_format)
        verified = verify_export(lines, signed, gateway_key)
        assert verified.count == signed["manifest"]["count"] > 20
        assert verified.first_seq == 1
        body = bytearray(b"".join(lines))
        body[len(body) // 2] ^= 0x01
        try:
            verify_export(bytes(body).splitlines(keepends=True), signed, gateway_key)
        except ExportInvalid:
            pass
        else:
            raise AssertionError(f"a flipped byte in the {file_format} export verified")
    # A byte that turns a field into nonsense (an unknown category) is refused as such, not as a crash.
    lines, signed = exported(auditor, format="jsonl")
    nonsense = [line.replace(b'"category":"auth"', b'"category":"autx"') for line in lines]
    assert nonsense != lines
    try:
        verify_export(nonsense, signed, gateway_key)
    except ExportInvalid as error:
        assert "unknown audit category" in error.detail
    else:
        raise AssertionError("an event with an unknown category verified")
    # A forged manifest (count changed) no longer verifies its signature; another key is not trusted.
    forged = json.loads(json.dumps(signed))
    forged["manifest"]["count"] += 1
    for manifest, key in ((forged, gateway_key), (signed, os.urandom(32))):
        try:
            verify_export(lines, manifest, key)
        except ExportInvalid:
            continue
        raise AssertionError("a forged manifest or a foreign key verified")


def test_the_verify_export_command_works_offline_on_the_files(scene, tmp_path):
    delivered(scene)
    auditor = add_account(scene["lab"], "inspector", "auditor")
    lines, signed = exported(auditor, format="jsonl")
    events, manifest = tmp_path / "audit.jsonl", tmp_path / "audit.jsonl.manifest.json"
    events.write_bytes(b"".join(lines))
    manifest.write_text(json.dumps(signed))
    key = base64.b64encode(scene["lab"].gateway.backends.keys.public_key()).decode()
    runner = CliRunner(env={"DENTGATE_HOME": str(tmp_path / "home")})
    ok = runner.invoke(audit, ["verify-export", str(events), "--trust-key", key, "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["count"] == signed["manifest"]["count"]
    events.write_bytes(events.read_bytes().replace(b'"success"', b'"failure"', 1))
    broken = runner.invoke(audit, ["verify-export", str(events), "--trust-key", key])
    assert broken.exit_code == 1 and "NOT VERIFIED" in broken.output


def test_an_export_of_a_time_range_is_a_contiguous_run_of_the_chain(scene):
    delivered(scene)
    auditor = add_account(scene["lab"], "inspector", "auditor")
    _, whole = exported(auditor)
    with scene["lab"].gateway.backends.sessions() as session:
        middle = session.scalar(sa.select(AuditEvent.occurred_at).where(AuditEvent.seq == 10))
    lines, part = exported(auditor, **{"from": middle.isoformat().replace("+00:00", "Z")})
    verified = verify_export(lines, part, scene["lab"].gateway.backends.keys.public_key())
    assert verified.first_seq <= 10 and part["manifest"]["prev_hash"] is not None
    assert verified.last_seq > whole["manifest"]["last_seq"] - 5


def test_verify_names_the_first_altered_event(scene):
    delivered(scene)
    auditor = add_account(scene["lab"], "inspector", "auditor")
    assert auditor.call("GET", "/api/v1/audit/verify").json()["ok"] is True
    with scene["lab"].gateway.backends.engine.begin() as connection:
        connection.execute(sa.update(AuditEvent).where(AuditEvent.seq == 7).values(reason="edited afterwards"))
    result = auditor.call("GET", "/api/v1/audit/verify").json()
    assert (result["ok"], result["first_bad_seq"]) == (False, 7)


def test_the_operator_verifies_a_labs_chain_on_the_server(scene, tmp_path):
    delivered(scene)
    backends = scene["lab"].gateway.backends
    settings = backends.settings
    runner = CliRunner(env={"DENTGATE_DATABASE_URL": settings.effective_database_url, "DENTGATE_HOME": str(tmp_path)})
    command = ["verify", "--lab", scene["lab_id"], "--data-dir", str(settings.data_dir), "--json"]
    ok = runner.invoke(audit, command)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    with backends.engine.begin() as connection:
        connection.execute(sa.update(AuditEvent).where(AuditEvent.seq == 5).values(action="edited"))
    broken = runner.invoke(audit, command[:-1])
    assert broken.exit_code == 1
    assert "CHAIN BROKEN at sequence 5" in broken.output
