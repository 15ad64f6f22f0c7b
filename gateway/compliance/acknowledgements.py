"""What the lab's people see of its documents (G16, G17): the version in force (or, before the lab publishes
one, the shipped template to start from) and who has acknowledged the version in force."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.compliance.documents import DocumentKind, current_document
from gateway.compliance.models import Acknowledgement, LabDocument
from gateway.identity.errors import NotFound
from gateway.identity.models import Account
from gateway.incidents.plan import parse_plan, plan_template
from gateway.policy import parse_policy

EXPECTED_ROLES = ("manager", "technician")  # the people who work under the policy; auditors only read it


@dataclass(frozen=True)
class DocumentInForce:
    """The lab's version of a document, or None with the shipped template a lab adapts and publishes."""

    kind: DocumentKind
    document: LabDocument | None
    template: str
    template_version: str


@dataclass(frozen=True)
class Reader:
    account: Account
    acknowledged_at: datetime | None


def template_text(kind: DocumentKind) -> str:
    """The shipped default policy (`policies/default.toml`) or incident plan template."""
    if kind == "security-policy":
        return resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8")
    return plan_template()


def document_in_force(session: Session, lab_id: uuid.UUID, kind: DocumentKind) -> DocumentInForce:
    """The version of `kind` in force in the lab, with the shipped template beside it (G16, G17)."""
    template = template_text(kind)
    version = parse_policy(template).version if kind == "security-policy" else parse_plan(template).version
    return DocumentInForce(kind, current_document(session, lab_id, kind), template, version)


def acknowledgements(session: Session, lab_id: uuid.UUID, kind: DocumentKind) -> tuple[LabDocument, list[Reader]]:
    """The version in force and, per manager and technician (disabled accounts aside), when they acknowledged it,
    or None when they have not (G16)."""
    document = current_document(session, lab_id, kind)
    if document is None:
        raise NotFound(f"the lab has published no {kind} yet")
    people = session.scalars(
        sa.select(Account)
        .where(Account.lab_id == lab_id, Account.role.in_(EXPECTED_ROLES), Account.status != "disabled")
        .order_by(Account.role, Account.username)
    ).all()
    acknowledged = dict(
        session.execute(
            sa.select(Acknowledgement.account_id, Acknowledgement.acknowledged_at).where(
                Acknowledgement.lab_id == lab_id, Acknowledgement.document_id == document.id
            )
        ).all()
    )
    return document, [Reader(account, acknowledged.get(account.id)) for account in people]
