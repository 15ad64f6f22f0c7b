"""What the compliance report is made of (G1–G21): a row per requirement with its status, its live evidence and
the people, devices or cases behind each gap. A row's status is the worst status among its subjects."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from gateway.compliance.gates import Failure
from gateway.identity.models import Account, Device, TechnicianProfile

Status = Literal["met", "attention", "not-met"]
STATUSES: tuple[Status, ...] = ("met", "attention", "not-met")
ATTENTION_DAYS = 30  # what "soon" means for attestations and training that run out (G5, G8, G15, G21)


@dataclass(frozen=True)
class Count:
    """n of N (e.g. 3 of 4 technicians trained)."""

    n: int
    of: int

    def __str__(self) -> str:
        return f"{self.n}/{self.of}"


Evidence = bool | int | str | date | datetime | Count | list[str] | list[dict[str, object]] | None


@dataclass(frozen=True)
class Subject:
    """Who or what is behind a gap: a person, device, station, case, incident… with the rule it fails."""

    kind: str  # person | device | station | case | incident | notification | grant | lab | audit-chain | …
    id: str
    label: str  # as a reader sees it: "tanaka (田中 一郎)", "CAD PC — tanaka (田中 一郎)", "2026-001 (P-0001)"
    status: Status  # not-met | attention
    rule: str
    message: str  # English, as the rule (often the upload gate's Failure) words it
    names: dict[str, str] = field(default_factory=dict)  # username/full_name, device_name, case/patient reference


@dataclass(frozen=True)
class Row:
    id: str
    evidence: dict[str, Evidence]
    subjects: tuple[Subject, ...]

    @property
    def status(self) -> Status:
        return worst(subject.status for subject in self.subjects)


@dataclass(frozen=True)
class ComplianceReport:
    generated_at: datetime
    report_date: date
    lab_id: uuid.UUID
    lab_name: str
    policy_version: str
    rows: tuple[Row, ...]

    def row(self, requirement_id: str) -> Row:
        return next(row for row in self.rows if row.id == requirement_id)

    def summary(self) -> dict[str, int]:
        return {status: sum(1 for row in self.rows if row.status == status) for status in STATUSES}


def worst(statuses: object) -> Status:
    seen = set(statuses)  # type: ignore[call-overload]
    return "not-met" if "not-met" in seen else "attention" if "attention" in seen else "met"


def row(requirement_id: str, evidence: dict[str, Evidence], subjects: list[Subject]) -> Row:
    """A row with its subjects deduplicated (one gap named once), gaps before attention items."""
    unique = {(s.kind, s.id, s.rule, s.message): s for s in subjects}
    ordered = sorted(unique.values(), key=lambda s: (s.status != "not-met", s.label, s.rule))
    return Row(requirement_id, evidence, tuple(ordered))


@dataclass(frozen=True)
class Person:
    """An account with its current technician profile (None for managers, auditors, and unprofiled technicians)."""

    account: Account
    profile: TechnicianProfile | None

    @property
    def label(self) -> str:
        return f"{self.account.username} ({self.profile.full_name})" if self.profile else self.account.username

    @property
    def names(self) -> dict[str, str]:
        full_name = self.profile.full_name if self.profile else ""
        return {"username": self.account.username, "full_name": full_name}


def person_subject(person: Person, failure: Failure, status: Status = "not-met") -> Subject:
    return Subject("person", str(person.account.id), person.label, status, failure.rule, failure.message,
                   person.names)  # fmt: skip


def device_subject(device: Device, owner: Person, rule: str, message: str, status: Status = "not-met") -> Subject:
    names = {"device_name": device.name, **owner.names}
    return Subject("device", str(device.id), f"{device.name} — {owner.label}", status, rule, message, names)


def lab_subject(kind: str, ident: str, label: str, rule: str, message: str, status: Status = "not-met") -> Subject:
    """A gap of the lab as a whole (no policy published, the audit chain broken, a setting)."""
    return Subject(kind, ident, label, status, rule, message)
