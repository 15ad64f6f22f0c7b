"""The 歯科技工録 (G20): each case's record, started by its first upload, completed by the lab, finalized and amended
in versions. The patient's name is stored only sealed; lists, logs and audit details carry the pseudonym."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry
from gateway.audit.service import record as audit
from gateway.errors import DentGateError
from gateway.identity.errors import Conflict, Forbidden, NotFound
from gateway.identity.models import Account
from gateway.identity.profiles import current_profile
from gateway.identity.sessions import Principal, principal_entry
from gateway.japan import JST
from gateway.keys import KeyProvider
from gateway.keys.fields import open_field, seal_field
from gateway.policy import SecurityPolicy
from gateway.records.items import EDITABLE, date_problems, describe, missing_items
from gateway.records.models import RemoteProcess, TechnicianRecord
from gateway.transfer.manifest import SignedManifest
from gateway.transfer.models import Design

EDITORS = ("manager", "technician")


class RecordNotFound(NotFound):
    code = "record-not-found"
    title = "No 歯科技工録 for this case"


class RecordFinalized(Conflict):
    code = "record-finalized"
    title = "A finalized 歯科技工録 cannot be changed"


class RecordIncomplete(DentGateError):
    code = "record-incomplete"
    status = 422
    title = "The 歯科技工録 lacks required items"

    def __init__(self, record: TechnicianRecord, missing: list[str], problems: list[str]) -> None:
        parts = ([f"missing: {describe(missing)}"] if missing else []) + problems
        super().__init__(f"version {record.version} of case {record.case_reference} cannot be finalized; "
                         + "; ".join(parts))  # fmt: skip
        self.missing, self.problems = missing, problems

    def problem_extra(self) -> dict[str, Any]:
        return {"missing": self.missing, "problems": self.problems}


def _new_patient_reference(session: Session) -> str:
    """A random pseudonym for the case's patient ("P-" + 8 base32 characters), unused in the lab."""
    while True:
        reference = "P-" + base64.b32encode(secrets.token_bytes(5)).decode("ascii")
        taken = session.scalar(sa.select(TechnicianRecord.id).where(TechnicianRecord.patient_reference == reference))
        if taken is None:
            return reference


