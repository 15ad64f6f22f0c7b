"""`dentgate tech status`: a technician sees each of their designs and where each station's delivery stands."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
from click.testing import CliRunner

from clients import uploader
from clients.api import ApiError, GatewayClient
from clients.cli import main
from clients.commands import tech
from clients.sample_design import crown_stl
from gateway.transfer.schemas import DesignOut

MILL = "7d1c7a64-0d0a-4c55-9b0c-1f6c2b3c4d5e"
OTHER = "0b9f5f0e-3a0e-4f57-a1c6-2a9a0e1d2c3b"
DESIGN = {
    "id": "5b3f1c2e-8a4d-4e6f-9b1a-2c3d4e5f6a7b", "case_reference": "2026-1125-007", "status": "available",
    "committed_at": "2026-11-25T01:30:00Z", "ciphertext_size": 1_572_864,
    "jobs": [
        {"id": str(uuid.uuid4()), "station_id": MILL, "state": "acknowledged", "reason": None, "attempts": 1,
         "updated_at": "2026-11-25T01:35:00Z"},
        {"id": str(uuid.uuid4()), "station_id": OTHER, "state": "rejected", "reason": "hash mismatch",
         "attempts": 2, "updated_at": "2026-11-25T01:40:00Z"},
    ],
}  # fmt: skip


class FakeGateway:
    """The gateway's answers as the designs API defines them; records the paths asked for."""

    def __init__(self, designs: list[dict], recipients_fail: bool = False) -> None:
        self.designs, self.recipients_fail, self.asked = designs, recipients_fail, []

    def get(self, path: str):
        self.asked.append(path)
        if path == "/api/v1/designs":
            return self.designs
        if path == "/api/v1/lab/recipients":
            if self.recipients_fail:
                raise ApiError(403, "forbidden", "no")
            return {"lab_id": str(uuid.uuid4()), "archive_recipient": None,
                    "stations": [{"id": MILL, "name": "Mill 1", "age_recipient": "age1…"}]}  # fmt: skip
        design_id = path.removeprefix("/api/v1/designs/")
        for design in self.designs:
            if design["id"] == design_id:
                return design
        raise ApiError(404, "design-not-found", "no such design")


def status(monkeypatch, gateway, *args: str):
    monkeypatch.setattr(tech, "logged_in", lambda: gateway)
    return CliRunner().invoke(main, ["tech", "status", *args])


def printed_json(stdout: str):
    """The command's JSON, after any in-process gateway request log lines that share its stdout here."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "[", "[]"))
    return json.loads("\n".join(lines[start:]))


@pytest.fixture
def in_japan(monkeypatch):
    """Times are shown in the PC's time zone; the lab's is Japan's."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_each_delivery_is_shown_with_what_its_state_means(monkeypatch, in_japan):
    result = status(monkeypatch, FakeGateway([DESIGN]))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"2026-1125-007  design {DESIGN['id']}  available, sent 2026-11-25 10:30, 1.5 MiB",
        "  Mill 1: acknowledged (delivered: in the station's import folder); attempts 1, updated 2026-11-25 10:35",
        f"  station {OTHER}: rejected (the station refused it: hash mismatch); attempts 2, updated 2026-11-25 10:40",
    ]


def test_one_design_by_id_and_json_for_scripts(monkeypatch):
    gateway = FakeGateway([DESIGN, {**DESIGN, "id": str(uuid.uuid4()), "case_reference": "other"}])
    result = status(monkeypatch, gateway, DESIGN["id"], "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == DESIGN
    assert gateway.asked == [f"/api/v1/designs/{DESIGN['id']}"]
    result = status(monkeypatch, gateway, DESIGN["id"])
    assert "other" not in result.output and "2026-1125-007" in result.output
    assert json.loads(status(monkeypatch, gateway, "--json").output)[1]["case_reference"] == "other"


def test_nothing_sent_unknown_design_and_a_gateway_without_job_states(monkeypatch):
    assert status(monkeypatch, FakeGateway([])).output == "You have sent no designs yet.\n"
    missing = status(monkeypatch, FakeGateway([]), str(uuid.uuid4()))
    assert missing.exit_code == 1 and "no such design [design-not-found]" in missing.output
    assert status(monkeypatch, FakeGateway([]), "not-an-id").exit_code == 2  # refused before asking
    old = {key: value for key, value in DESIGN.items() if key != "jobs"}
    result = status(monkeypatch, FakeGateway([old, {**DESIGN, "jobs": []}], recipients_fail=True))
    assert "(this gateway does not report deliveries yet)" in result.output
    assert "(no deliveries)" in result.output


# --- against the real gateway ------------------------------------------------------------------------------------

needs_job_states = pytest.mark.skipif(
    "jobs" not in DesignOut.model_fields, reason="the gateway's design list does not report job states yet"
)


@needs_job_states
def test_status_follows_a_design_from_upload_to_the_station_refusing_it(scene, tmp_path, monkeypatch):
    app = scene["lab"].gateway
    app.clock.offset = timedelta()  # the client signs proofs with the real time
    technician = scene["technician"]
    client = GatewayClient("http://testserver", technician.key, technician.token, transport=app.client._transport)
    design = tmp_path / "crown_11.stl"
    design.write_bytes(crown_stl())
    me = client.get("/api/v1/me")
    request = uploader.DesignRequest([design], "2026-1125-007", [uuid.UUID(scene["station_id"])], "design", "home",
                                     ["11"])  # fmt: skip
    sent = uploader.upload_design(client, request, uuid.UUID(me["account_id"]), uuid.UUID(me["device_id"]),
                                  uploader.gateway_key(client))  # fmt: skip

    result = status(monkeypatch, client)
    assert result.exit_code == 0, result.output
    assert f"2026-1125-007  design {sent.design_id}  " in result.output
    assert "  Mill 1: available (waiting for the station to fetch it); attempts 0" in result.output

    station = scene["station"]
    station.token = station.call("POST", "/api/v1/stations/session", token="").json()["token"]
    job = station.call("GET", "/api/v1/station/jobs/next?wait=0").json()
    refused = station.call("POST", f"/api/v1/station/jobs/{job['job_id']}/reject", {"reason": "mesh not closed"})
    assert refused.status_code == 204, refused.text

    shown = printed_json(status(monkeypatch, client, str(sent.design_id), "--json").stdout)
    assert shown["id"] == str(sent.design_id) and shown["case_reference"] == "2026-1125-007"
    [delivery] = shown["jobs"]
    assert (delivery["station_id"], delivery["state"], delivery["reason"]) == (
        scene["station_id"], "rejected", "mesh not closed",
    )  # fmt: skip
    result = status(monkeypatch, client, str(sent.design_id))
    assert "  Mill 1: rejected (the station refused it: mesh not closed); attempts 1" in result.output
