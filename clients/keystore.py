"""Private keys of a technician device or a milling station, protected at rest (G15).

Two backends behind one `KeyStore` protocol:

- `KeyringStore`: the OS keyring (Windows Credential Manager, macOS Keychain, Secret Service), only when the
  active backend is a real, secure one;
- `PassphraseFileStore`: one 0600 file per key in a 0700 directory, sealed with AES-256-GCM (NIST SP 800-38D)
  under a key derived from a passphrase with scrypt (RFC 7914), the key name bound as associated data.

No exception message, repr or log names secret material. The identities kept in them are in `clients.identities`.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import os
import re
import stat
from pathlib import Path
from typing import Protocol

import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from gateway.files import ON_WINDOWS, create_new_private_file, fsync_directory

__all__ = [
    "DEFAULT_SERVICE",
    "InvalidKeyName",
    "InvalidPassphrase",
    "InvalidSecret",
    "KeyAlreadyExists",
    "KeyNotFound",
    "KeyStore",
    "KeyStoreCorrupt",
    "KeyStoreError",
    "KeyStoreInsecure",
    "KeyStoreLocked",
    "KeyStoreUnavailable",
    "KeyringStore",
    "PassphraseFileStore",
    "open_key_store",
]

DEFAULT_SERVICE = "dentgate"
_NAME_PATTERN = re.compile(r"[a-z0-9-]{1,64}")


# --- errors ---------------------------------------------------------------------------------


class KeyStoreError(Exception):
    """Base of every key store error. Messages name keys and files, never key material."""


class KeyNotFound(KeyStoreError):
    """No key is stored under that name."""


class KeyAlreadyExists(KeyStoreError):
    """A key is already stored under that name; keys are never overwritten silently."""


class KeyStoreLocked(KeyStoreError):
    """The store cannot be opened with what was given: wrong passphrase, or a locked OS keyring."""


class KeyStoreCorrupt(KeyStoreError):
    """A stored key is malformed, was altered, or belongs to another name."""


class KeyStoreInsecure(KeyStoreError):
    """A key file or directory is accessible to other users, so it is not used."""


class KeyStoreUnavailable(KeyStoreError):
    """No usable key store: no secure OS keyring and no passphrase, or the keyring failed."""


class InvalidKeyName(KeyStoreError, ValueError):
    """A key name outside `[a-z0-9-]{1,64}`."""


class InvalidPassphrase(KeyStoreError, ValueError):
    """An empty passphrase, or one that is not bytes."""


class InvalidSecret(KeyStoreError, TypeError):
    """A secret that is not bytes."""


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise InvalidKeyName("key names are 1 to 64 characters from a-z, 0-9 and '-'")
    return name


def _check_secret(secret: object) -> bytes:
    if not isinstance(secret, bytes | bytearray | memoryview):
        raise InvalidSecret("a secret must be bytes")
    return bytes(secret)


# --- the protocol ---------------------------------------------------------------------------


class KeyStore(Protocol):
    """Where a device or station keeps its private keys.

    `save` never replaces an existing key: it raises KeyAlreadyExists; `delete` first to replace one.
    """

    def save(self, name: str, secret: bytes) -> None:
        """Store `secret` under `name`; KeyAlreadyExists if `name` is taken."""
        ...

    def load(self, name: str) -> bytes:
        """The secret stored under `name`; KeyNotFound if there is none."""
        ...

    def delete(self, name: str) -> None:
        """Remove the secret stored under `name`; KeyNotFound if there is none."""
        ...


# --- OS keyring -----------------------------------------------------------------------------


def _is_secure_backend(backend: keyring.backend.KeyringBackend) -> bool:
    """True for a backend that keeps secrets in a real OS key store (not fail, null, chainer or keyrings.alt)."""
    if isinstance(
        backend,
        keyring.backends.fail.Keyring | keyring.backends.null.Keyring | keyring.backends.chainer.ChainerBackend,
    ):
        return False
    module = type(backend).__module__ or ""
    # keyrings.alt holds plaintext files and other backends its own README calls insecure.
    if module == "keyrings.alt" or module.startswith("keyrings.alt."):
        return False
    try:
        priority = type(backend).priority
    except (RuntimeError, NotImplementedError, ImportError, AttributeError):
        return False
    return isinstance(priority, int | float) and priority > 0


def _secure_keyring() -> keyring.backend.KeyringBackend | None:
    """The active keyring backend if secure; for a chainer, its highest-priority secure backend; else None."""
    try:
        active = keyring.get_keyring()
        if isinstance(active, keyring.backends.chainer.ChainerBackend):
            candidates = list(active.backends)
        else:
            candidates = [active]
    except (keyring.errors.KeyringError, RuntimeError, ImportError, ValueError):
        return None
    return next((backend for backend in candidates if _is_secure_backend(backend)), None)


class KeyringStore:
    """Secrets in the OS keyring as base64 passwords of `service`, one username per key name.

    The backend is chosen once, at construction: the active keyring if it is secure, or the highest-priority
    secure backend behind keyring's chainer. KeyStoreUnavailable if there is none.
    """

    __slots__ = ("_backend", "service")

    def __init__(self, service: str = DEFAULT_SERVICE) -> None:
        if not isinstance(service, str) or not service:
            raise KeyStoreError("the keyring service name must be a non-empty string")
        backend = _secure_keyring()
        if backend is None:
            raise KeyStoreUnavailable("no secure OS keyring on this machine")
        self._backend = backend
        self.service = service

    @staticmethod
    def available() -> bool:
        """True only when the active keyring backend is a real, secure OS key store."""
        return _secure_keyring() is not None

    @property
    def backend_name(self) -> str:
        """The class of the keyring backend in use, for display."""
        return f"{type(self._backend).__module__}.{type(self._backend).__name__}"

    def __repr__(self) -> str:
        return f"KeyringStore(service={self.service!r}, backend={self.backend_name!r})"

    def save(self, name: str, secret: bytes) -> None:
        name, secret = check_name(name), _check_secret(secret)
        if self._get(name) is not None:
            raise KeyAlreadyExists(f"key {name!r} already exists in the OS keyring (service {self.service!r})")
        encoded = base64.b64encode(secret).decode("ascii")
        try:
            self._backend.set_password(self.service, name, encoded)
        except keyring.errors.KeyringLocked as error:
            raise KeyStoreLocked(f"the OS keyring is locked; unlock it to store key {name!r}") from error
        except keyring.errors.KeyringError as error:
            raise KeyStoreUnavailable(
                f"the OS keyring refused to store key {name!r} ({type(error).__name__})"
            ) from error

    def load(self, name: str) -> bytes:
        name = check_name(name)
        encoded = self._get(name)
        if encoded is None:
            raise KeyNotFound(f"no key {name!r} in the OS keyring (service {self.service!r})")
        try:
            return base64.b64decode(encoded.encode("ascii"), validate=True)
        except (ValueError, binascii.Error):
            raise KeyStoreCorrupt(f"key {name!r} in the OS keyring is not valid base64") from None

    def delete(self, name: str) -> None:
        name = check_name(name)
        if self._get(name) is None:
            raise KeyNotFound(f"no key {name!r} in the OS keyring (service {self.service!r})")
        try:
            self._backend.delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError as error:
            raise KeyNotFound(f"no key {name!r} in the OS keyring (service {self.service!r})") from error
        except keyring.errors.KeyringLocked as error:
            raise KeyStoreLocked(f"the OS keyring is locked; unlock it to delete key {name!r}") from error
        except keyring.errors.KeyringError as error:
            raise KeyStoreUnavailable(
                f"the OS keyring refused to delete key {name!r} ({type(error).__name__})"
            ) from error

    def _get(self, name: str) -> str | None:
        try:
            return self._backend.get_password(self.service, name)
        except keyring.errors.KeyringLocked as error:
            raise KeyStoreLocked(f"the OS keyring is locked; unlock it to read key {name!r}") from error
        except keyring.errors.KeyringError as error:
            raise KeyStoreUnavailable(f"the OS keyring failed to read key {name!r} ({type(error).__name__})") from error


# --- passphrase-protected files -------------------------------------------------------------

FILE_MAGIC = b"DGKS"
FILE_VERSION = 1
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_CHECK_BYTES = 16
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_BYTES = 32
_HEADER_BYTES = len(FILE_MAGIC) + 1
_PREFIX_BYTES = _HEADER_BYTES + _SALT_BYTES + _CHECK_BYTES + _NONCE_BYTES
_MAX_FILE_BYTES = 64 * 1024
_CHECK_LABEL = b"dentgate-keystore-v1 passphrase check"
_AAD_LABEL = b"dentgate-keystore-v1\x00"
_FILE_SUFFIX = ".key"


def _derive_keys(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """scrypt (RFC 7914, N=2^15, r=8, p=1) to 64 bytes: the AES-256-GCM key and the passphrase-check key."""
    derived = Scrypt(salt=salt, length=2 * _KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)
    return derived[:_KEY_BYTES], derived[_KEY_BYTES:]


def _passphrase_check(check_key: bytes) -> bytes:
    return hmac.new(check_key, _CHECK_LABEL, hashlib.sha256).digest()[:_CHECK_BYTES]


def _associated_data(name: str, prefix: bytes) -> bytes:
    """GCM associated data: the key name (so a file renamed to another name fails) and the whole file prefix."""
    return _AAD_LABEL + name.encode("ascii") + b"\x00" + prefix


def seal_secret(passphrase: bytes, name: str, secret: bytes) -> bytes:
    """The version-1 file for `secret` under `name`.

    Layout: "DGKS" || 0x01 || salt(16) || check(16) || nonce(12) || AES-256-GCM(secret) || tag(16), where `check`
    is HMAC-SHA256(check key, label)[:16] and tells a wrong passphrase apart from an altered file.
    """
    salt, nonce = os.urandom(_SALT_BYTES), os.urandom(_NONCE_BYTES)
    encryption_key, check_key = _derive_keys(passphrase, salt)
    prefix = FILE_MAGIC + bytes([FILE_VERSION]) + salt + _passphrase_check(check_key) + nonce
    return prefix + AESGCM(encryption_key).encrypt(nonce, secret, _associated_data(name, prefix))


def open_secret(passphrase: bytes, name: str, content: bytes, where: str) -> bytes:
    """The secret in a version-1 file; KeyStoreLocked on a wrong passphrase, KeyStoreCorrupt if altered."""
    if len(content) < _PREFIX_BYTES + _TAG_BYTES or not content.startswith(FILE_MAGIC):
        raise KeyStoreCorrupt(f"{where} is not a DentGate key file (truncated or wrong format)")
    version = content[len(FILE_MAGIC)]
    if version != FILE_VERSION:
        raise KeyStoreCorrupt(f"{where} has unsupported format version {version}")
    offset = _HEADER_BYTES
    salt = content[offset : offset + _SALT_BYTES]
    offset += _SALT_BYTES
    check = content[offset : offset + _CHECK_BYTES]
    offset += _CHECK_BYTES
    nonce = content[offset : offset + _NONCE_BYTES]
    prefix, sealed = content[:_PREFIX_BYTES], content[_PREFIX_BYTES:]
    encryption_key, check_key = _derive_keys(passphrase, salt)
    if not hmac.compare_digest(check, _passphrase_check(check_key)):
        raise KeyStoreLocked(f"wrong passphrase for {where} (or its salt/check bytes were altered)")
    try:
        return AESGCM(encryption_key).decrypt(nonce, sealed, _associated_data(name, prefix))
    except InvalidTag:
        raise KeyStoreCorrupt(
            f"{where} failed its integrity check: it was altered, or it holds a key stored under another name"
        ) from None


class PassphraseFileStore:
    """One file `<directory>/<name>.key` per key, sealed under a passphrase (see `seal_secret`).

    Files are created 0600 in a 0700 directory, all or nothing (temp file, fsync, link into place), and never
    replaced. Files or directories accessible to group/others are refused (POSIX; on Windows the ACLs of the
    user profile apply instead). Each save and load runs scrypt once: about 32 MiB and tens of milliseconds.
    """

    __slots__ = ("_passphrase", "directory")

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        if not isinstance(passphrase, bytes | bytearray):
            raise InvalidPassphrase("the passphrase must be bytes")
        if not passphrase:
            raise InvalidPassphrase("the passphrase must not be empty")
        self.directory = Path(directory)
        self._passphrase = bytes(passphrase)

    def __repr__(self) -> str:
        return f"PassphraseFileStore(directory={str(self.directory)!r})"

    def path_for(self, name: str) -> Path:
        """The file that holds key `name`."""
        return self.directory / f"{check_name(name)}{_FILE_SUFFIX}"

    def save(self, name: str, secret: bytes) -> None:
        path, secret = self.path_for(name), _check_secret(secret)
        self._prepare_directory()
        if path.exists() or path.is_symlink():
            raise KeyAlreadyExists(f"key {name!r} already exists ({path})")
        content = seal_secret(self._passphrase, name, secret)
        try:
            created = create_new_private_file(path, content)
        except OSError as error:
            raise KeyStoreError(
                f"key file {path} cannot be written: {error.strerror or type(error).__name__}"
            ) from None
        if not created:
            raise KeyAlreadyExists(f"key {name!r} already exists ({path})")

    def load(self, name: str) -> bytes:
        path = self.path_for(name)
        self._check_directory()
        content = _read_private_file(path, name)
        return open_secret(self._passphrase, name, content, f"key file {path}")

    def delete(self, name: str) -> None:
        path = self.path_for(name)
        self._check_directory()
        try:
            path.unlink()
        except FileNotFoundError:
            raise KeyNotFound(f"no key {name!r} in {self.directory}") from None
        except OSError as error:
            raise KeyStoreError(
                f"key file {path} cannot be deleted: {error.strerror or type(error).__name__}"
            ) from None
        fsync_directory(self.directory)

    def _prepare_directory(self) -> None:
        """Create the directory 0700 if missing; refuse one that group/others may write to."""
        if not self.directory.exists():
            try:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not ON_WINDOWS:
                    os.chmod(self.directory, 0o700)
            except OSError as error:
                raise KeyStoreError(
                    f"key directory {self.directory} cannot be created: {error.strerror or type(error).__name__}"
                ) from None
        self._check_directory()

    def _check_directory(self) -> None:
        if ON_WINDOWS:
            return
        try:
            status = os.stat(self.directory)
        except FileNotFoundError:
            return  # nothing stored yet: load and delete report KeyNotFound
        except OSError as error:
            raise KeyStoreError(
                f"key directory {self.directory} cannot be examined: {error.strerror or type(error).__name__}"
            ) from None
        if not stat.S_ISDIR(status.st_mode):
            raise KeyStoreError(f"key directory {self.directory} is not a directory")
        if status.st_mode & 0o022:
            raise KeyStoreInsecure(
                f"key directory {self.directory} has mode {stat.S_IMODE(status.st_mode):04o}; "
                "group or others may replace its files (chmod 700)"
            )


def _read_private_file(path: Path, name: str) -> bytes:
    """The bytes of the regular file `path`, refused when group/others may access it (POSIX)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise KeyNotFound(f"no key {name!r} ({path} does not exist)") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise KeyStoreInsecure(f"key file {path} is a symbolic link; it is not followed") from None
        raise KeyStoreError(f"key file {path} cannot be opened: {error.strerror or type(error).__name__}") from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise KeyStoreCorrupt(f"key file {path} is not a regular file")
        if not ON_WINDOWS and status.st_mode & 0o077:
            raise KeyStoreInsecure(
                f"key file {path} has mode {stat.S_IMODE(status.st_mode):04o}; "
                "it must not be accessible to group or others (chmod 600)"
            )
        content = handle.read(_MAX_FILE_BYTES + 1)
    if len(content) > _MAX_FILE_BYTES:
        raise KeyStoreCorrupt(f"key file {path} is too large to be a key file")
    return content


# --- choosing a store -----------------------------------------------------------------------


def open_key_store(directory: Path, passphrase: bytes | None) -> KeyStore:
    """The passphrase file store in `directory` if a passphrase is given, else the OS keyring if secure."""
    if passphrase is not None:
        return PassphraseFileStore(directory, passphrase)
    if KeyringStore.available():
        return KeyringStore()
    raise KeyStoreUnavailable("no OS keyring on this machine; give a passphrase (--passphrase-stdin)")
