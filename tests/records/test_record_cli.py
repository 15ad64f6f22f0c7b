"""`dentgate record …` against the running test app: complete, finalize, show and export a case."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from click.testing import CliRunner

from clients.api import raise_for_problem
from clients.cli import main
from clients.commands import records as record_commands
from gateway.japan import JST
from tests.gateway_fixtures import Person
from tests.pdf_text import pdf_text
from tests.records.cases import CASE, PATIENT, upload_case


class PersonClient:
    """The calls the CLI makes on its GatewayClient, made as `person` through the test app."""

    def __init__(self, person: Person) -> None:
        self.person = person

    def request(self, method: str, path: str, json: Any = None) -> Any:
        response = self.person.call(method, path, json)
        raise_for_problem(response)
        return response.json() if response.content else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, json: Any = None) -> Any:
        return self.request("POST", path, json)

    @contextlib.contextmanager
    def stream(self, path: str, params: dict[str, str] | None = None) -> Iterator[Any]:
        response = self.person.call("GET", f"{path}?{urlencode(params or {})}")
        raise_for_problem(response)
        yield response


def run(monkeypatch, person: Person, *args: str, stdin: str | None = None):
    monkeypatch.setattr(record_commands, "logged_in", lambda: PersonClient(person))
    return CliRunner().invoke(main, ["record", *args], input=stdin)


def test_a_manager_completes_finalizes_and_exports_a_case_from_the_command_line(scene, monkeypatch, tmp_path):
    upload_case(scene)
    manager = scene["lab"]
    update = [
        "update", CASE, "--model-received", "2020-01-06", "--form-received", "2020-01-06", "--patient-name",
        "--site-and-design", "11 全部被覆冠", "--method", "CAD/CAM 切削", "--material", "ジルコニア|Katana HT",
    ]  # fmt: skip
    done = run(monkeypatch, manager, *update, stdin=f"{PATIENT}\n")
    assert done.exit_code == 0, done.output
    assert "material_product_and_lot, final_inspection_on, delivered_on" in done.output
    refused = run(monkeypatch, manager, "finalize", CASE)
    assert refused.exit_code == 1 and "[record-incomplete]" in refused.output

    today = manager.gateway.clock().astimezone(JST).date().isoformat()
    more = ["update", CASE, "--material", "ジルコニア|Katana HT|ZR-2611", "--final-inspection", today, "--delivered",
            today]  # fmt: skip
    assert run(monkeypatch, manager, *more).exit_code == 0
    assert run(monkeypatch, manager, "finalize", CASE).exit_code == 0
    shown = run(monkeypatch, manager, "show", CASE)
    assert "version 1 (finalized)" in shown.output and PATIENT in shown.output and "技工 tanaka" in shown.output
    listed = run(monkeypatch, manager, "list")
    assert CASE in listed.output and PATIENT not in listed.output

    out = tmp_path / "record.pdf"
    exported = run(monkeypatch, manager, "export", "--case", CASE, "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert "歯科技工録" in pdf_text(out.read_bytes()) and not (tmp_path / "record.pdf.part").exists()
    wrong = run(monkeypatch, manager, "export", "--case", CASE, "--from", today, "--out", str(out))
    assert wrong.exit_code == 2
