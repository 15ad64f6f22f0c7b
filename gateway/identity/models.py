"""Identity tables. A lab is the tenant every other row belongs to."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.base import Base, LabOwned, UTCDateTime, utcnow


class Lab(Base):
    """A dental laboratory (歯科技工所); its people, stations, designs and logs are invisible to others."""

    __tablename__ = "labs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    archive_recipient: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Account(LabOwned, Base):
    """A person's individual account in one lab (G6: no shared accounts)."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("lab_id", "username", name="uq_accounts_lab_username"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    totp_confirmed: Mapped[bool] = mapped_column(default=False)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    activation_secret_hash: Mapped[str | None] = mapped_column(sa.String(64))
    activation_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    identity_verified: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PasswordHistory(LabOwned, Base):
    """Earlier password hashes of an account, so they cannot be reused (G10)."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecoveryCode(LabOwned, Base):
    """A single-use second factor for when the authenticator is lost; only its hash is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdentityVerification(LabOwned, Base):
    """How a manager verified a person's identity before remote work (G6)."""

    __tablename__ = "identity_verifications"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(sa.String(32))
    document_type: Mapped[str] = mapped_column(sa.String(64))
    verified_on: Mapped[date] = mapped_column(sa.Date)
    verifier_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TechnicianProfile(LabOwned, Base):
    """One version of a technician's profile (G3); the newest is current, the rest are history."""

    __tablename__ = "technician_profiles"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    licence_number: Mapped[str] = mapped_column(sa.String(32))
    phone: Mapped[str] = mapped_column(sa.String(32))
    location_label: Mapped[str] = mapped_column(sa.String(100))
    location_address: Mapped[str] = mapped_column(sa.String(300))
    prefecture: Mapped[str] = mapped_column(sa.String(8))
    employed_by_lab: Mapped[bool] = mapped_column(default=True)
    changed_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Device(LabOwned, Base):
    """A technician's enrolled device: its Ed25519 public key, approval and ownership (G8)."""

    __tablename__ = "devices"
    __table_args__ = (sa.UniqueConstraint("thumbprint", name="uq_devices_thumbprint"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    public_key: Mapped[bytes] = mapped_column(sa.LargeBinary(32))
    thumbprint: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    ownership: Mapped[str | None] = mapped_column(sa.String(16))
    manager_can_administer: Mapped[bool | None] = mapped_column()
    approved_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PostureRecord(LabOwned, Base):
    """One posture report of a device, kept as the device ledger's history (G7–G9, G15)."""

    __tablename__ = "posture_records"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    device_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    report: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    compliant: Mapped[bool] = mapped_column()
    failures: Mapped[list[dict[str, str]]] = mapped_column(sa.JSON)


class Station(LabOwned, Base):
    """A milling station in the lab: invited by code, enrolled with its keys, approved by a manager."""

    __tablename__ = "stations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(sa.String(100))
    maker: Mapped[str] = mapped_column(sa.String(100))
    model: Mapped[str] = mapped_column(sa.String(100))
    serial_number: Mapped[str] = mapped_column(sa.String(100))
    location: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default="invited")
    enrolment_code_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    enrolment_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    public_key: Mapped[bytes | None] = mapped_column(sa.LargeBinary(32))
    thumbprint: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    age_recipient: Mapped[str | None] = mapped_column(sa.String(100))
    invited_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    approved_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthSession(LabOwned, Base):
    """A login: an opaque token (stored hashed) bound to the key that proved possession at login."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    station_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("stations.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    key_thumbprint: Mapped[str] = mapped_column(sa.String(64))
    scope: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(sa.String(32))


class UsedProof(Base):
    """A key proof's unique id, kept until it would be stale anyway, so no proof is accepted twice."""

    __tablename__ = "used_proofs"

    jti_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AddressFailures(Base):
    """Failed logins from one client address in the current window (G6 throttling)."""

    __tablename__ = "address_failures"

    address: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(default=0)