def latest_version(session: Session, case_reference: str) -> TechnicianRecord | None:
    return session.scalar(
        sa.select(TechnicianRecord)
        .where(TechnicianRecord.case_reference == case_reference)
        .order_by(TechnicianRecord.version.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


def _case_record(session: Session, design: Design, case_reference: str) -> tuple[TechnicianRecord, bool]:
    """The case's newest version, or a new draft (version 1); True when it was created now."""
    existing = latest_version(session, case_reference)
    if existing is not None:
        return existing, False
    draft = TechnicianRecord(
        lab_id=design.lab_id, case_reference=case_reference, version=1, status="draft",
        patient_reference=_new_patient_reference(session), materials=[], updated_by=design.account_id,
        updated_at=design.committed_at,
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(draft)
    except IntegrityError:  # another upload of the case created it at the same moment (PostgreSQL): use theirs
        existing = latest_version(session, case_reference)
        if existing is None:
            raise
        return existing, False
    return draft, True


def add_remote_process(session: Session, design: Design, signed: SignedManifest, principal: Principal) -> RemoteProcess:
    """Record a committed design as a remote process of its case, starting the case's draft record (G20).

    Start is the device-signed sealing time, end the gateway's receipt: see docs/compliance-records.md."""
    manifest = signed.manifest
    record, created = _case_record(session, design, manifest.case_reference)
    account = session.get(Account, design.account_id)
    profile = current_profile(session, account) if account is not None else None
    label, address = (profile.location_label, profile.location_address) if profile else (manifest.remote_location, "")
    process = RemoteProcess(
        lab_id=design.lab_id, case_reference=manifest.case_reference, design_id=design.id,
        account_id=design.account_id, device_id=design.device_id, process=manifest.process, location_label=label,
        location_address=address, started_at=min(manifest.created_at, design.committed_at),
        ended_at=design.committed_at, recorded_at=design.committed_at,
    )  # fmt: skip
    session.add(process)
    session.flush()
    details = {"case": record.case_reference, "version": record.version, "design": str(design.id),
               "process": manifest.process, "location": label, "record_started": created}  # fmt: skip
    audit(session, principal_entry(principal, "operation", "record.remote-process", f"record:{record.id}",
                                   details=details))  # fmt: skip
    return process


def _patient_context(record: TechnicianRecord) -> str:
    """Bound to the lab, the case and its pseudonym: stable across versions, useless on another record."""
    return f"technician-record:patient-name:{record.lab_id}:{record.case_reference}:{record.patient_reference}"


def patient_name(keys: KeyProvider, record: TechnicianRecord) -> str | None:
    """The patient's name in clear, for those the caller checked may see it; None when not yet recorded."""
    if record.patient_name_sealed is None:
        return None
    return open_field(keys, record.patient_name_sealed, _patient_context(record)).decode("utf-8")


def may_see_patient_name(principal: Principal) -> bool:
    """Managers and the case's technicians (who hold the instruction form anyway); never auditors."""
    return principal.role in EDITORS


def works_on(session: Session, principal: Principal, case_reference: str) -> bool:
    """True when the caller did a remote process on the case."""
    found = session.scalar(
        sa.select(RemoteProcess.id)
        .where(RemoteProcess.case_reference == case_reference, RemoteProcess.account_id == principal.account_id)
        .limit(1)
    )
    return found is not None


def case_versions(
    session: Session, principal: Principal, case_reference: str, action: str, lock: bool = False
) -> list[TechnicianRecord]:
    """Every version of the case, oldest first, if the caller may see it (a technician: only their cases).
    `lock` row-locks them (PostgreSQL) so an edit cannot land on a version another request is finalizing."""
    query = sa.select(TechnicianRecord).where(TechnicianRecord.case_reference == case_reference)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    versions = list(session.scalars(query.order_by(TechnicianRecord.version)))
    if not versions:
        raise RecordNotFound(f"no 歯科技工録 for case {case_reference!r} in this lab")
    if principal.role == "technician" and not works_on(session, principal, case_reference):
        reason = "technicians see and edit only the records of cases they did remote work on"
        entry = principal_entry(principal, "operation", action, f"record:{versions[-1].id}", "denied", reason,
                                {"case": case_reference})  # fmt: skip
        raise Forbidden(reason).audited(entry)
    return versions


def _require_role(principal: Principal, roles: tuple[str, ...], what: str) -> None:
    if principal.role not in roles:
        raise Forbidden(f"only a {' or '.join(roles)} may {what} a 歯科技工録")


def _require_draft(record: TechnicianRecord) -> None:
    if record.status != "draft":
        raise RecordFinalized(
            f"version {record.version} of case {record.case_reference} is {record.status} and cannot be changed; "
            "a manager amends it with a reason, which makes a new version to edit"
        )


def _record_event(principal: Principal, action: str, record: TechnicianRecord, reason: str | None = None,
                  outcome: str = "success", **details: object) -> AuditEntry:  # fmt: skip
    details = {"case": record.case_reference, "version": record.version, **details}
    return principal_entry(principal, "operation", action, f"record:{record.id}", outcome, reason, details)


def _apply(keys: KeyProvider, record: TechnicianRecord, item: str, value: Any) -> bool:
    """Set one item; True when it changed. The patient's name is sealed, never kept in clear."""
    if item == "patient_name":
        if value == patient_name(keys, record):
            return False
        record.patient_name_sealed = None if value is None else seal_field(
            keys, value.encode("utf-8"), _patient_context(record)
        )  # fmt: skip
        return True
    if item == "materials":
        value = [{"name": m["name"], "product": m.get("product"), "lot": m.get("lot")} for m in value or []]
    if getattr(record, item) == value:
        return False
    setattr(record, item, value)
    return True


def update_draft(
    session: Session, principal: Principal, keys: KeyProvider, case_reference: str, changes: dict[str, Any],
    now: datetime,
) -> TechnicianRecord:  # fmt: skip
    """Complete the case's draft: a manager any case, a technician only cases they worked on (G20). Audited with
    the names of the items changed, never their values."""
    _require_role(principal, EDITORS, "edit")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise Conflict(f"{', '.join(unknown)} cannot be edited; editable items: {', '.join(EDITABLE)}")
    record = case_versions(session, principal, case_reference, "record.update", lock=True)[-1]
    _require_draft(record)
    changed = [item for item in EDITABLE if item in changes and _apply(keys, record, item, changes[item])]
    if changed:
        record.updated_by, record.updated_at = principal.account_id, now
        session.flush()
    audit(session, _record_event(principal, "record.update", record, fields=changed))
    return record


def finalize(session: Session, principal: Principal, case_reference: str, now: datetime) -> TechnicianRecord:
    """A manager closes the draft once every required item is there and the dates agree (G20); it is then
    immutable. A refusal names what is missing and is kept on the chain."""
    _require_role(principal, ("manager",), "finalize")
    record = case_versions(session, principal, case_reference, "record.finalize", lock=True)[-1]
    _require_draft(record)
    processes = remote_processes(session, case_reference)
    missing = missing_items(record)
    problems = date_problems(record, [p.ended_at for p in processes])
    if missing or problems:
        entry = _record_event(principal, "record.finalize", record, "incomplete", "failure", missing=missing)
        raise RecordIncomplete(record, missing, problems).audited(entry)
    record.status, record.finalized_by, record.finalized_at = "finalized", principal.account_id, now
    session.flush()
    audit(session, _record_event(principal, "record.finalize", record, remote_processes=len(processes)))
    return record


def amend(session: Session, principal: Principal, case_reference: str, reason: str, now: datetime) -> TechnicianRecord:
    """A manager reopens a finalized record as version N+1 (a copy, with the reason); version N is kept,
    superseded (G20)."""
    _require_role(principal, ("manager",), "amend")
    current = case_versions(session, principal, case_reference, "record.amend", lock=True)[-1]
    if current.status != "finalized":
        raise Conflict(f"version {current.version} of case {case_reference} is {current.status}: only a finalized "
                       "version is amended (edit a draft)")  # fmt: skip
    copied = {item: getattr(current, item) for item in EDITABLE if item not in ("patient_name", "materials")}
    amended = TechnicianRecord(
        lab_id=current.lab_id, case_reference=current.case_reference, version=current.version + 1, status="draft",
        patient_reference=current.patient_reference, patient_name_sealed=current.patient_name_sealed,
        materials=[dict(m) for m in current.materials], amendment_reason=reason, updated_by=principal.account_id,
        updated_at=now, **copied,
    )  # fmt: skip
    current.status = "superseded"
    session.add(amended)
    session.flush()
    audit(session, _record_event(principal, "record.amend", amended, reason, supersedes=current.version))
    return amended


def remote_processes(session: Session, case_reference: str) -> list[RemoteProcess]:
    return list(
        session.scalars(
            sa.select(RemoteProcess)
            .where(RemoteProcess.case_reference == case_reference)
            .order_by(RemoteProcess.started_at, RemoteProcess.id)
        )
    )


def processes_of(record: TechnicianRecord, processes: list[RemoteProcess]) -> list[RemoteProcess]:
    """The remote processes a version covers: a finalized (or superseded) one only those recorded before it was
    finalized, so a later upload never changes a closed version."""
    if record.finalized_at is None:
        return processes
    return [p for p in processes if p.recorded_at <= record.finalized_at]


def newest_versions() -> sa.Select[tuple[TechnicianRecord]]:
    """A query of each case's newest version."""
    newest = (
        sa.select(TechnicianRecord.case_reference, sa.func.max(TechnicianRecord.version).label("version"))
        .group_by(TechnicianRecord.case_reference)
        .subquery()
    )
    same = sa.and_(
        TechnicianRecord.case_reference == newest.c.case_reference, TechnicianRecord.version == newest.c.version
    )
    return sa.select(TechnicianRecord).join(newest, same)


@dataclass(frozen=True)
class RecordSummary:
    """A case's newest version in a list: no patient name, only its pseudonym."""

    record: TechnicianRecord
    last_remote_process_at: datetime | None
    missing: list[str]


def list_records(session: Session, principal: Principal, status: str | None = None) -> list[RecordSummary]:
    """The newest version of each case the caller may see (a technician: cases they worked on) (G20)."""
    query = newest_versions()
    if principal.role == "technician":
        mine = sa.select(RemoteProcess.case_reference).where(RemoteProcess.account_id == principal.account_id)
        query = query.where(TechnicianRecord.case_reference.in_(mine))
    if status is not None:
        query = query.where(TechnicianRecord.status == status)
    records = list(session.scalars(query.order_by(TechnicianRecord.case_reference)))
    last = last_remote_process_times(session, [r.case_reference for r in records])
    summaries = [RecordSummary(r, last.get(r.case_reference), missing_items(r)) for r in records]
    audit(session, principal_entry(principal, "access", "record.list", f"lab:{principal.lab_id}",
                                   details={"status": status, "returned": len(summaries)}))  # fmt: skip
    return summaries


def last_remote_process_times(session: Session, cases: list[str]) -> dict[str, datetime]:
    if not cases:
        return {}
    rows = session.execute(
        sa.select(RemoteProcess.case_reference, sa.func.max(RemoteProcess.started_at))
        .where(RemoteProcess.case_reference.in_(cases))
        .group_by(RemoteProcess.case_reference)
    )
    return {case: when for case, when in rows}


NEEDS_ATTENTION = "needs attention"
NOT_MET = "not met"


@dataclass(frozen=True)
class CaseCompleteness:
    """One finding on a case's 歯科技工録 for the compliance report (G20); never the patient's name."""

    case_reference: str
    patient_reference: str
    status: str  # NEEDS_ATTENTION | NOT_MET
    reason: str


def _process_findings(record: TechnicianRecord, processes: list[RemoteProcess]) -> list[CaseCompleteness]:
    findings = []
    for process in processes:
        lacking = [name for name, value in (("process", process.process), ("location", process.location_label),
                   ("location address", process.location_address)) if not value.strip()]  # fmt: skip
        if lacking:
            reason = f"the remote process of design {process.design_id} has no {' or '.join(lacking)} recorded"
            findings.append(CaseCompleteness(record.case_reference, record.patient_reference, NOT_MET, reason))
    return findings


def _record_finding(record: TechnicianRecord, processes: list[RemoteProcess], today: date,
                    completion_days: int) -> CaseCompleteness | None:  # fmt: skip
    if not processes:
        return None
    if record.status == "finalized" and len(processes_of(record, processes)) < len(processes):
        reason = f"a remote process was recorded after version {record.version} was finalized; amend the record"
        return CaseCompleteness(record.case_reference, record.patient_reference, NEEDS_ATTENTION, reason)
    last = max(p.started_at for p in processes).astimezone(JST).date()
    waited = (today - last).days
    if record.status != "draft" or waited <= completion_days:
        return None
    missing = missing_items(record)
    lacks = f"missing {describe(missing)}" if missing else "complete but not finalized"
    reason = (f"version {record.version} is still a draft {waited} days after the last remote process "
              f"({last.isoformat()}; the policy allows {completion_days}): {lacks}")  # fmt: skip
    return CaseCompleteness(record.case_reference, record.patient_reference, NEEDS_ATTENTION, reason)


def case_completeness(
    session: Session, lab_id: uuid.UUID, today: date, policy: SecurityPolicy
) -> list[CaseCompleteness]:
    """Cases whose record is not in order today (G20): drafts left more than `records.completion_days` after their
    last remote process, or remote work after finalizing ("needs attention"); processes lacking location or
    process ("not met")."""
    query = newest_versions().where(TechnicianRecord.lab_id == lab_id)
    records = session.scalars(query.order_by(TechnicianRecord.case_reference)).all()
    by_case: dict[str, list[RemoteProcess]] = {}
    for process in session.scalars(sa.select(RemoteProcess).where(RemoteProcess.lab_id == lab_id)):
        by_case.setdefault(process.case_reference, []).append(process)
    findings: list[CaseCompleteness] = []
    for record in records:
        processes = by_case.get(record.case_reference, [])
        findings += _process_findings(record, processes)
        finding = _record_finding(record, processes, today, policy.records.completion_days)
        findings += [finding] if finding is not None else []
    return findings
