"""A technician's own view of what stands between them and an upload (G1, G3, G5, G7–G9, G15, G16, G21): the
same rules the upload gate applies, with the training's and the attestations' dates so nothing runs out unseen."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from gateway.compliance.attestations import AttestationRow, technician_attestations
from gateway.compliance.documents import lab_policy
from gateway.compliance.gates import Failure, remote_work_failures, training_status
from gateway.identity.accounts import get_account
from gateway.identity.models import Device


@dataclass(frozen=True)
class Readiness:
    failures: list[Failure]
    training_due_on: date | None  # the date the training runs out; None while a required topic was never covered
    attestations: list[AttestationRow]

    @property
    def ready(self) -> bool:
        return not self.failures


def readiness(session: Session, account_id: uuid.UUID, device_id: uuid.UUID | None, today: date) -> Readiness:
    """Every unmet remote-work condition for this technician on the session's device, as the upload gate sees it."""
    account = get_account(session, account_id)
    device = session.get(Device, device_id) if device_id is not None else None
    policy = lab_policy(session, account.lab_id)
    failures = remote_work_failures(session, account, device, policy, today)
    due_on = training_status(session, account, policy, today).due_on
    return Readiness(failures, due_on, technician_attestations(session, account, policy, today))
