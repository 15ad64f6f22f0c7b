"""The 歯科技工録 API (G20): list, read a case with its versions, complete a draft, finalize, amend, export.

Routes parse and delegate; `gateway.records.service` decides who may do what and audits it."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from gateway.deps import BackendsDep
from gateway.identity.auth import AuditReader, LabSession, Manager, Member, requires
from gateway.identity.sessions import Principal
from gateway.records import schemas as s
from gateway.records import service
from gateway.records.export import ExportScope, export_records
from gateway.records.items import missing_items
from gateway.records.models import TechnicianRecord
from gateway.records.views import ProcessLine, VersionView, view_case
from gateway.routing import TransactionalRoute

router = APIRouter(prefix="/api/v1/records", tags=["records"], route_class=TransactionalRoute)
Editor = Annotated[Principal, Depends(requires("manager", "technician"))]


def record_out(record: TechnicianRecord, patient_name: str | None, covered: list[uuid.UUID]) -> s.RecordOut:
    return s.RecordOut(
        case_reference=record.case_reference, version=record.version, status=record.status,
        patient_reference=record.patient_reference, patient_name=patient_name,
        patient_name_recorded=record.patient_name_sealed is not None, model_received_on=record.model_received_on,
        form_received_on=record.form_received_on, site_and_design=record.site_and_design, method=record.method,
        materials=[s.MaterialOut(**m) for m in record.materials], process_record=record.process_record,
        final_inspection_on=record.final_inspection_on, delivered_on=record.delivered_on,
        amendment_reason=record.amendment_reason, updated_by=record.updated_by, updated_at=record.updated_at,
        finalized_by=record.finalized_by, finalized_at=record.finalized_at, missing=missing_items(record),
        remote_processes=covered,
    )  # fmt: skip


def _version_out(version: VersionView) -> s.RecordOut:
    return record_out(version.record, version.patient_name, [line.process.design_id for line in version.processes])


def _changed_out(session: Session, record: TechnicianRecord) -> s.RecordOut:
    """A version just changed: no patient name in the answer (read the case for it)."""
    covered = service.processes_of(record, service.remote_processes(session, record.case_reference))
    return record_out(record, None, [process.design_id for process in covered])


def _process_out(line: ProcessLine) -> s.RemoteProcessOut:
    process = line.process
    return s.RemoteProcessOut(
        design_id=process.design_id, account_id=process.account_id, technician_name=line.technician_name,
        process=process.process, location_label=process.location_label, location_address=process.location_address,
        device_id=process.device_id, device_name=line.device_name, started_at=process.started_at,
        ended_at=process.ended_at,
    )  # fmt: skip


def _summary_out(summary: service.RecordSummary) -> s.RecordSummaryOut:
    record = summary.record
    return s.RecordSummaryOut(
        case_reference=record.case_reference, version=record.version, status=record.status,
        patient_reference=record.patient_reference, updated_at=record.updated_at,
        last_remote_process_at=summary.last_remote_process_at, missing=summary.missing,
    )  # fmt: skip


@router.get("", response_model=list[s.RecordSummaryOut])
def list_records(
    member: Member, session: LabSession, status: Literal["draft", "finalized"] | None = None
) -> list[s.RecordSummaryOut]:
    """Each case's newest version (a technician: the cases they worked on), with the items it still lacks."""
    return [_summary_out(summary) for summary in service.list_records(session, member, status)]


@router.get("/export")
def export(
    reader: AuditReader,
    session: LabSession,
    backends: BackendsDep,
    case: str | None = Query(default=None, min_length=1, max_length=64),
    since: Annotated[date | None, Query(alias="from", description="First day (Japan time) of the period.")] = None,
    until: Annotated[date | None, Query(alias="to", description="Last day of the period, inclusive.")] = None,
    file_format: Literal["pdf", "csv"] = Query(default="pdf", alias="format"),
    lang: Literal["ja", "en"] = "ja",
    patient_names: bool | None = Query(default=None, description="Default: in a manager's PDF, not in a CSV."),
) -> Response:
    """One case, or the cases with remote work in a period, as PDF or CSV (managers; auditors without names)."""
    exported = export_records(session, reader, backends.keys, ExportScope(case, since, until), file_format, lang,
                              patient_names, backends.clock())  # fmt: skip
    headers = {"Content-Disposition": f'attachment; filename="{exported.filename}"', "Cache-Control": "no-store"}
    return Response(exported.content, media_type=exported.media_type, headers=headers)


@router.get("/{case_reference:path}", response_model=s.CaseOut)
def get_case(case_reference: str, member: Member, session: LabSession, backends: BackendsDep) -> s.CaseOut:
    """Every version of the case and its remote processes; the patient's name for a manager or its technician."""
    view = view_case(session, member, backends.keys, case_reference)
    return s.CaseOut(
        case_reference=case_reference,
        patient_reference=view.current.record.patient_reference,
        current=_version_out(view.current),
        versions=[_version_out(v) for v in view.versions],
        remote_processes=[_process_out(line) for line in view.processes],
    )


@router.patch("/{case_reference:path}", response_model=s.RecordOut)
def update_record(
    case_reference: str, body: s.RecordPatch, editor: Editor, session: LabSession, backends: BackendsDep
) -> s.RecordOut:
    """Complete the case's draft; a finalized version answers 409 record-finalized."""
    record = service.update_draft(session, editor, backends.keys, case_reference, body.changes(), backends.clock())
    return _changed_out(session, record)


@router.post("/{case_reference:path}/finalize", response_model=s.RecordOut)
def finalize_record(case_reference: str, manager: Manager, session: LabSession, backends: BackendsDep) -> s.RecordOut:
    """Close the draft; 422 record-incomplete names every missing item."""
    return _changed_out(session, service.finalize(session, manager, case_reference, backends.clock()))


@router.post("/{case_reference:path}/amend", response_model=s.RecordOut, status_code=201)
def amend_record(
    case_reference: str, body: s.AmendIn, manager: Manager, session: LabSession, backends: BackendsDep
) -> s.RecordOut:
    """Open version N+1 of a finalized record, with the reason; version N stays, superseded."""
    return _changed_out(session, service.amend(session, manager, case_reference, body.reason, backends.clock()))
