"""The lab security policy: the shipped default in `policies/default.toml`, validated by one schema."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentityPolicy(_Strict):
    password_min_length: int = Field(ge=8)
    password_min_zxcvbn_score: int = Field(ge=0, le=4)
    password_history: int = Field(ge=0)
    activation_hours: int = Field(ge=1)
    lockout_threshold: int = Field(ge=1)
    lockout_minutes: int = Field(ge=1)
    address_failure_threshold: int = Field(ge=1)
    address_window_minutes: int = Field(ge=1)
    session_idle_minutes: int = Field(ge=1)
    session_absolute_hours: int = Field(ge=1)
    recovery_codes: int = Field(ge=1, le=20)
    proof_max_age_seconds: int = Field(ge=5, le=600)
    station_enrolment_hours: int = Field(ge=1)


class PosturePolicy(_Strict):
    max_update_age_days: int = Field(ge=1)
    require_antimalware: bool
    require_disk_encryption: bool
    require_firewall: bool
    require_bluetooth_off: bool
    require_adhoc_off: bool
    forbid_open_wifi: bool
    forbid_removable_media: bool
    forbidden_cloud_sync: tuple[str, ...] = ()


class TransferPolicy(_Strict):
    max_design_bytes: int = Field(ge=1024)
    max_chunk_bytes: int = Field(ge=64 * 1024)
    upload_expiry_hours: int = Field(ge=1)
    lease_seconds: int = Field(ge=10)


class WatchPolicy(_Strict):
    """The technician's folder watcher (`dentgate tech watch`)."""

    settle_seconds: float = Field(gt=0, le=3600)
    ignore_patterns: tuple[str, ...] = ()
    after_upload: Literal["archive", "delete"]


class AuditPolicy(_Strict):
    """Audit chain checkpoints and log retention (G19); the guideline family asks for at least 5 years."""

    checkpoint_every_events: int = Field(ge=1)
    checkpoint_every_minutes: int = Field(ge=1)
    retention_years_access: int = Field(ge=5)
    retention_years_auth: int = Field(ge=5)
    retention_years_operation: int = Field(ge=5)

    def retention_years(self, category: str) -> int:
        """Years an event of `category` (access, auth, operation) is kept."""
        return {
            "access": self.retention_years_access,
            "auth": self.retention_years_auth,
            "operation": self.retention_years_operation,
        }[category]

    @property
    def longest_retention_years(self) -> int:
        return max(self.retention_years_access, self.retention_years_auth, self.retention_years_operation)


class TrainingTopic(_Strict):
    """One topic of the training curriculum and the roles that must have covered it (G21)."""

    id: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    title_ja: str
    title_en: str
    roles: tuple[Literal["manager", "technician"], ...] = Field(min_length=1)


class TrainingPolicy(_Strict):
    """The curriculum and how long a training counts (G21)."""

    validity_months: int = Field(ge=1, le=60)
    topics: tuple[TrainingTopic, ...] = Field(min_length=1)

    def required_topics(self, role: str) -> tuple[str, ...]:
        return tuple(t.id for t in self.topics if role in t.roles)


ATTESTATION_KINDS = ("privacy-filter", "screen-lock", "removable-media", "personal-device-administration")


class AttestationPolicy(_Strict):
    """Dated statements a remote technician renews (G5, G8, G15); personal-device-administration is
    required only for a personally owned device (G8)."""

    validity_days: int = Field(ge=1, le=730)
    required: tuple[Literal[ATTESTATION_KINDS], ...] = Field(min_length=1)  # type: ignore[valid-type]


class RosterPolicy(_Strict):
    """The prefecture roster (G3)."""

    unfiled_change_blocks_upload: bool


class RecordsPolicy(_Strict):
    """The 歯科技工録 (G20)."""

    completion_days: int = Field(ge=1, le=365)


class SecurityPolicy(_Strict):
    version: str = Field(min_length=1, max_length=32)
    identity: IdentityPolicy
    posture: PosturePolicy
    transfer: TransferPolicy
    watch: WatchPolicy
    audit: AuditPolicy
    training: TrainingPolicy
    attestation: AttestationPolicy
    roster: RosterPolicy
    records: RecordsPolicy


def parse_policy(text: str) -> SecurityPolicy:
    """Validate a policy document (TOML); raises pydantic's ValidationError naming each bad setting."""
    return SecurityPolicy.model_validate(tomllib.loads(text))


@cache
def default_policy() -> SecurityPolicy:
    """The policy shipped in `policies/default.toml`."""
    return parse_policy(resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8"))
