"""`dentgate record …`: the 歯科技工録 of each case (G20): list, show, complete the draft, finalize, amend, export.

The patient's name is never taken from the command line (shell history and process lists keep it): `update
--patient-name` asks for it, or reads the first line of standard input."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from clients.commands.common import emit, handles_errors, json_option, logged_in, table

DAY = click.DateTime(formats=["%Y-%m-%d"])
SUMMARY_COLUMNS = ["case_reference", "version", "status", "patient_reference", "last_remote_process_at", "missing"]
PROCESS_COLUMNS = ["technician_name", "process", "location_label", "device_name", "started_at", "ended_at", "design_id"]
ITEMS = ("model_received_on", "form_received_on", "patient_name", "site_and_design", "method", "materials",
         "process_record", "final_inspection_on", "delivered_on")  # fmt: skip


def case_path(case: str, action: str = "") -> str:
    return f"/api/v1/records/{quote(case, safe='')}{action}"


@click.group("record")
def record() -> None:
    """The 歯科技工録 (dental technician record) of each case: complete, finalize, amend, export."""


@record.command("list")
@click.option("--status", type=click.Choice(["draft", "finalized"]), help="Only cases whose newest version is this.")
@json_option
@handles_errors
def list_records(status: str | None, as_json: bool) -> None:
    """Each case's newest version with the items it still lacks (patients by their reference only)."""
    rows = logged_in().get("/api/v1/records" + (f"?status={status}" if status else ""))
    shown = [{**r, "missing": ", ".join(r["missing"]) or "-"} for r in rows]
    emit(rows, as_json, lambda _: table(shown, SUMMARY_COLUMNS))


def _case_text(case: dict[str, Any]) -> str:
    current = case["current"]
    patient = current["patient_name"] or ("(recorded)" if current["patient_name_recorded"] else "(not recorded)")
    lines = [f"Case {case['case_reference']}, version {current['version']} ({current['status']})",
             f"  patient: {patient} [{case['patient_reference']}]"]  # fmt: skip
    for item in ITEMS[3:]:
        value = current[item]
        if item == "materials":
            value = "; ".join(f"{m['name']} (product {m['product'] or '-'}, lot {m['lot'] or '-'})" for m in value)
        lines.append(f"  {item}: {value if value not in (None, '') else '-'}")
    lines.append(f"  received: model {current['model_received_on'] or '-'}, form {current['form_received_on'] or '-'}")
    if current["missing"]:
        lines.append(f"  missing before it can be finalized: {', '.join(current['missing'])}")
    versions = ", ".join(f"{v['version']} {v['status']}" for v in case["versions"])
    lines += [f"  versions: {versions}", "Remote processes:", table(case["remote_processes"], PROCESS_COLUMNS)]
    return "\n".join(lines)


@record.command("show")
@click.argument("case")
@json_option
@handles_errors
def show(case: str, as_json: bool) -> None:
    """Every version of the case and its remote processes."""
    emit(logged_in().get(case_path(case)), as_json, _case_text)


def _material(text: str) -> dict[str, str | None]:
    name, _, rest = text.partition("|")
    product, _, lot = rest.partition("|")
    if not name.strip():
        raise click.BadParameter("write a material as NAME|PRODUCT|LOT (product and lot may follow later)")
    return {"name": name.strip(), "product": product.strip() or None, "lot": lot.strip() or None}


def _read_patient_name() -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline().strip()
        if not line:
            raise click.ClickException("no patient name on standard input")
        return line
    return click.prompt("Patient name").strip()


def _changes(options: dict[str, Any], materials: tuple[str, ...], patient: bool, clear: tuple[str, ...]) -> dict:
    changes: dict[str, Any] = {}
    for item, value in options.items():
        if value is not None:
            changes[item] = value.date().isoformat() if isinstance(value, datetime) else value
    if materials:
        changes["materials"] = [_material(m) for m in materials]
    if patient:
        changes["patient_name"] = _read_patient_name()
    for item in clear:
        changes[item] = [] if item == "materials" else None
    if not changes:
        raise click.UsageError("name at least one item to set or --clear")
    return changes


