"""Field-level encryption of sensitive metadata: envelope encryption with AES-256-GCM (NIST SP 800-38D).

Layout: version (1 byte) || wrapped-key length (2 bytes, big-endian) || wrapped key || nonce (12) || ciphertext+tag.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import DentGateError
from gateway.keys import KeyProvider, KeyProviderError, UnwrapFailed

FIELD_VERSION = 1
_HEADER = struct.Struct(">BH")
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_BYTES = 32
_AAD_LABEL = b"dentgate-field-v1\x00"


class FieldDecryptFailed(DentGateError):
    code = "field-decrypt-failed"
    status = 500
    title = "An encrypted field could not be decrypted"


def _associated_data(context: str) -> bytes:
    """The AEAD associated data: a version label, then the caller's context (UTF-8)."""
    return _AAD_LABEL + context.encode("utf-8")


def seal_field(provider: KeyProvider, plaintext: bytes, context: str) -> bytes:
    """Encrypt `plaintext` under a fresh data key, binding `context`; open only with the same context."""
    data_key = provider.generate_data_key()
    if len(data_key.wrapped) > 0xFFFF or len(data_key.plaintext) != _KEY_BYTES:
        raise KeyProviderError("key provider returned an unusable data key")
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(data_key.plaintext).encrypt(nonce, plaintext, _associated_data(context))
    return _HEADER.pack(FIELD_VERSION, len(data_key.wrapped)) + data_key.wrapped + nonce + ciphertext


def open_field(provider: KeyProvider, sealed: bytes, context: str) -> bytes:
    """The plaintext of a `seal_field` blob; FieldDecryptFailed if altered, malformed or the context differs."""
    sealed = bytes(sealed)
    if len(sealed) < _HEADER.size:
        raise FieldDecryptFailed("encrypted field is truncated")
    version, wrapped_length = _HEADER.unpack_from(sealed)
    if version != FIELD_VERSION:
        raise FieldDecryptFailed(f"encrypted field has unsupported version {version}")
    nonce_start = _HEADER.size + wrapped_length
    body_start = nonce_start + _NONCE_BYTES
    if wrapped_length == 0 or len(sealed) < body_start + _TAG_BYTES:
        raise FieldDecryptFailed("encrypted field is truncated")
    try:
        key = provider.unwrap_data_key(sealed[_HEADER.size : nonce_start])
    except UnwrapFailed as error:
        raise FieldDecryptFailed("encrypted field's data key cannot be unwrapped") from error
    if len(key) != _KEY_BYTES:
        raise FieldDecryptFailed("encrypted field's data key has the wrong length")
    try:
        return AESGCM(key).decrypt(sealed[nonce_start:body_start], sealed[body_start:], _associated_data(context))
    except InvalidTag as error:
        raise FieldDecryptFailed("encrypted field was altered or sealed for another context") from error
