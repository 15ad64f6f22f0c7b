"""The lab security policy: the shipped default in `policies/default.toml`, validated by one schema."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

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


class SecurityPolicy(_Strict):
    version: str
    identity: IdentityPolicy
    posture: PosturePolicy
    transfer: TransferPolicy


def parse_policy(text: str) -> SecurityPolicy:
    """Validate a policy document (TOML); raises pydantic's ValidationError naming each bad setting."""
    return SecurityPolicy.model_validate(tomllib.loads(text))


@cache
def default_policy() -> SecurityPolicy:
    """The policy shipped in `policies/default.toml`."""
    return parse_policy(resources.files("policies").joinpath("default.toml").read_text(encoding="utf-8"))
