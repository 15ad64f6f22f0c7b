"""Companion prefill (G20): teeth, material and case come from an exocad constructionInfo or a 3Shape order
when the technician gives none; what the technician typed always wins; no case anywhere is a clear error."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from clients.api import GatewayClient
from clients.cli import main
from clients.commands import tech
from clients.prefill import fill_request, read_companions
from clients.sample_design import crown_stl
from clients.uploader import DesignRefused, DesignRequest, upload_design
from gateway.transfer.companions import UnsafeXml
from gateway.transfer.models import Design
from gateway.transfer.teeth import ToothNumber

SAMPLES = Path(__file__).parents[1] / "transfer" / "samples"
STATION = uuid.uuid4()


def bundle(tmp_path: Path, *samples: str) -> list[Path]:
    """A crown STL and copies of the named companion samples, as a technician would pick them."""
    crown = tmp_path / "crown.stl"
    crown.write_bytes(crown_stl())
    copies = [Path(shutil.copy(SAMPLES / name, tmp_path / name)) for name in samples]
    return [crown, *copies]


def draft(files: list[Path], **changes) -> DesignRequest:
    values = dict(files=files, case_reference=None, station_ids=[STATION], process="design",
                  remote_location="home", teeth=[])  # fmt: skip
    return DesignRequest(**(values | changes))


def test_an_exocad_project_fills_case_fdi_teeth_and_material(tmp_path):
    request, filled = fill_request(draft(bundle(tmp_path, "bridge_24-26.constructionInfo")))
    assert request.case_reference == "{6F9619FF-8B86-D011-B42D-00C04FC964FF}"
    assert request.teeth == [ToothNumber(24, "FDI", "24"), ToothNumber(25, "FDI", "25"), ToothNumber(26, "FDI", "26")]
    assert request.material == "Zirconia"
    assert filled.sources == ("bridge_24-26.constructionInfo",)
    assert filled.describe() == (
        "case {6F9619FF-8B86-D011-B42D-00C04FC964FF}, teeth 24, 25, 26, material Zirconia"
        " (from bridge_24-26.constructionInfo)"
    )


def test_a_3shape_order_fills_teeth_in_fdi_keeping_its_universal_numbers(tmp_path):
    request, filled = fill_request(draft(bundle(tmp_path, "2024-0815-0042.xml")))
    assert request.case_reference == "2024-0815-0042"
    assert [(t.fdi, t.source_system, t.source_value) for t in request.teeth] == [
        (24, "Universal", "12"), (25, "Universal", "13"), (26, "Universal", "14"), (46, "Universal", "30"),
    ]  # fmt: skip
    assert request.material == "Zirkon, IPS e.max CAD"
    assert "teeth 24 (Universal 12), 25 (Universal 13), 26 (Universal 14), 46 (Universal 30)," in filled.describe()


def test_what_the_technician_gave_is_kept_and_a_disagreeing_companion_is_flagged(tmp_path):
    given = draft(
        bundle(tmp_path, "bridge_24-26.constructionInfo"),
        case_reference="2026-1125-007", teeth=["8"], tooth_system="Universal", material="PMMA",
    )  # fmt: skip
    request, filled = fill_request(given)
    assert (request.case_reference, request.teeth, request.tooth_system, request.material) == (
        "2026-1125-007", ["8"], "Universal", "PMMA",
    )  # fmt: skip
    assert (filled.case_reference, filled.teeth, filled.material) == (None, (), None)
    assert filled.describe() is None
    assert filled.warnings == ("the companion names teeth 24, 25, 26 (FDI); sending the teeth you gave",)
    # The same teeth typed in another numbering are no disagreement.
    agreeing, filled = fill_request(draft(given.files, teeth=["12", "13", "14"], tooth_system="Universal"))
    assert filled.warnings == () and agreeing.material == "Zirconia"


def test_without_a_companion_nothing_is_filled_and_the_uploader_refuses_a_missing_case(tmp_path):
    files = bundle(tmp_path)
    request, filled = fill_request(draft(files))
    assert (request.case_reference, request.teeth, request.material, filled.sources) == (None, [], None, ())
    with pytest.raises(DesignRefused, match="no case reference: give --case"):
        upload_design(None, request, uuid.uuid4(), uuid.uuid4(), b"")  # type: ignore[arg-type] (refused first)


def test_a_companion_with_missing_fields_fills_what_it_has_and_says_what_it_lacks(tmp_path):
    request, filled = fill_request(draft(bundle(tmp_path, "incomplete.constructionInfo"), case_reference="C-1"))
    assert request.teeth == [ToothNumber(11, "FDI", "11")]  # 19 is no tooth and one tooth has no number
    assert request.material is None
    assert "incomplete.constructionInfo: tooth 2: no tooth number" in filled.warnings


def test_a_hostile_companion_stops_the_upload_and_names_the_file(tmp_path):
    with pytest.raises(UnsafeXml) as refused:
        read_companions(bundle(tmp_path, "xxe.constructionInfo"))
    assert refused.value.detail.startswith("xxe.constructionInfo: ")


def test_other_files_are_left_to_the_uploader_checks(tmp_path):
    other = tmp_path / "notes.xml"
    other.write_bytes(b"<Notes/>")  # neither companion: the uploader refuses it, prefill does not guess
    assert read_companions([*bundle(tmp_path), other, tmp_path / "missing.stl"]).sources == ()


def printed_json(stdout: str):
    """The command's JSON, after the in-process gateway's request log lines that share its stdout here."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "[", "[]"))
    return json.loads("\n".join(lines[start:]))


class _Me:
    """Just enough of a logged-in client for the command to reach its own checks."""

    def get(self, path: str) -> dict:
        assert path == "/api/v1/me"
        return {"account_id": str(uuid.uuid4()), "device_id": str(uuid.uuid4())}


def test_upload_without_case_or_companion_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tech, "logged_in", _Me)
    files = [str(p) for p in bundle(tmp_path)]
    result = CliRunner().invoke(main, ["tech", "upload", *files, "--station", str(STATION), "--location", "home"])
    assert result.exit_code == 1
    assert "no case reference: give --case" in result.output
    assert "Traceback" not in result.output


def test_upload_fills_the_signed_manifest_from_a_3shape_order(scene, tmp_path, monkeypatch):
    app = scene["lab"].gateway
    app.clock.offset = timedelta()  # the client signs proofs with the real time
    technician = scene["technician"]
    client = GatewayClient("http://testserver", technician.key, technician.token, transport=app.client._transport)
    monkeypatch.setattr(tech, "logged_in", lambda: client)
    files = [str(p) for p in bundle(tmp_path, "2024-0815-0042.xml")]
    result = CliRunner().invoke(
        main, ["tech", "upload", *files, "--station", scene["station_id"], "--location", "home", "--json"]
    )
    assert result.exit_code == 0, result.output
    shown = printed_json(result.stdout)
    assert shown["filled_from_companions"]["material"] == "Zirkon, IPS e.max CAD"
    with app.backends.sessions() as session:
        design = session.get(Design, uuid.UUID(shown["design_id"]))
        manifest = design.signed_manifest["manifest"]
    assert design.case_reference == manifest["case_reference"] == "2024-0815-0042"
    assert manifest["teeth"][0] == {"fdi": 24, "source_system": "Universal", "source_value": "12"}
    assert [t["fdi"] for t in manifest["teeth"]] == [24, 25, 26, 46]
    assert manifest["material"] == "Zirkon, IPS e.max CAD"
    assert sorted(f["name"] for f in manifest["files"]) == ["2024-0815-0042.xml", "crown.stl"]
