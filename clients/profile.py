"""What the command line remembers between runs: the gateway, the login and the keys, in one home folder."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.api import GatewayClient
from clients.identities import create_device_identity, load_device_identity
from clients.keystore import KeyNotFound, KeyStore, open_key_store

HOME_VARIABLE = "DENTGATE_HOME"
SESSION_KEY_NAME = "session"
PASSPHRASE_VARIABLE = "DENTGATE_KEY_PASSPHRASE"  # noqa: S105 (a variable name)


def client_home() -> Path:
    """`$DENTGATE_HOME`, or `~/.dentgate`."""
    return Path(os.environ.get(HOME_VARIABLE) or Path.home() / ".dentgate")


def key_store(home: Path) -> KeyStore:
    """The OS keyring, or a passphrase-protected folder when `DENTGATE_KEY_PASSPHRASE` is set (G15)."""
    passphrase = os.environ.get(PASSPHRASE_VARIABLE)
    return open_key_store(home / "keys", passphrase.encode() if passphrase is not None else None)


def device_key(home: Path, create: bool = False) -> Ed25519PrivateKey:
    """This device's signing key, made on first use when `create` (it never leaves the device)."""
    store = key_store(home)
    try:
        return load_device_identity(store).signing_key
    except KeyNotFound:
        if not create:
            raise
        return create_device_identity(store).signing_key


@dataclass
class Login:
    """The current session: a token that only works with the key that logged in."""

    gateway: str
    lab: str
    username: str
    token: str = field(repr=False)
    role: str
    scope: str
    uses_device_key: bool

    def client(self, home: Path) -> GatewayClient:
        key = device_key(home) if self.uses_device_key else session_key(home)
        return GatewayClient(self.gateway, key, self.token)


def session_key(home: Path) -> Ed25519PrivateKey:
    """The key the current (non-device) login is bound to, kept in the key store, not beside the token."""
    return Ed25519PrivateKey.from_private_bytes(key_store(home).load(SESSION_KEY_NAME))


def keep_session_key(home: Path, key: Ed25519PrivateKey) -> None:
    """Store a new login's key, replacing the previous login's."""
    store = key_store(home)
    with contextlib.suppress(KeyNotFound):
        store.delete(SESSION_KEY_NAME)
    store.save(SESSION_KEY_NAME, key.private_bytes_raw())


def session_file(home: Path) -> Path:
    return home / "session.json"


def save_login(home: Path, login: Login) -> None:
    """Write the session file owner-only (0600), replacing the previous one atomically."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = home / ".session.json.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(login), file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, session_file(home))


def load_login(home: Path) -> Login | None:
    path = session_file(home)
    if not path.exists():
        return None
    return Login(**json.loads(path.read_text(encoding="utf-8")))


def forget_login(home: Path) -> None:
    session_file(home).unlink(missing_ok=True)
