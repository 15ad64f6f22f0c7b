"""`GET /api/v1/compliance/report`: the lab's compliance report (G1–G21) for managers and auditors, as JSON, HTML
or PDF, in Japanese (default) or English. Every reading is audited as `compliance.report`."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request, Response

from gateway.compliance.report.design_data import installation_of
from gateway.compliance.report.render import MEDIA_TYPES, render
from gateway.compliance.report.service import ReportSources, compliance_report, record_reading
from gateway.deps import BackendsDep
from gateway.identity.auth import AuditReader, LabSession
from gateway.routing import TransactionalRoute

router = APIRouter(prefix="/api/v1/compliance", tags=["compliance"], route_class=TransactionalRoute)


@router.get("/report", response_class=Response)
def compliance_report_document(
    reader: AuditReader,
    session: LabSession,
    backends: BackendsDep,
    request: Request,
    file_format: Literal["json", "html", "pdf"] = Query(default="json", alias="format"),
    lang: Literal["ja", "en"] = "ja",
) -> Response:
    """One row per requirement G1–G21: met, not met or needs attention, with the evidence and who is behind each gap."""
    now = backends.clock()
    sources = ReportSources(installation_of(backends.settings), backends.keys.public_key(), request.app.state.publisher)
    report = compliance_report(session, reader.lab_id, now, sources)
    record_reading(session, reader, report, file_format, lang)
    name = f"compliance-report-{report.report_date.isoformat()}-{lang}.{file_format}"
    disposition = "attachment" if file_format == "pdf" else "inline"
    return Response(
        render(report, file_format, lang),
        media_type=MEDIA_TYPES[file_format],
        headers={"Content-Disposition": f'{disposition}; filename="{name}"'},
    )
