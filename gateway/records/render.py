"""The 歯科技工録 as documents (G20): a PDF in Japanese (or English) and a CSV for Excel (UTF-8 with BOM).

Times are in Japan time. A CSV cell that a spreadsheet would run as a formula is prefixed with `'`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gateway.japan import JST
from gateway.pdf import PdfDocument, Section, Table, render_pdf
from gateway.records.views import CaseView, ProcessLine, VersionView
from gateway.spreadsheet import spreadsheet_csv

LABELS: dict[str, dict[str, str]] = {
    "ja": {
        "title": "歯科技工録", "case": "指示書番号", "version": "版", "status": "状態",
        "received": "模型・指示書の受領日", "model": "模型", "form": "指示書", "patient": "患者",
        "patient_reference": "患者参照番号", "site_and_design": "部位及び設計", "method": "作製方法",
        "materials": "主な材料（製品名・ロット）", "product": "製品名", "lot": "ロット", "process_record": "工程の記録",
        "final_inspection_on": "最終検査日", "delivered_on": "納品日", "remote": "遠隔工程", "technician": "歯科技工士",
        "process": "工程", "location": "場所", "address": "所在地", "device": "端末", "start": "開始", "end": "終了",
        "design": "設計ID", "history": "版の履歴", "finalized_at": "確定日時", "amendment_reason": "訂正の理由",
        "lab": "歯科技工所", "exported_at": "出力日時", "period": "期間（遠隔工程の開始日）", "hidden": "氏名は非表示",
        "unrecorded": "未記入", "none": "なし", "note": "注記", "(": "（", ")": "）",
        "model_received_on": "模型の受領日", "form_received_on": "指示書の受領日",
        "draft": "作成中", "finalized": "確定", "superseded": "訂正により失効",
        "times": "開始は端末で設計を暗号化・署名した時刻、終了は歯科技工所が受領した時刻（日本時間）。",
    },
    "en": {
        "title": "Dental technician record (歯科技工録)", "case": "Instruction form number", "version": "Version",
        "status": "Status", "received": "Model / instruction form received", "model": "model", "form": "form",
        "patient": "Patient", "patient_reference": "Patient reference", "site_and_design": "Site and design",
        "method": "Method", "materials": "Main materials (product, lot)", "product": "product", "lot": "lot",
        "process_record": "Process record", "final_inspection_on": "Final inspection", "delivered_on": "Delivered",
        "remote": "Remote processes", "technician": "Dental technician", "process": "Process", "location": "Location",
        "address": "Address", "device": "Device", "start": "Start", "end": "End", "design": "Design ID",
        "history": "Versions", "finalized_at": "Finalized", "amendment_reason": "Reason for amendment", "lab": "Lab",
        "exported_at": "Exported", "period": "Period (remote process start date)", "hidden": "name not shown",
        "unrecorded": "not recorded", "none": "none", "note": "Note", "(": " (", ")": ")",
        "model_received_on": "Model received", "form_received_on": "Instruction form received",
        "draft": "draft", "finalized": "finalized",
        "superseded": "superseded by an amendment",
        "times": "Start: when the device encrypted and signed the design; end: when the lab received it (Japan time).",
    },
}  # fmt: skip


@dataclass(frozen=True)
class Heading:
    """Who exported what: the lab, when, and the case or period covered."""

    lab_name: str
    exported_at: datetime
    case_reference: str | None = None
    since: date | None = None
    until: date | None = None


def _time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def _day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def _materials(record_materials: Sequence[dict[str, Any]], text: dict[str, str]) -> str:
    parts = [
        f"{m['name']}{text['(']}{text['product']}: {m.get('product') or '-'}, {text['lot']}: {m.get('lot') or '-'}"
        f"{text[')']}"
        for m in record_materials
    ]
    return "; ".join(parts) or text["unrecorded"]


def _patient(version: VersionView, names_shown: bool, text: dict[str, str]) -> str:
    reference = version.record.patient_reference
    if not names_shown:
        return f"{reference}{text['(']}{text['hidden']}{text[')']}"
    return f"{version.patient_name or text['unrecorded']}{text['(']}{reference}{text[')']}"


def _record_fields(version: VersionView, names_shown: bool, text: dict[str, str]) -> list[tuple[str, object]]:
    record = version.record
    received = f"{text['model']} {_day(record.model_received_on)} / {text['form']} {_day(record.form_received_on)}"
    fields: list[tuple[str, object]] = [
        (text["case"], record.case_reference),
        (text["received"], received),
        (text["patient"], _patient(version, names_shown, text)),
        (text["site_and_design"], record.site_and_design),
        (text["method"], record.method),
        (text["materials"], _materials(record.materials, text)),
        (text["process_record"], record.process_record),
        (text["final_inspection_on"], _day(record.final_inspection_on)),
        (text["delivered_on"], _day(record.delivered_on)),
    ]
    if record.amendment_reason:
        fields.append((text["amendment_reason"], record.amendment_reason))
    return fields


def _location(line: ProcessLine, text: dict[str, str]) -> str:
    label, address = line.process.location_label, line.process.location_address
    return f"{label}{text['(']}{address}{text[')']}" if address else label


def _process_table(lines: list[ProcessLine], text: dict[str, str]) -> Table:
    headers = [text[k] for k in ("technician", "process", "location", "device", "start", "end", "design")]
    rows = [
        [line.technician_name, line.process.process, _location(line, text),
         f"{line.device_name} ({str(line.process.device_id)[:8]})", _time(line.process.started_at),
         _time(line.process.ended_at), str(line.process.design_id)]
        for line in lines
    ]  # fmt: skip
    return Table(headers, rows, col_widths=(14, 9, 22, 13, 11, 11, 20))


def _history_table(case: CaseView, text: dict[str, str]) -> Table:
    headers = [text["version"], text["status"], text["finalized_at"], text["amendment_reason"]]
    rows = [
        [v.record.version, text[v.record.status], _time(v.record.finalized_at), v.record.amendment_reason or ""]
        for v in case.versions
    ]
    return Table(headers, rows, col_widths=(8, 20, 20, 52))


def _case_sections(case: CaseView, text: dict[str, str]) -> list[Section]:
    current = case.current
    record = current.record
    status = f"{text['(']}{text[record.status]}{text[')']}"
    heading = f"{text['case']} {record.case_reference} — {text['version']} {record.version}{status}"
    sections = [Section(heading, fields=_record_fields(current, case.names_shown, text))]
    tables = [_process_table(current.processes, text)] if current.processes else []
    sections.append(Section(text["remote"], tables=tables, paragraphs=[] if tables else [text["none"]]))
    if len(case.versions) > 1:
        sections.append(Section(text["history"], tables=[_history_table(case, text)]))
    return sections


def records_pdf(heading: Heading, cases: list[CaseView], lang: str) -> bytes:
    """One document: a block per case (its current version) with its remote processes and version history."""
    text = LABELS[lang]
    about = [f"{text['lab']}: {heading.lab_name}", f"{text['exported_at']}: {_time(heading.exported_at)}"]
    if heading.since is not None:
        about.append(f"{text['period']}: {_day(heading.since)} – {_day(heading.until)}")
    sections = [section for case in cases for section in _case_sections(case, text)]
    if not cases:
        sections = [Section(text["remote"], paragraphs=[text["none"]])]
    sections.append(Section(text["note"], paragraphs=[text["times"]]))
    return render_pdf(PdfDocument(text["title"], "  ".join(about), sections, landscape=True))


def records_csv(cases: list[CaseView], lang: str) -> bytes:
    """One row per remote process of each case's current version (the record's items repeated), UTF-8 with BOM."""
    text = LABELS[lang]
    names_shown = any(case.names_shown for case in cases)
    keys = ["case", "version", "status", "patient_reference", *(["patient"] if names_shown else []),
            "model_received_on", "form_received_on",
            "site_and_design", "method", "materials", "process_record", "final_inspection_on", "delivered_on",
            "technician", "process", "location", "address", "device", "start", "end", "design"]  # fmt: skip
    rows = []
    for case in cases:
        version, record = case.current, case.current.record
        item = [record.case_reference, record.version, text[record.status], record.patient_reference,
                *([version.patient_name or ""] if names_shown else []), _day(record.model_received_on),
                _day(record.form_received_on), record.site_and_design, record.method,
                _materials(record.materials, text), record.process_record, _day(record.final_inspection_on),
                _day(record.delivered_on)]  # fmt: skip
        for line in version.processes or [None]:
            remote = [] if line is None else [
                line.technician_name, line.process.process, line.process.location_label, line.process.location_address,
                line.device_name, _time(line.process.started_at), _time(line.process.ended_at),
                str(line.process.design_id),
            ]  # fmt: skip
            rows.append(item + remote)
    return spreadsheet_csv([text[k] for k in keys], rows)
