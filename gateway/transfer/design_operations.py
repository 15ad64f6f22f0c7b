"""What the lab does with a committed design (G12, G13): look it up, cancel it, requeue a declined job,
give and take back per-design grants. Each step is decided by the Cedar rules and audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.identity.errors import Conflict, Forbidden, NotFound
from gateway.identity.models import Account, Station
from gateway.identity.sessions import Principal
from gateway.transfer.design_access import (
    DesignInView,
    authorize,
    facts_of,
    granted,
    in_delivery,
    jobs_of,
)
from gateway.transfer.events import design_event
from gateway.transfer.job_signal import announce
from gateway.transfer.models import DeliveryJob, Design, DesignGrant
from gateway.transfer.permissions import GRANTABLE, Subject, decide

MAX_GRANT_DAYS = 90
OPEN_JOB_STATES = ("available", "claimed", "declined")


class InvalidGrant(Conflict):
    code = "invalid-grant"
    title = "The grant cannot be given"


@dataclass(frozen=True)
class Listed:
    design: Design
    jobs: list[DeliveryJob]


def list_designs(session: Session, principal: Principal) -> list[Listed]:
    """Managers and auditors see the lab's designs; a technician sees their own (G12)."""
    query = sa.select(Design).order_by(Design.committed_at.desc())
    if principal.role == "technician":
        query = query.where(Design.account_id == principal.account_id)
    elif principal.role not in ("manager", "auditor"):
        raise Forbidden("stations see their jobs, not the design list")
    designs = list(session.scalars(query))
    jobs = jobs_of(session, [design.id for design in designs])
    return [Listed(design, jobs[design.id]) for design in designs]


def cancel(session: Session, principal: Principal, design_id: uuid.UUID, reason: str, now: datetime) -> DesignInView:
    """Withdraw the design from every station that has not received it; the owner only before delivery."""
    view = authorize(session, principal, design_id, "cancel", now)
    if any(in_delivery(job, now) for job in view.jobs):
        raise Conflict("a station is receiving the design right now; cancel again once it has finished or failed")
    open_jobs = [job for job in view.jobs if job.state in OPEN_JOB_STATES]
    if view.design.status != "available" or not open_jobs:
        raise Conflict(f"nothing left to cancel: the design is {view.design.status}")
    for job in open_jobs:
        job.state, job.reason, job.lease_until, job.updated_at = "cancelled", reason, None, now
    view.design.status = "cancelled"
    design_event(session, principal, "design.cancelled", design_id, reason=reason, jobs=len(open_jobs))
    return view


def requeue(
    session: Session, principal: Principal, design_id: uuid.UUID, job_id: uuid.UUID, reason: str, now: datetime
) -> DeliveryJob:
    """Offer a job a station declined (machine busy, material not loaded) to that station again.

    The design is encrypted to its target stations only, so it cannot be moved to another machine
    here: the technician sends it again to that station (the gateway never re-encrypts).
    """
    view = authorize(session, principal, design_id, "requeue", now)
    job = next((job for job in view.jobs if job.id == job_id), None)
    if job is None:
        raise NotFound(f"no job {job_id} for design {design_id}")
    if job.state != "declined" or view.design.status != "available":
        raise Conflict(f"only a declined job of a live design can be requeued; this one is {job.state}")
    station = session.get(Station, job.station_id)
    if station is None or station.status != "active":
        raise Conflict("the station is no longer active; ask the technician to send the design to another station")
    job.state, job.reason, job.lease_until, job.updated_at = "available", None, None, now
    announce(session, [job.station_id])
    design_event(session, principal, "job.requeue", design_id, job=str(job.id), station=str(job.station_id),
                 reason=reason)  # fmt: skip
    return job


def _subject(session: Session, subject_type: str, subject_id: uuid.UUID, lab_id: uuid.UUID) -> Subject:
    """The grant's subject, which must exist in the lab (lab-scoped lookups: another lab's is not found)."""
    if subject_type == "station":
        if session.get(Station, subject_id) is None:
            raise NotFound(f"no station {subject_id}")
        return Subject("station", subject_id, lab_id)
    account = session.get(Account, subject_id)
    if account is None:
        raise NotFound(f"no account {subject_id}")
    return Subject("account", subject_id, lab_id, account.role)


def grant(
    session: Session,
    principal: Principal,
    design_id: uuid.UUID,
    subject_type: str,
    subject_id: uuid.UUID,
    permission: str,
    expires_at: datetime,
    reason: str,
    now: datetime,
) -> DesignGrant:
    """Give one permission on the design to an account or station until `expires_at` (at most 90 days)."""
    view = authorize(session, principal, design_id, "grant", now)
    if permission not in GRANTABLE:
        raise InvalidGrant(f"a grant gives one of {', '.join(GRANTABLE)}")
    if not now < expires_at <= now + timedelta(days=MAX_GRANT_DAYS):
        raise InvalidGrant(f"a grant expires in the future and within {MAX_GRANT_DAYS} days")
    subject = _subject(session, subject_type, subject_id, principal.lab_id)
    held = granted(session, design_id, subject, now) | {permission}
    outcome = decide(subject, permission, facts_of(view.design, view.jobs, now), held)
    if not outcome.allowed:  # a forbid rule wins over any grant: say so instead of storing a dead grant
        raise InvalidGrant(f"the rules refuse {permission} to this {subject_type} even with a grant ({outcome.reason})")
    row = DesignGrant(
        lab_id=principal.lab_id, design_id=design_id, subject_type=subject_type, subject_id=subject_id,
        permission=permission, expires_at=expires_at, granted_by=principal.account_id, reason=reason, created_at=now,
    )  # fmt: skip
    session.add(row)
    session.flush()
    design_event(
        session, principal, "grant.create", design_id, grant=str(row.id), subject=f"{subject_type}:{subject_id}",
        permission=permission, expires_at=expires_at.isoformat(), reason=reason,
    )  # fmt: skip
    return row


def revoke_grant(
    session: Session, principal: Principal, design_id: uuid.UUID, grant_id: uuid.UUID, now: datetime
) -> DesignGrant:
    authorize(session, principal, design_id, "revoke-grant", now)
    row = session.get(DesignGrant, grant_id)
    if row is None or row.design_id != design_id:
        raise NotFound(f"no grant {grant_id} on design {design_id}")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = now, principal.account_id
        design_event(session, principal, "grant.revoke", design_id, grant=str(row.id))
    return row


def list_grants(session: Session, principal: Principal, design_id: uuid.UUID, now: datetime) -> list[DesignGrant]:
    """The design's grants, revoked and expired ones included (a manager's view)."""
    authorize(session, principal, design_id, "grant", now)
    query = sa.select(DesignGrant).where(DesignGrant.design_id == design_id).order_by(DesignGrant.created_at)
    return list(session.scalars(query))
