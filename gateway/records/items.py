"""The items of a 歯科技工録 (G20): which the lab edits, which the quality-management guideline requires before a
version is finalized, and the date order a finalized record must keep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from gateway.japan import JST
from gateway.records.models import TechnicianRecord

EDITABLE = (
    "model_received_on", "form_received_on", "patient_name", "site_and_design", "method", "materials",
    "process_record", "final_inspection_on", "delivered_on",
)  # fmt: skip
REQUIRED = {
    "model_received_on": "model received date",
    "form_received_on": "instruction form received date",
    "patient_name": "patient name",
    "site_and_design": "site and design",
    "method": "method",
    "materials": "main materials",
    "material_product_and_lot": "product name and lot of every material",
    "final_inspection_on": "final inspection date",
    "delivered_on": "delivery date",
}


def describe(items: Sequence[str]) -> str:
    return ", ".join(REQUIRED.get(item, item) for item in items)


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def missing_items(record: TechnicianRecord) -> list[str]:
    """The required items the version lacks, in the guideline's order (empty when it may be finalized)."""
    missing = [item for item in ("model_received_on", "form_received_on") if getattr(record, item) is None]
    if record.patient_name_sealed is None:
        missing.append("patient_name")
    missing += [item for item in ("site_and_design", "method") if _blank(getattr(record, item))]
    if not record.materials:
        missing.append("materials")
    elif any(_blank(m.get("product")) or _blank(m.get("lot")) for m in record.materials):
        missing.append("material_product_and_lot")
    missing += [item for item in ("final_inspection_on", "delivered_on") if getattr(record, item) is None]
    return missing


def date_problems(record: TechnicianRecord, remote_process_ends: Sequence[datetime]) -> list[str]:
    """Dates out of order: inspection before receipt or before the last remote process, delivery before inspection."""
    problems = []
    inspected, delivered = record.final_inspection_on, record.delivered_on
    received = [d for d in (record.model_received_on, record.form_received_on) if d is not None]
    if inspected is not None and received and inspected < max(received):
        problems.append("the final inspection date is before the model or instruction form was received")
    if inspected is not None and remote_process_ends:
        last = max(remote_process_ends).astimezone(JST).date()
        if inspected < last:
            problems.append(f"the final inspection date is before the last remote process ({last.isoformat()})")
    if inspected is not None and delivered is not None and delivered < inspected:
        problems.append("the delivery date is before the final inspection date")
    return problems
