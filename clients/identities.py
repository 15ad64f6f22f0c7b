"""A device's or station's own keys, kept in a key store (G15): made on the machine, never sent anywhere."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.keystore import KeyStore, KeyStoreCorrupt, KeyStoreError, check_name
from gateway.identity.proofs import key_fingerprint

_SEED_BYTES = 32


@dataclass(frozen=True, eq=False, repr=False)
class DeviceIdentity:
    """A technician device's Ed25519 signing key (RFC 8032)."""

    signing_key: Ed25519PrivateKey = field(repr=False)

    @property
    def public_key_raw(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self.signing_key.public_key().public_bytes_raw()

    @property
    def signing_fingerprint(self) -> str:
        return key_fingerprint(self.public_key_raw)

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message)

    def __repr__(self) -> str:
        return f"DeviceIdentity(signing_fingerprint={self.signing_fingerprint!r})"


@dataclass(frozen=True, eq=False, repr=False)
class StationIdentity:
    """A milling station's Ed25519 signing key and its age X25519 identity (jobs are encrypted to it)."""

    signing_key: Ed25519PrivateKey = field(repr=False)
    age_identity: pyrage.x25519.Identity = field(repr=False)

    @property
    def public_key_raw(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self.signing_key.public_key().public_bytes_raw()

    @property
    def signing_fingerprint(self) -> str:
        return key_fingerprint(self.public_key_raw)

    @property
    def age_recipient(self) -> str:
        """The age recipient ("age1…") to encrypt to this station; it is its own fingerprint."""
        return str(self.age_identity.to_public())

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt an age file encrypted to `age_recipient` (raises pyrage.DecryptError otherwise)."""
        return pyrage.decrypt(ciphertext, [self.age_identity])

    def __repr__(self) -> str:
        return (
            f"StationIdentity(signing_fingerprint={self.signing_fingerprint!r}, age_recipient={self.age_recipient!r})"
        )


def create_device_identity(store: KeyStore, name: str = "device") -> DeviceIdentity:
    """Generate a device signing key and store its seed under `name`; KeyAlreadyExists if one is there."""
    signing_key = Ed25519PrivateKey.generate()
    store.save(name, signing_key.private_bytes_raw())
    return DeviceIdentity(signing_key)


def load_device_identity(store: KeyStore, name: str = "device") -> DeviceIdentity:
    return DeviceIdentity(_load_signing_key(store, name))


def create_station_identity(store: KeyStore, name: str = "station") -> StationIdentity:
    """Generate a station's keys, stored under f"{name}-signing" and f"{name}-age"; never overwrites either."""
    signing_name, age_name = f"{name}-signing", f"{name}-age"
    check_name(signing_name)
    check_name(age_name)
    signing_key = Ed25519PrivateKey.generate()
    age_identity = pyrage.x25519.Identity.generate()
    store.save(signing_name, signing_key.private_bytes_raw())
    try:
        store.save(age_name, str(age_identity).encode("ascii"))
    except BaseException:
        # Leave no half identity behind: remove the signing key this call stored.
        with contextlib.suppress(KeyStoreError):
            store.delete(signing_name)
        raise
    return StationIdentity(signing_key, age_identity)


def load_station_identity(store: KeyStore, name: str = "station") -> StationIdentity:
    signing_key = _load_signing_key(store, f"{name}-signing")
    age_name = f"{name}-age"
    encoded = store.load(age_name)
    try:
        age_identity = pyrage.x25519.Identity.from_str(encoded.decode("ascii"))
    except (UnicodeDecodeError, pyrage.IdentityError):
        raise KeyStoreCorrupt(f"key {age_name!r} is not an age X25519 identity") from None
    return StationIdentity(signing_key, age_identity)


def _load_signing_key(store: KeyStore, name: str) -> Ed25519PrivateKey:
    seed = store.load(name)
    if len(seed) != _SEED_BYTES:
        raise KeyStoreCorrupt(f"key {name!r} is not a {_SEED_BYTES}-byte Ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(seed)
