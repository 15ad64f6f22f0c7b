"""Opaque secrets handed to people and machines: generated here, only their hashes stored."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """A 256-bit URL-safe random token."""
    return secrets.token_urlsafe(32)


def new_code(groups: int = 4) -> str:
    """A code a person can type: `groups` groups of five characters from an unambiguous alphabet."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(groups))


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a token or code as typed, normalised for codes (case and dashes ignored)."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


def code_hash(code: str) -> str:
    return token_hash(code.upper().replace("-", "").replace(" ", ""))
