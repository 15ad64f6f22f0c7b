"""Attestations (G5, G8, G15): a technician states, or the manager confirms, that a remote-work measure is in
place (privacy filter, screen lock, removable media, an administrable personal device); each is renewed in time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gateway.audit.service import AuditEntry, record
from gateway.compliance.documents import lab_policy
from gateway.compliance.gates import AttestationState, attestation_states
from gateway.compliance.models import Attestation
from gateway.errors import DentGateError
from gateway.identity.errors import Forbidden, NotFound
from gateway.identity.models import Account, Device
from gateway.policy import ATTESTATION_KINDS, SecurityPolicy

PERSONAL_DEVICE = "personal-device-administration"
# The statement recorded when the person gives none: what they attest, in Japanese and in English.
STATEMENTS: dict[str, tuple[str, str]] = {
    "privacy-filter": (
        "リモートワーク場所では画面に覗き見防止フィルターを装着し、第三者から画面が見えないようにしています。",
        "At the remote work location the screen has a privacy filter and others cannot see it.",
    ),
    "screen-lock": (
        "離席時は画面をロックし、一定時間操作がないときは自動でロックされるよう設定しています。",
        "I lock the screen when I leave it, and it locks by itself after a short time without use.",
    ),
    "removable-media": (
        "USBメモリ等の外部記録媒体は業務上必要な場合に限り使用し、設計データや患者情報を保存したままにしません。",
        "I use removable media only where the work needs it and leave no designs or patient data on them.",
    ),
    PERSONAL_DEVICE: (
        "私物の端末について、歯科技工所の管理者がセキュリティ設定を確認・変更できる状態にしています。",
        "The lab's manager can check and change the security settings of my personally owned device.",
    ),
}
REQUIREMENT = {"privacy-filter": "G5", "screen-lock": "G5", "removable-media": "G15", PERSONAL_DEVICE: "G8"}

AttestationStatus = Literal["current", "expired", "missing"]


class AttestationInvalid(DentGateError):
    code = "attestation-invalid"
    status = 422
    title = "The attestation is not valid"


@dataclass(frozen=True)
class AttestationRow:
    """Where one technician stands on one required attestation (for a personal device: per device)."""

    account: Account
    kind: str
    requirement: str
    device_id: uuid.UUID | None
    status: AttestationStatus
    attested_on: date | None
    valid_until: date | None


def default_statement(kind: str) -> str:
    japanese, english = STATEMENTS[kind]
    return f"{japanese}\n{english}"


def _check_date(attested_on: date, today: date, policy: SecurityPolicy) -> None:
    if attested_on > today:
        raise AttestationInvalid(f"the attestation date {attested_on} is in the future")
    oldest = today - timedelta(days=policy.attestation.validity_days)
    if attested_on < oldest:
        raise AttestationInvalid(
            f"an attestation of {attested_on} would already have expired (valid {policy.attestation.validity_days} "
            f"days); attest as of a date from {oldest} on"
        )


def _device(session: Session, account: Account, kind: str, device_id: uuid.UUID | None) -> Device | None:
    if device_id is None:
        if kind == PERSONAL_DEVICE:
            raise AttestationInvalid(f"{PERSONAL_DEVICE} is attested for one personal device: give its id")
        return None
    device = session.get(Device, device_id)
    if device is None or device.account_id != account.id:
        raise NotFound(f"{account.username} has no device {device_id}")
    if kind == PERSONAL_DEVICE and (device.ownership != "personal" or device.status != "active"):
        raise AttestationInvalid(f"device {device.name!r} is not an approved personal device")
    return device


def record_attestation(
    session: Session,
    actor: Account,
    account: Account,
    kind: str,
    attested_on: date,
    statement: str | None,
    device_id: uuid.UUID | None,
    today: date,
    *,
    policy: SecurityPolicy | None = None,
) -> Attestation:
    """The technician attests their own measure, or a manager confirms it for them (G5, G8, G15); dated no later
    than today and no earlier than the validity allows. An empty statement records the standard text of `kind`."""
    if account.lab_id != actor.lab_id:
        raise NotFound(f"no account {account.id} in this lab")
    if actor.id != account.id and actor.role != "manager":
        raise Forbidden("a technician attests only their own measures; a manager confirms them for a technician")
    if account.role != "technician":
        raise AttestationInvalid(f"{account.username} is not a technician; attestations are a remote technician's")
    if kind not in ATTESTATION_KINDS:
        raise AttestationInvalid(f"unknown attestation {kind!r}; use one of {', '.join(ATTESTATION_KINDS)}")
    policy = policy or lab_policy(session, actor.lab_id)
    _check_date(attested_on, today, policy)
    device = _device(session, account, kind, device_id)
    text = (statement or "").strip() or default_statement(kind)
    if len(text) > 1000:
        raise AttestationInvalid("the statement is at most 1000 characters")
    attestation = Attestation(
        lab_id=account.lab_id, account_id=account.id, kind=kind, attested_on=attested_on,
        device_id=device.id if device else None, statement=text, recorded_by=actor.id,
    )  # fmt: skip
    session.add(attestation)
    session.flush()
    record(session, AuditEntry(
        lab_id=account.lab_id, category="operation", action="attestation.record", actor_type=actor.role,
        actor_id=str(actor.id), target=f"account:{account.id}", device_id=str(device.id) if device else None,
        details={"username": account.username, "kind": kind, "requirement": REQUIREMENT[kind],
                 "attested_on": attested_on.isoformat(), "confirmed_by_manager": actor.role == "manager"},
    ))  # fmt: skip
    return attestation


def attestation_table(session: Session, lab_id: uuid.UUID, policy: SecurityPolicy, today: date) -> list[AttestationRow]:
    """Per active technician, each required attestation (and one per approved personal device) with its status."""
    technicians = session.scalars(
        sa.select(Account)
        .where(Account.lab_id == lab_id, Account.role == "technician", Account.status != "disabled")
        .order_by(Account.username)
    ).all()
    return [row for account in technicians for row in technician_attestations(session, account, policy, today)]


def technician_attestations(
    session: Session, account: Account, policy: SecurityPolicy, today: date
) -> list[AttestationRow]:
    """One technician's required attestations: the policy's kinds, and G8's for each approved personal device."""
    rows = [_row(account, state, None, today) for state in attestation_states(session, account, policy, None)]
    personal = session.scalars(
        sa.select(Device)
        .where(Device.account_id == account.id, Device.ownership == "personal", Device.status == "active")
        .order_by(Device.created_at)
    ).all()
    for device in personal:
        states = attestation_states(session, account, policy, device)
        rows += [_row(account, state, device.id, today) for state in states if state.kind == PERSONAL_DEVICE]
    return rows


def _row(account: Account, state: AttestationState, device_id: uuid.UUID | None, today: date) -> AttestationRow:
    if state.attested_on is None:
        status: AttestationStatus = "missing"
    else:
        status = "current" if state.current(today) else "expired"
    return AttestationRow(account, state.kind, REQUIREMENT[state.kind], device_id, status, state.attested_on,
                          state.valid_until)  # fmt: skip
