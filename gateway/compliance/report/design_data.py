"""Report rows about the design data itself (G2, G4, G11–G14): where it goes, who may reach it, how it travels
and where it is kept, from the lab's stations, designs, jobs, grants, audit events and the gateway's settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.models import AuditEvent
from gateway.compliance.report.facts import LabFacts
from gateway.compliance.report.model import Count, Row, Subject, lab_subject, row
from gateway.identity.models import Station
from gateway.records.models import RemoteProcess
from gateway.settings import Settings
from gateway.transfer.models import DeliveryJob, Design, DesignGrant

PRINCIPAL_ROLES = ("manager", "technician", "auditor", "station")


@dataclass(frozen=True)
class Installation:
    """How this gateway is set up, from its settings, with nothing secret (G11, G14, G19)."""

    environment: str
    public_url: str | None
    database: str  # postgresql | sqlite
    object_store: str  # s3://bucket/prefix, or local-directory
    server_side_encryption: str | None  # the S3 SSE setting; None on a local directory
    key_provider: str  # local-key-file | aws-kms
    checkpoint_publication: str | None  # s3 | file | None (checkpoints stay in the database)


def installation_of(settings: Settings) -> Installation:
    storage = urlsplit(settings.effective_storage_url)
    on_s3 = storage.scheme == "s3"
    publish = settings.checkpoint_publish_url
    return Installation(
        environment=settings.environment,
        public_url=settings.public_url,
        database="postgresql" if settings.effective_database_url.startswith("postgresql") else "sqlite",
        object_store=f"s3://{storage.netloc}{storage.path}" if on_s3 else "local-directory",
        server_side_encryption=settings.s3_sse if on_s3 else None,
        key_provider="aws-kms" if settings.key_provider.startswith("aws-kms:") else "local-key-file",
        checkpoint_publication=urlsplit(publish).scheme if publish else None,
    )


def _stations(session: Session) -> dict[uuid.UUID, Station]:
    return {s.id: s for s in session.scalars(sa.select(Station).order_by(Station.name))}


def g2_milling_in_the_lab(session: Session) -> Row:
    """G2: designs go only to milling stations the lab registered, each with its place in the lab on record."""
    active = [s for s in _stations(session).values() if s.status == "active"]
    subjects = [
        Subject("station", str(s.id), s.name, "not-met", "station-location-missing", "the station has no location")
        for s in active
        if not s.location.strip()
    ]
    processes = session.scalars(sa.select(RemoteProcess.process).distinct().order_by(RemoteProcess.process))
    evidence = {
        "stations_active": len(active),
        "station_locations": [f"{s.name} ({s.maker} {s.model}, {s.serial_number}): {s.location}" for s in active],
        "remote_processes": list(processes),
    }
    return row("G2", evidence, subjects)


def _design_subject(design: Design, message: str) -> Subject:
    label = f"{design.case_reference} / {design.id}"
    return Subject("design", str(design.id), label, "not-met", "design-not-end-to-end", message,
                   {"case_reference": design.case_reference})  # fmt: skip


def _sealing_problem(design: Design, stations: dict[uuid.UUID, Station]) -> str | None:
    recipients = design.signed_manifest.get("manifest", {}).get("recipients", [])
    kinds = [r.get("kind") for r in recipients]
    if "archive" not in kinds or "station" not in kinds:
        return "the design is not sealed to both a station and the lab's archive key"
    for recipient in recipients:
        if recipient.get("kind") not in ("station", "archive"):
            return f"the design is sealed to an unknown kind of recipient {recipient.get('kind')!r}"
        station_id = recipient.get("station_id")
        if recipient.get("kind") == "station" and (station_id is None or uuid.UUID(station_id) not in stations):
            return f"the design is sealed to {station_id}, which is not a station of this lab"
    return None


def g4_end_to_end(session: Session, facts: LabFacts) -> Row:
    """G4 (its own part): every design the gateway holds is sealed end to end, to the lab's stations and archive key
    only. The row also summarises G5–G19 (added by the report), without taking their status."""
    stations = _stations(session)
    designs = list(session.scalars(sa.select(Design).order_by(Design.committed_at)))
    subjects = [_design_subject(d, problem) for d in designs if (problem := _sealing_problem(d, stations))]
    evidence = {
        "designs_end_to_end": Count(len(designs) - len(subjects), len(designs)),
        "archive_key_registered": facts.lab.archive_recipient is not None,
    }
    return row("G4", evidence, subjects)


def g11_secure_delivery(session: Session, installation: Installation) -> Row:
    """G11: deliveries only to registered (approved) stations of the lab; TLS in production."""
    stations = _stations(session)
    jobs = list(session.scalars(sa.select(DeliveryJob).order_by(DeliveryJob.updated_at)))
    unregistered = [j for j in jobs if (s := stations.get(j.station_id)) is None or s.approved_at is None]
    subjects = [
        Subject("delivery", str(j.id), f"{j.design_id} → {j.station_id}", "not-met", "station-unregistered",
                "a delivery job targets a station the lab never approved")
        for j in unregistered
    ]  # fmt: skip
    scheme = urlsplit(installation.public_url).scheme if installation.public_url else None
    if installation.environment == "production" and scheme != "https":
        subjects.append(lab_subject("setting", "public_url", "DENTGATE_PUBLIC_URL", "tls-missing",
                                    "the production gateway is not reached over https"))  # fmt: skip
    evidence = {
        "environment": installation.environment,
        "public_url": installation.public_url,
        "deliveries_acknowledged": sum(1 for j in jobs if j.state == "acknowledged"),
        "deliveries_to_unregistered_stations": len(unregistered),
    }
    return row("G11", evidence, subjects)


def _holder(facts: LabFacts, grant: DesignGrant, stations: dict[uuid.UUID, Station]) -> tuple[str, bool]:
    """The grant holder's label and whether they are still active."""
    if grant.subject_type == "station":
        station = stations.get(grant.subject_id)
        return (station.name, station.status == "active") if station else (str(grant.subject_id), False)
    person = facts.people.get(grant.subject_id)
    return (person.label, person.account.status == "active") if person else (str(grant.subject_id), False)