@record.command("update")
@click.argument("case")
@click.option("--model-received", "model_received_on", type=DAY, help="Day the model was received (YYYY-MM-DD).")
@click.option("--form-received", "form_received_on", type=DAY, help="Day the instruction form was received.")
@click.option("--patient-name", "patient", is_flag=True, help="Ask for the patient's name (or read stdin).")
@click.option("--site-and-design", help="Site (teeth) and design, e.g. '11 全部被覆冠'.")
@click.option("--method", help="How it is made, e.g. 'CAD/CAM 切削'.")
@click.option("--material", "materials", multiple=True, help="NAME|PRODUCT|LOT; repeat for each (replaces the list).")
@click.option("--process-record", help="The process record (工程の記録).")
@click.option("--final-inspection", "final_inspection_on", type=DAY, help="Day of the final inspection.")
@click.option("--delivered", "delivered_on", type=DAY, help="Day of delivery.")
@click.option("--clear", multiple=True, type=click.Choice(ITEMS), help="Empty this item (repeatable).")
@json_option
@handles_errors
def update(case: str, patient: bool, materials: tuple[str, ...], clear: tuple[str, ...], as_json: bool,
           **options: Any) -> None:  # fmt: skip
    """Complete the case's draft; a finalized version is refused (a manager amends it)."""
    result = logged_in().request("PATCH", case_path(case), _changes(options, materials, patient, clear))
    missing = ", ".join(result["missing"]) or "nothing: a manager may finalize it"
    emit(result, as_json, f"Case {case} version {result['version']} updated; still missing: {missing}")


@record.command("finalize")
@click.argument("case")
@json_option
@handles_errors
def finalize(case: str, as_json: bool) -> None:
    """Close the draft (managers); refused with every missing item named."""
    result = logged_in().post(case_path(case, "/finalize"))
    emit(result, as_json, f"Case {case} version {result['version']} finalized.")


@record.command("amend")
@click.argument("case")
@click.option("--reason", required=True, help="Why the finalized record is amended.")
@json_option
@handles_errors
def amend(case: str, reason: str, as_json: bool) -> None:
    """Open a new version of a finalized record to correct it (managers); the old version is kept."""
    result = logged_in().post(case_path(case, "/amend"), {"reason": reason})
    emit(result, as_json, f"Case {case} version {result['version']} opened as a draft (the previous is superseded).")


@record.command("export")
@click.option("--case", help="One case (instruction form number).")
@click.option("--from", "since", type=DAY, help="First day of a period (remote work started that day or later).")
@click.option("--to", "until", type=DAY, help="Last day of the period.")
@click.option("--format", "file_format", type=click.Choice(["pdf", "csv"]), default="pdf", show_default=True)
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
@click.option("--patient-names/--no-patient-names", default=None, help="Default: in a manager's PDF, not in a CSV.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@json_option
@handles_errors
def export(case: str | None, since: datetime | None, until: datetime | None, file_format: str, lang: str,
           patient_names: bool | None, out: Path, as_json: bool) -> None:  # fmt: skip
    """Write the record of one case, or of the cases with remote work in a period, as PDF or CSV."""
    one_case = case is not None and since is None and until is None
    if not one_case and (case is not None or since is None or until is None):
        raise click.UsageError("give --case, or both --from and --to")
    params = {"format": file_format, "lang": lang} | ({"case": case} if case else {})
    if since and until:
        params |= {"from": since.date().isoformat(), "to": until.date().isoformat()}
    if patient_names is not None:
        params["patient_names"] = str(patient_names).lower()
    partial = out.with_name(out.name + ".part")
    try:
        with logged_in().stream("/api/v1/records/export", params) as response, partial.open("wb") as file:
            for chunk in response.iter_bytes():
                file.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    emit({"file": str(out), "bytes": out.stat().st_size}, as_json, f"Written to {out} ({out.stat().st_size} bytes).")
