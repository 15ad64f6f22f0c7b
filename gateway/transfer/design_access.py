"""Who may do what to a design (G12): the facts the Cedar rules need, the caller's grants, one audited decision.

Every decision, allow or deny, goes on the lab's audit chain with the rules that made it. A denial is
raised with its audit entry attached (`DentGateError.audited`), so it stays on record although the
request's transaction rolls back. A design of another lab, or none at all, is "not found".
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.identity.sessions import Principal
from gateway.transfer.events import design_entry, design_event
from gateway.transfer.manifest import SignedManifest, parse_signed_manifest
from gateway.transfer.models import DeliveryJob, Design, DesignGrant
from gateway.transfer.permissions import (
    Decision,
    DesignFacts,
    DesignNotFound,
    PermissionDenied,
    Subject,
    decide,
)


@dataclass(frozen=True)
class DesignInView:
    """A design with its delivery jobs, as one decision saw it."""

    design: Design
    jobs: list[DeliveryJob]
    decision: Decision


def subject_of(principal: Principal) -> Subject:
    if principal.station_id is not None:
        return Subject("station", principal.station_id, principal.lab_id)
    return Subject("account", principal.account_id, principal.lab_id, principal.role)  # type: ignore[arg-type]


def signed_manifest_of(design: Design) -> SignedManifest:
    return parse_signed_manifest(json.dumps(design.signed_manifest).encode())


def jobs_of(session: Session, design_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[DeliveryJob]]:
    """Each design's delivery jobs, in one query."""
    jobs: dict[uuid.UUID, list[DeliveryJob]] = {design_id: [] for design_id in design_ids}
    if design_ids:
        query = sa.select(DeliveryJob).where(DeliveryJob.design_id.in_(design_ids)).order_by(DeliveryJob.id)
        for job in session.scalars(query):
            jobs[job.design_id].append(job)
    return jobs


def in_delivery(job: DeliveryJob, now: datetime) -> bool:
    """A station holds a live lease on the job: it may be writing the files right now."""
    return job.state == "claimed" and job.lease_until is not None and job.lease_until >= now


def cancellable(design: Design, jobs: list[DeliveryJob], now: datetime) -> bool:
    """Before delivery: nothing acknowledged, nothing being delivered, the design still live."""
    return design.status == "available" and not any(j.state == "acknowledged" or in_delivery(j, now) for j in jobs)


def facts_of(design: Design, jobs: list[DeliveryJob], now: datetime) -> DesignFacts:
    return DesignFacts(
        design.id,
        design.lab_id,
        design.account_id,
        frozenset(job.station_id for job in jobs),
        cancellable(design, jobs, now),
    )


def granted(session: Session, design_id: uuid.UUID, subject: Subject, now: datetime) -> set[str]:
    """The permissions the subject holds on the design through unexpired, unrevoked grants."""
    return set(
        session.scalars(
            sa.select(DesignGrant.permission).where(
                DesignGrant.design_id == design_id,
                DesignGrant.subject_type == subject.kind,
                DesignGrant.subject_id == subject.id,
                DesignGrant.revoked_at.is_(None),
                DesignGrant.expires_at > now,
            )
        )
    )


def authorize(session: Session, principal: Principal, design_id: uuid.UUID, action: str, now: datetime) -> DesignInView:
    """Decide `action` on the design for the caller and audit the decision; raise when it is refused."""
    event = f"design.{action}"
    design = session.get(Design, design_id)  # lab-scoped: another lab's design is simply absent
    if design is None:
        raise DesignNotFound(f"no design {design_id}").audited(
            design_entry(principal, event, design_id, outcome="denied", reason="no such design in this lab")
        )
    jobs = jobs_of(session, [design.id])[design.id]
    subject = subject_of(principal)
    decision = decide(subject, action, facts_of(design, jobs, now), granted(session, design.id, subject, now))
    if not decision.allowed:
        refusal = (
            DesignNotFound(f"no design {design_id}")
            if "other-lab-is-invisible" in decision.rules
            else PermissionDenied(f"{action} is not allowed on this design ({decision.reason})")
        )
        entry = design_entry(principal, event, design.id, "denied", refusal.detail, rule=decision.reason)
        raise refusal.audited(entry)
    design_event(session, principal, event, design.id, rule=decision.reason)
    return DesignInView(design, jobs, decision)
