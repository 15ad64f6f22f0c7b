"""AWS KMS key provider: data keys from KMS, and an Ed25519 signing seed (RFC 8032) sealed by KMS.

The seed is generated locally once, stored only as a KMS ciphertext in a 0600 file, and decrypted
into memory at start-up.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.keys import DataKey, KeyProviderError, UnwrapFailed
from gateway.keys.local import (
    KEY_FILE_VERSION,
    create_private_file,
    load_key_document,
    read_private_file,
    short_fingerprint,
)

SIGNING_KEY_CONTEXT = {"purpose": "dentgate-gateway-signing-key"}
FIELD_KEY_CONTEXT = {"purpose": "dentgate-field-key"}
_SEED_BYTES = 32
_MAX_CIPHERTEXT_BYTES = 6144
# KMS answers that mean "this ciphertext is not ours or was altered"; anything else is an outage.
_NOT_OURS = frozenset(
    {
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "AccessDeniedException",
        "ValidationException",
    }
)


def _reason(error: BotoCoreError | ClientError) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Unknown')}: {details.get('Message', '')}".strip()
    return str(error)


class KmsKeyProvider:
    """Keys held by an AWS KMS symmetric key; `client` is a boto3 KMS client."""

    __slots__ = ("_client", "_kms_key_id", "_path", "_private_key", "_public_key", "key_id")

    def __init__(self, kms_key_id: str, sealed_key_path: Path, client: Any) -> None:
        self._kms_key_id = kms_key_id
        self._path = Path(sealed_key_path)
        self._client = client
        seed = self._load_or_create_seed()
        self._private_key = Ed25519PrivateKey.from_private_bytes(seed)
        self._public_key = self._private_key.public_key().public_bytes_raw()
        self.key_id = f"aws-kms:{kms_key_id}:{short_fingerprint(self._public_key)}"

    def __repr__(self) -> str:
        return f"KmsKeyProvider(key_id={self.key_id!r}, sealed_key_path={str(self._path)!r})"

    def _call(self, action: str, operation: Callable[..., dict[str, Any]], **params: Any) -> dict[str, Any]:
        """Run one KMS operation, reporting any failure as KeyProviderError."""
        try:
            return operation(**params)
        except (BotoCoreError, ClientError) as error:
            raise KeyProviderError(f"AWS KMS {action} with key {self._kms_key_id} failed: {_reason(error)}") from error

    def _load_or_create_seed(self) -> bytes:
        try:
            content = read_private_file(self._path)
        except FileNotFoundError:
            seed = Ed25519PrivateKey.generate().private_bytes_raw()
            sealed = self._call(
                "encrypt",
                self._client.encrypt,
                KeyId=self._kms_key_id,
                Plaintext=seed,
                EncryptionContext=SIGNING_KEY_CONTEXT,
            )["CiphertextBlob"]
            document = {
                "version": KEY_FILE_VERSION,
                "kms_key_id": self._kms_key_id,
                "sealed_ed25519_seed": base64.b64encode(sealed).decode("ascii"),
            }
            if create_private_file(self._path, json.dumps(document, indent=2).encode("utf-8") + b"\n"):
                return seed
            content = read_private_file(self._path)
        return self._unseal(content)

    def _unseal(self, content: bytes) -> bytes:
        document = load_key_document(content, self._path)
        if document.get("kms_key_id") != self._kms_key_id:
            raise KeyProviderError(
                f"sealed key file {self._path} belongs to KMS key {document.get('kms_key_id')!r}, "
                f"not the configured {self._kms_key_id!r}; refusing to use it"
            )
        try:
            sealed = base64.b64decode(document.get("sealed_ed25519_seed", ""), validate=True)
        except (ValueError, TypeError, binascii.Error) as error:
            raise KeyProviderError(f"sealed key file {self._path} is malformed") from error
        if not sealed:
            raise KeyProviderError(f"sealed key file {self._path} is malformed")
        seed = self._call(
            "decrypt of the sealed signing key",
            self._client.decrypt,
            KeyId=self._kms_key_id,
            CiphertextBlob=sealed,
            EncryptionContext=SIGNING_KEY_CONTEXT,
        )["Plaintext"]
        if len(seed) != _SEED_BYTES:
            raise KeyProviderError(f"sealed key file {self._path} does not hold an Ed25519 seed")
        return bytes(seed)

    def public_key(self) -> bytes:
        return self._public_key

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (RFC 8032) over `message`, made in process with the unsealed seed."""
        return self._private_key.sign(message)

    def generate_data_key(self) -> DataKey:
        """A KMS AES-256 data key bound to the field-key encryption context."""
        response = self._call(
            "generate-data-key",
            self._client.generate_data_key,
            KeyId=self._kms_key_id,
            KeySpec="AES_256",
            EncryptionContext=FIELD_KEY_CONTEXT,
        )
        return DataKey(plaintext=bytes(response["Plaintext"]), wrapped=bytes(response["CiphertextBlob"]))

    def unwrap_data_key(self, wrapped: bytes) -> bytes:
        wrapped = bytes(wrapped)
        if not 1 <= len(wrapped) <= _MAX_CIPHERTEXT_BYTES:
            raise UnwrapFailed("wrapped data key is malformed")
        try:
            response = self._client.decrypt(
                KeyId=self._kms_key_id, CiphertextBlob=wrapped, EncryptionContext=FIELD_KEY_CONTEXT
            )
        except ParamValidationError as error:
            raise UnwrapFailed("wrapped data key is malformed") from error
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_OURS:
                raise UnwrapFailed(f"AWS KMS refused the wrapped data key: {_reason(error)}") from error
            raise KeyProviderError(f"AWS KMS decrypt failed: {_reason(error)}") from error
        except BotoCoreError as error:
            raise KeyProviderError(f"AWS KMS decrypt failed: {_reason(error)}") from error
        return bytes(response["Plaintext"])

    def check_ready(self) -> None:
        """The KMS key is reachable, enabled and usable for encrypt/decrypt."""
        metadata = self._call("describe-key", self._client.describe_key, KeyId=self._kms_key_id)["KeyMetadata"]
        state = metadata.get("KeyState")
        if state != "Enabled":
            raise KeyProviderError(f"AWS KMS key {self._kms_key_id} is {state}, not Enabled")
        if metadata.get("KeyUsage", "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
            raise KeyProviderError(f"AWS KMS key {self._kms_key_id} is not an encrypt/decrypt key")
