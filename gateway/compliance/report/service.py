"""The compliance report (G1–G21): one row per requirement with its status from live data, its evidence and the
people, devices or cases behind each gap. Reading it is itself audited (`compliance.report`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.audit.publication import Publisher
from gateway.audit.service import record
from gateway.compliance.report import design_data as data
from gateway.compliance.report import devices, paperwork, people
from gateway.compliance.report.facts import lab_facts
from gateway.compliance.report.model import ComplianceReport, Count, Row
from gateway.compliance.report.requirements import REQUIREMENTS
from gateway.identity.sessions import Principal, principal_entry

MEASURES = tuple(f"G{n}" for n in range(5, 20))  # what G4 summarises: the guideline's security measures


@dataclass(frozen=True)
class ReportSources:
    """What the report reads besides the database: the gateway's setup and its audit keys (G11, G14, G19)."""

    installation: data.Installation
    public_key: bytes
    publisher: Publisher | None


def _with_measures(g4: Row, rows: dict[str, Row]) -> Row:
    """G4 shows how the measures G5–G19 stand; its status stays its own (each measure has its own row)."""
    by_status = {status: [m for m in MEASURES if rows[m].status == status] for status in ("not-met", "attention")}
    met = sum(1 for m in MEASURES if rows[m].status == "met")
    evidence = {**g4.evidence, "measures_met": Count(met, len(MEASURES)),
                "measures_not_met": by_status["not-met"], "measures_attention": by_status["attention"]}  # fmt: skip
    return replace(g4, evidence=evidence)


def compliance_report(session: Session, lab_id: uuid.UUID, now: datetime, sources: ReportSources) -> ComplianceReport:
    """Build the report of the lab the session is bound to, as of `now` (G1–G21)."""
    facts = lab_facts(session, lab_id, now)
    built = [
        people.g1_licensed_workers(facts),
        data.g2_milling_in_the_lab(session),
        people.g3_roster(session, facts),
        data.g4_end_to_end(session, facts),
        people.g5_privacy_filter(facts),
        people.g6_identity_and_mfa(session, facts),
        devices.g7_device_security(facts),
        devices.g8_device_ledger(facts),
        devices.g9_wireless(facts),
        people.g10_passwords(session, facts),
        data.g11_secure_delivery(session, sources.installation),
        data.g12_shared_storage(session, facts),
        data.g13_no_file_services(session, facts),
        data.g14_storage(session, facts, sources.installation),
        devices.g15_media_and_encryption(facts),
        people.g16_security_policy(session, facts),
        paperwork.g17_incident_plan(session, facts),
        paperwork.g18_incidents(session, facts),
        paperwork.g19_audit_logs(session, facts, sources.public_key, sources.publisher),
        paperwork.g20_technician_records(session, facts),
        people.g21_training(session, facts),
    ]
    rows = {r.id: r for r in built}
    assert list(rows) == [requirement.id for requirement in REQUIREMENTS]
    rows["G4"] = _with_measures(rows["G4"], rows)
    return ComplianceReport(now, facts.today, lab_id, facts.lab.name, facts.policy.version, tuple(rows.values()))


def record_reading(session: Session, reader: Principal, report: ComplianceReport, file_format: str, lang: str) -> None:
    """Put the reading of the report on the lab's audit chain, with what it said (G19)."""
    not_met = [r.id for r in report.rows if r.status == "not-met"]
    attention = [r.id for r in report.rows if r.status == "attention"]
    details = {"format": file_format, "lang": lang, "summary": report.summary(), "not_met": not_met,
               "attention": attention}  # fmt: skip
    record(session, principal_entry(reader, "operation", "compliance.report", f"lab:{reader.lab_id}", details=details))
