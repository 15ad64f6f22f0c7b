"""Key provider: the gateway's Ed25519 signing key and data-key wrapping for field encryption.

Backends: a local key file and AWS KMS. Private key material never leaves the provider
object and is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gateway.errors import DentGateError


class KeyProviderError(DentGateError):
    code = "key-provider-error"
    status = 503
    title = "Key provider unavailable"


class UnwrapFailed(DentGateError):
    code = "unwrap-failed"
    status = 500
    title = "A wrapped data key could not be unwrapped"


@dataclass(frozen=True)
class DataKey:
    """A fresh 256-bit data key and its wrapped form; keep only `wrapped`, use `plaintext` once."""

    plaintext: bytes = field(repr=False)
    wrapped: bytes


class KeyProvider(Protocol):
    """Signs receipts and audit checkpoints; wraps data keys for field-level encryption."""

    key_id: str

    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key of the gateway signing key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature (RFC 8032) over `message` with the gateway key."""
        ...

    def generate_data_key(self) -> DataKey:
        """A new AES-256 data key, with its wrapped form for storage."""
        ...

    def unwrap_data_key(self, wrapped: bytes) -> bytes:
        """The plaintext data key inside `wrapped`; raises UnwrapFailed if it was not ours or was altered."""
        ...

    def check_ready(self) -> None:
        """Raise KeyProviderError with the reason when the provider cannot be used."""
        ...