def _grant_subject(grant: DesignGrant, holder: str) -> Subject:
    message = "the holder is disabled or revoked; revoke the grant"
    return Subject(
        "grant", str(grant.id), f"{holder}: {grant.permission}", "attention", "grant-holder-inactive", message
    )


def g12_shared_storage(session: Session, facts: LabFacts) -> Row:
    """G12: who holds which per-design grant now; refused attempts on designs are on the audit chain."""
    stations = _stations(session)
    cases = {design: case for design, case in session.execute(sa.select(Design.id, Design.case_reference))}
    grants = session.scalars(
        sa.select(DesignGrant)
        .where(DesignGrant.revoked_at.is_(None), DesignGrant.expires_at > facts.now)
        .order_by(DesignGrant.created_at)
    )
    held, subjects = [], []
    for grant in grants:
        holder, active = _holder(facts, grant, stations)
        held.append(f"{grant.permission}: {cases.get(grant.design_id)} → {holder} ({grant.expires_at:%Y-%m-%d})")
        subjects += [] if active else [_grant_subject(grant, holder)]
    denied = session.execute(
        sa.select(sa.func.count(), sa.func.max(AuditEvent.occurred_at)).where(
            AuditEvent.action.like("design.%"), AuditEvent.outcome == "denied"
        )
    ).one()
    evidence = {
        "designs": len(cases),
        "grants_in_force": held,
        "denied_attempts": denied[0],
        "last_denied_attempt": denied[1],
    }
    return row("G12", evidence, subjects)


def g13_no_file_services(session: Session, facts: LabFacts) -> Row:
    """G13: designs leave only through the gateway; every ciphertext download was by an authenticated principal."""
    downloads = list(
        session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "design.download", AuditEvent.outcome == "success")
        )
    )
    anonymous = [e for e in downloads if e.actor_id is None or e.actor_type not in PRINCIPAL_ROLES]
    subjects = [
        Subject("audit-event", str(e.seq), f"#{e.seq} {e.target}", "not-met", "download-unauthenticated",
                "a design was downloaded without an authenticated principal")
        for e in anonymous
    ]  # fmt: skip
    evidence = {
        "downloads": len(downloads),
        "unauthenticated_downloads": len(anonymous),
        "forbidden_cloud_sync": list(facts.policy.posture.forbidden_cloud_sync),
    }
    return row("G13", evidence, subjects)


def g14_storage(session: Session, facts: LabFacts, installation: Installation) -> Row:
    """G14: where each kind of data is kept, who uses it, and how long logs are kept."""
    subjects = []
    if installation.server_side_encryption == "none":
        subjects.append(lab_subject("setting", "s3_sse", "DENTGATE_S3_SSE", "storage-not-encrypted-at-rest",
                                    "the object store applies no server-side encryption", "attention"))  # fmt: skip
    audit = facts.policy.audit
    roles = [p.account.role for p in facts.active()]
    stations = session.scalar(sa.select(sa.func.count()).select_from(Station).where(Station.status == "active"))
    evidence = {
        "database": installation.database,
        "object_store": installation.object_store,
        "server_side_encryption": installation.server_side_encryption,
        "key_provider": installation.key_provider,
        "data_classes": ["data-designs", "data-records", "data-people", "data-audit"],
        "users": [f"{role}: {roles.count(role)}" for role in PRINCIPAL_ROLES[:3]] + [f"station: {stations}"],
        "audit_retention_years": f"{audit.retention_years_access}/{audit.retention_years_auth}/"
        f"{audit.retention_years_operation}",
    }
    return row("G14", evidence, subjects)
