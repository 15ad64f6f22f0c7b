"""Local key provider: Ed25519 signing key (RFC 8032) and an AES-256 KEK in a 0600 JSON key file.

Data keys are wrapped with AES-256-GCM (NIST SP 800-38D) under the KEK with a random 96-bit nonce.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.files import create_new_private_file
from gateway.keys import DataKey, KeyProviderError, UnwrapFailed

KEY_FILE_VERSION = 1
WRAP_VERSION = 1
WRAP_AAD = b"dentgate-data-key-v1"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAPPED_BYTES = 1 + _NONCE_BYTES + _KEY_BYTES + _TAG_BYTES
_MAX_KEY_FILE_BYTES = 64 * 1024


def create_private_file(path: Path, content: bytes) -> bool:
    """Create `path` (0600, parent 0700) holding `content`, all or nothing; False if it already existed.

    The content goes to an exclusive temp file first and is hard-linked into place, so `path`
    never exists half-written and a concurrent creator's file is never overwritten.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return create_new_private_file(path, content)
    except OSError as error:
        raise KeyProviderError(f"key file {path} cannot be created: {error.strerror or error}") from error


def read_private_file(path: Path) -> bytes:
    """The bytes of the regular file `path`; KeyProviderError if group/other may access it.

    FileNotFoundError propagates so callers can create the file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise KeyProviderError(f"key file {path} cannot be opened: {error.strerror}") from error
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise KeyProviderError(f"key file {path} is not a regular file")
        if status.st_mode & 0o077:
            raise KeyProviderError(
                f"key file {path} has mode {stat.S_IMODE(status.st_mode):04o}; "
                "it must not be accessible to group or others (chmod 600)"
            )
        content = handle.read(_MAX_KEY_FILE_BYTES + 1)
    if len(content) > _MAX_KEY_FILE_BYTES:
        raise KeyProviderError(f"key file {path} is too large to be a key file")
    return content


def decode_key_bytes(document: dict[str, Any], name: str, path: Path) -> bytes:
    """The base64 field `name` of a key file, which must decode to exactly 32 bytes."""
    value = document.get(name)
    try:
        if not isinstance(value, str):
            raise ValueError
        decoded = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as error:
        raise KeyProviderError(f"key file {path} is malformed: {name} is not base64") from error
    if len(decoded) != _KEY_BYTES:
        raise KeyProviderError(f"key file {path} is malformed: {name} is not {_KEY_BYTES} bytes")
    return decoded


def load_key_document(content: bytes, path: Path) -> dict[str, Any]:
    """The JSON object in a key file at `version` 1; KeyProviderError otherwise."""
    try:
        document = json.loads(content)
    except ValueError as error:
        raise KeyProviderError(f"key file {path} is malformed: not JSON") from error
    if not isinstance(document, dict):
        raise KeyProviderError(f"key file {path} is malformed: not a JSON object")
    if document.get("version") != KEY_FILE_VERSION:
        raise KeyProviderError(f"key file {path} has unsupported version {document.get('version')!r}")
    return document


def short_fingerprint(public_key: bytes) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


class LocalKeyProvider:
    """Key material from a local file; use `LocalKeyProvider.open(path)`."""

    __slots__ = ("_kek", "_path", "_private_key", "_public_key", "key_id")

    def __init__(self, path: Path, private_key: Ed25519PrivateKey, kek: AESGCM) -> None:
        self._path = path
        self._private_key = private_key
        self._public_key = private_key.public_key().public_bytes_raw()
        self._kek = kek
        self.key_id = "local:" + short_fingerprint(self._public_key)

    @classmethod
    def open(cls, path: Path) -> LocalKeyProvider:
        """Load the key file, creating it exclusively first if it does not exist."""
        path = Path(path)
        try:
            content = read_private_file(path)
        except FileNotFoundError:
            create_private_file(path, _new_key_file())
            content = read_private_file(path)
        document = load_key_document(content, path)
        seed = decode_key_bytes(document, "ed25519_private", path)
        kek = decode_key_bytes(document, "kek", path)
        return cls(path, Ed25519PrivateKey.from_private_bytes(seed), AESGCM(kek))

    def __repr__(self) -> str:
        return f"LocalKeyProvider(key_id={self.key_id!r}, path={str(self._path)!r})"

    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (RFC 8032) over `message`."""
        return self._private_key.sign(message)

    def generate_data_key(self) -> DataKey:
        """32 random bytes wrapped as version || nonce || AES-256-GCM(KEK) (NIST SP 800-38D)."""
        key = os.urandom(_KEY_BYTES)
        nonce = os.urandom(_NONCE_BYTES)
        wrapped = bytes([WRAP_VERSION]) + nonce + self._kek.encrypt(nonce, key, WRAP_AAD)
        return DataKey(plaintext=key, wrapped=wrapped)

    def unwrap_data_key(self, wrapped: bytes) -> bytes:
        wrapped = bytes(wrapped)
        if len(wrapped) != _WRAPPED_BYTES or wrapped[0] != WRAP_VERSION:
            raise UnwrapFailed("wrapped data key is malformed")
        nonce, sealed = wrapped[1 : 1 + _NONCE_BYTES], wrapped[1 + _NONCE_BYTES :]
        try:
            return self._kek.decrypt(nonce, sealed, WRAP_AAD)
        except InvalidTag as error:
            raise UnwrapFailed("wrapped data key was altered or wrapped by another key") from error

    def check_ready(self) -> None:
        if not self._path.exists():
            raise KeyProviderError(f"key file {self._path} has disappeared")


def _new_key_file() -> bytes:
    """A fresh key file: a 32-byte Ed25519 seed (RFC 8032 §5.1.5) and a 32-byte KEK."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    document = {
        "version": KEY_FILE_VERSION,
        "ed25519_private": base64.b64encode(seed).decode("ascii"),
        "kek": base64.b64encode(os.urandom(_KEY_BYTES)).decode("ascii"),
        "created_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(document, indent=2).encode("utf-8") + b"\n"
