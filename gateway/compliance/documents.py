"""The lab's versioned documents: its security policy (G16) and incident response plan (G17). Publishing
a version is audited; the newest version is in force; technicians acknowledge the policy in force."""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from typing import Literal

import pydantic
import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.compliance.models import Acknowledgement, LabDocument
from gateway.errors import DentGateError
from gateway.identity.errors import Conflict, NotFound
from gateway.identity.models import Account
from gateway.incidents.plan import IncidentPlan, parse_plan, plan_template
from gateway.policy import SecurityPolicy, default_policy, parse_policy

DocumentKind = Literal["security-policy", "incident-plan"]
KINDS: tuple[DocumentKind, ...] = ("security-policy", "incident-plan")


class DocumentInvalid(DentGateError):
    code = "document-invalid"
    status = 422
    title = "The document does not validate"


def _parse(kind: DocumentKind, body: str) -> SecurityPolicy | IncidentPlan:
    try:
        return parse_policy(body) if kind == "security-policy" else parse_plan(body)
    except pydantic.ValidationError as error:  # each bad setting by its dotted name, e.g. training.validity_months
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'document'}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise DocumentInvalid(f"the {kind} does not validate: {problems}") from None
    except ValueError as error:  # TOMLDecodeError is a ValueError
        raise DocumentInvalid(f"the {kind} does not validate: {error}") from None


def current_document(session: Session, lab_id: uuid.UUID, kind: DocumentKind) -> LabDocument | None:
    """The version of `kind` in force in the lab, or None when the lab has published none."""
    return session.scalar(
        sa.select(LabDocument)
        .where(LabDocument.lab_id == lab_id, LabDocument.kind == kind)
        .order_by(LabDocument.id.desc())
        .limit(1)
    )


def lab_policy(session: Session, lab_id: uuid.UUID) -> SecurityPolicy:
    """The security policy in force in the lab: its newest published version, else the shipped default."""
    document = current_document(session, lab_id, "security-policy")
    return default_policy() if document is None else _parsed_policy(document.body)


@lru_cache(maxsize=64)
def _parsed_policy(body: str) -> SecurityPolicy:
    """Policies are immutable once published, so each text is validated once per process."""
    return parse_policy(body)


def lab_plan(session: Session, lab_id: uuid.UUID) -> tuple[IncidentPlan, LabDocument | None]:
    """The lab's incident plan in force, or the shipped template (with None) when it has published none."""
    document = current_document(session, lab_id, "incident-plan")
    return (parse_plan(plan_template()), None) if document is None else (parse_plan(document.body), document)


def history(session: Session, lab_id: uuid.UUID, kind: DocumentKind) -> list[LabDocument]:
    return list(
        session.scalars(
            sa.select(LabDocument)
            .where(LabDocument.lab_id == lab_id, LabDocument.kind == kind)
            .order_by(LabDocument.id.desc())
        )
    )


def publish(session: Session, actor: Account, kind: DocumentKind, body: str) -> LabDocument:
    """Validate and publish a new version of `kind`; its `version` must be new. Audited (G16, G17)."""
    if kind not in KINDS:
        raise DocumentInvalid(f"unknown document kind {kind!r}; use one of {', '.join(KINDS)}")
    version = _parse(kind, body).version
    taken = session.scalar(
        sa.select(LabDocument.id).where(
            LabDocument.lab_id == actor.lab_id, LabDocument.kind == kind, LabDocument.version == version
        )
    )
    if taken is not None:
        raise Conflict(f"{kind} version {version!r} is already published; give the new text a new version")
    sha256 = hashlib.sha256(body.encode()).hexdigest()
    previous = current_document(session, actor.lab_id, kind)
    document = LabDocument(lab_id=actor.lab_id, kind=kind, version=version, body=body, sha256=sha256,
                           published_by=actor.id)  # fmt: skip
    session.add(document)
    session.flush()
    record(session, AuditEntry(
        lab_id=actor.lab_id, category="operation", action=f"{kind}.publish", actor_type=actor.role,
        actor_id=str(actor.id), target=f"document:{document.id}",
        details={"version": version, "sha256": sha256, "previous": previous.version if previous else None},
    ))  # fmt: skip
    return document


def acknowledge(session: Session, account: Account, kind: DocumentKind, version: str) -> Acknowledgement:
    """`account` confirms it read `version` of `kind`, which must be the version in force (G16)."""
    document = current_document(session, account.lab_id, kind)
    if document is None:
        raise NotFound(f"the lab has published no {kind} yet")
    if document.version != version:
        raise Conflict(f"{version!r} is not the {kind} in force; read and acknowledge {document.version!r}")
    existing = find_acknowledgement(session, account.id, document)
    if existing is not None:
        return existing
    acknowledgement = Acknowledgement(lab_id=account.lab_id, account_id=account.id, document_id=document.id)
    session.add(acknowledgement)
    session.flush()
    record(session, AuditEntry(
        lab_id=account.lab_id, category="operation", action=f"{kind}.acknowledge", actor_type=account.role,
        actor_id=str(account.id), target=f"document:{document.id}", details={"version": version},
    ))  # fmt: skip
    return acknowledgement


def find_acknowledgement(session: Session, account_id: uuid.UUID, document: LabDocument) -> Acknowledgement | None:
    return session.scalar(
        sa.select(Acknowledgement).where(
            Acknowledgement.account_id == account_id, Acknowledgement.document_id == document.id
        )
    )
