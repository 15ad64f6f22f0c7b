"""Exporting the 歯科技工録 (G20) for one case or a period, as PDF or CSV, by a manager or an auditor; audited.

A period selects the cases with a remote process that started on a day from `since` to `until` (Japan time)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import record as audit
from gateway.errors import DentGateError
from gateway.identity.errors import Forbidden
from gateway.identity.models import Lab
from gateway.identity.sessions import Principal, principal_entry
from gateway.japan import JST
from gateway.keys import KeyProvider
from gateway.records.models import RemoteProcess
from gateway.records.render import Heading, records_csv, records_pdf
from gateway.records.service import case_versions
from gateway.records.views import build_case_view
from gateway.spreadsheet import MEDIA_TYPES

ExportFormat = Literal["pdf", "csv"]
Language = Literal["ja", "en"]
MAX_PERIOD_DAYS = 366
EXPORTERS = ("manager", "auditor")


class ExportScopeInvalid(DentGateError):
    code = "export-scope-invalid"
    status = 422
    title = "Name one case, or a period of at most a year"


@dataclass(frozen=True)
class ExportScope:
    """One case, or the days `since` to `until` (inclusive, Japan time)."""

    case_reference: str | None = None
    since: date | None = None
    until: date | None = None

    def check(self) -> None:
        if self.case_reference is not None:
            if self.since is not None or self.until is not None:
                raise ExportScopeInvalid("name either a case or a period, not both")
            return
        if self.since is None or self.until is None:
            raise ExportScopeInvalid("name a case, or a period with both its first and last day")
        if self.until < self.since or (self.until - self.since).days >= MAX_PERIOD_DAYS:
            raise ExportScopeInvalid(f"a period runs forward and covers at most {MAX_PERIOD_DAYS} days")

    def details(self) -> dict[str, str | None]:
        if self.case_reference is not None:
            return {"case": self.case_reference}
        assert self.since is not None and self.until is not None
        return {"from": self.since.isoformat(), "to": self.until.isoformat()}

    def file_stem(self) -> str:
        about = self.case_reference or f"{self.since}_{self.until}"
        return "dentgate-record-" + re.sub(r"[^A-Za-z0-9._-]", "_", about)


@dataclass(frozen=True)
class ExportFile:
    content: bytes
    media_type: str
    filename: str


def cases_in_period(session: Session, since: date, until: date) -> list[str]:
    """The cases with a remote process that started on a day from `since` to `until` (Japan time)."""
    start = datetime.combine(since, time(), JST)
    end = datetime.combine(until + timedelta(days=1), time(), JST)
    return list(
        session.scalars(
            sa.select(RemoteProcess.case_reference)
            .where(RemoteProcess.started_at >= start, RemoteProcess.started_at < end)
            .distinct()
            .order_by(RemoteProcess.case_reference)
        )
    )


def _names_in_export(principal: Principal, file_format: ExportFormat, patient_names: bool | None) -> bool:
    """A manager's PDF carries the patient's name (the record must); a CSV only when asked; an auditor's never."""
    if principal.role == "auditor":
        if patient_names:
            reason = "an auditor's export never carries patient names"
            entry = principal_entry(principal, "operation", "record.export", f"lab:{principal.lab_id}", "denied",
                                    reason)  # fmt: skip
            raise Forbidden(reason).audited(entry)
        return False
    return patient_names if patient_names is not None else file_format == "pdf"


def export_records(
    session: Session,
    principal: Principal,
    keys: KeyProvider,
    scope: ExportScope,
    file_format: ExportFormat,
    lang: Language,
    patient_names: bool | None,
    now: datetime,
) -> ExportFile:
    """The current version of each case in `scope` as one PDF or CSV (G20). Audited with the scope, format and
    whether patient names are in it; never the names."""
    if principal.role not in EXPORTERS:
        raise Forbidden("the 歯科技工録 is exported by a manager or an auditor")
    scope.check()
    names = _names_in_export(principal, file_format, patient_names)
    if scope.case_reference is not None:
        cases = [scope.case_reference]
    else:
        assert scope.since is not None and scope.until is not None
        cases = cases_in_period(session, scope.since, scope.until)
    views = [
        build_case_view(session, keys, case_versions(session, principal, case, "record.export"), names)
        for case in cases
    ]
    if file_format == "pdf":
        lab = session.get(Lab, principal.lab_id)
        heading = Heading(lab.name if lab else "", now, scope.case_reference, scope.since, scope.until)
        content = records_pdf(heading, views, lang)
    else:
        content = records_csv(views, lang)
    details = {**scope.details(), "format": file_format, "lang": lang, "cases": len(views), "patient_names": names}
    audit(session, principal_entry(principal, "operation", "record.export", f"lab:{principal.lab_id}",
                                   details=details))  # fmt: skip
    return ExportFile(content, MEDIA_TYPES[file_format], f"{scope.file_stem()}.{file_format}")
