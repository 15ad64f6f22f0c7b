"""Report rows about the lab's paperwork and logs (G17–G20): the incident plan in force, incidents and their
notifications, the audit chain verified end to end, and each case's 歯科技工録."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.chain import ChainBroken
from gateway.audit.models import AuditCheckpoint, AuditEvent
from gateway.audit.publication import PublicationFailed, Publisher, verify_against_published
from gateway.compliance.report.facts import LabFacts
from gateway.compliance.report.model import Count, Row, Subject, lab_subject, row
from gateway.incidents.models import Incident, Notification
from gateway.incidents.views import IncidentDetails, describe, plan_in_force
from gateway.records.models import RemoteProcess
from gateway.records.service import NOT_MET, case_completeness, newest_versions

PUBLICATION_GRACE = timedelta(hours=1)  # a signed checkpoint still unpublished after this needs attention (G19)


def g17_incident_plan(session: Session, facts: LabFacts) -> Row:
    """G17: the lab has published its own incident response plan (the shipped template does not count)."""
    in_force = plan_in_force(session, facts.lab.id)
    subjects = []
    if in_force.template:
        subjects.append(lab_subject("lab", str(facts.lab.id), facts.lab.name, "plan-not-published",
                                    "the lab has published no incident response plan"))  # fmt: skip
    plan = in_force.plan
    evidence = {
        "plan_version": None if in_force.template else plan.version,
        "plan_published_at": in_force.published_at,
        "plan_contacts": [] if in_force.template else [f"{c.name} ({c.role}) {c.phone}" for c in plan.contacts],
    }
    return row("G17", evidence, subjects)


def _incident_subject(facts: LabFacts, details: IncidentDetails, rule: str, message: str) -> Subject:
    incident = details.incident
    person = facts.people.get(incident.subject_account_id)
    who = person.label if person else details.technician
    label = f"{incident.type} — {who} ({incident.reported_at:%Y-%m-%d %H:%M} UTC)"
    return Subject("incident", str(incident.id), label, "attention", rule, message, person.names if person else {})


def g18_incidents(session: Session, facts: LabFacts) -> Row:
    """G18: incidents reported with their times to containment; open incidents and failed notifications need
    attention (the gateway cannot see what was never reported)."""
    incidents = describe(session, list(session.scalars(sa.select(Incident).order_by(Incident.reported_at))))
    subjects = [_incident_subject(facts, d, "incident-open", "reported, not yet contained")
                for d in incidents if d.incident.contained_at is None]  # fmt: skip
    subjects += [
        _incident_subject(facts, d, "notification-failed", f"the {n.channel} notification to {n.recipient} failed")
        for d in incidents
        for n in d.notifications
        if n.status == "failed"
    ]
    times = [d.time_to_containment for d in incidents if d.time_to_containment is not None]
    statuses = list(session.scalars(sa.select(Notification.status)))
    evidence = {
        "incidents": len(incidents),
        "incidents_open": sum(1 for d in incidents if d.incident.contained_at is None),
        "longest_minutes_to_containment": int(max(times).total_seconds() // 60) if times else None,
        "notifications_sent": Count(statuses.count("sent"), len(statuses)),
        "notifications_failed": statuses.count("failed"),
    }
    return row("G18", evidence, subjects)


def _publication_subjects(session: Session, facts: LabFacts, publisher: Publisher | None) -> list[Subject]:
    if publisher is None:
        return []
    stale = session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditCheckpoint)
        .where(
            AuditCheckpoint.lab_id == facts.lab.id,
            AuditCheckpoint.published_at.is_(None),
            AuditCheckpoint.signed_at < facts.now - PUBLICATION_GRACE,
        )
    )
    if not stale:
        return []
    message = f"{stale} signed checkpoints are not yet published ({publisher.describe()})"
    return [lab_subject("audit-chain", str(facts.lab.id), facts.lab.name, "checkpoints-unpublished", message,
                        "attention")]  # fmt: skip


def g19_audit_logs(session: Session, facts: LabFacts, public_key: bytes, publisher: Publisher | None) -> Row:
    """G19: the lab's audit chain verifies (against published checkpoints where configured), by category, kept
    as long as the policy says."""
    subjects = _publication_subjects(session, facts, publisher)
    verified, note = None, None
    try:
        checked = verify_against_published(session, facts.lab.id, public_key, publisher)
        verified, note = checked.chain, checked.note
    except ChainBroken as broken:
        subjects.append(lab_subject("audit-chain", str(facts.lab.id), facts.lab.name, "chain-broken",
                                    f"the chain does not verify at event {broken.seq}: {broken.reason}"))  # fmt: skip
    except PublicationFailed as failed:
        subjects.append(lab_subject("audit-chain", str(facts.lab.id), facts.lab.name, "publication-unreadable",
                                    failed.detail, "attention"))  # fmt: skip
    categories = session.execute(
        sa.select(AuditEvent.category, sa.func.count(), sa.func.min(AuditEvent.occurred_at)).group_by(
            AuditEvent.category
        )
    ).all()
    audit = facts.policy.audit
    evidence = {
        "chain_verified": verified is not None,
        "events_verified": verified.count if verified else None,
        "logged_since": min((first for _, _, first in categories), default=None),
        "events_by_category": [f"{category}: {count}" for category, count, _ in sorted(categories)],
        "checkpoint_publication": note,
        "audit_retention_years": f"{audit.retention_years_access}/{audit.retention_years_auth}/"
        f"{audit.retention_years_operation}",
    }
    return row("G19", evidence, subjects)


def g20_technician_records(session: Session, facts: LabFacts) -> Row:
    """G20: each case's 歯科技工録 names its remote processes and places, and is finalized in time (the records
    module's own findings)."""
    findings = case_completeness(session, facts.lab.id, facts.today, facts.policy)
    subjects = [
        Subject("case", f.case_reference, f"{f.case_reference} ({f.patient_reference})",
                "not-met" if f.status == NOT_MET else "attention",
                "record-not-met" if f.status == NOT_MET else "record-needs-attention", f.reason,
                {"case_reference": f.case_reference, "patient_reference": f.patient_reference})
        for f in findings
    ]  # fmt: skip
    records = list(session.scalars(newest_versions()))
    evidence = {
        "cases": len(records),
        "records_finalized": Count(sum(1 for r in records if r.status == "finalized"), len(records)),
        "remote_processes": session.scalar(sa.select(sa.func.count()).select_from(RemoteProcess)) or 0,
        "completion_days": facts.policy.records.completion_days,
    }
    return row("G20", evidence, subjects)
