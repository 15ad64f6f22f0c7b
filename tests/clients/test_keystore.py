"""Client key stores (G15): the passphrase file store, the OS keyring store and device/station identities."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import pyrage
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clients.identities import (
    DeviceIdentity,
    StationIdentity,
    create_device_identity,
    create_station_identity,
    load_device_identity,
    load_station_identity,
)
from clients.keystore import (
    InvalidKeyName,
    InvalidPassphrase,
    KeyAlreadyExists,
    KeyNotFound,
    KeyringStore,
    KeyStore,
    KeyStoreCorrupt,
    KeyStoreError,
    KeyStoreInsecure,
    KeyStoreLocked,
    KeyStoreUnavailable,
    PassphraseFileStore,
    open_key_store,
)

PASSPHRASE = b"correct horse battery staple"
MESSAGE = b"receipt: case 42, crown.stl, sha256=ab12"
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-process keyring for tests: passwords in a dict keyed by (service, username)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such password")


class LockedKeyring(MemoryKeyring):
    """A keyring whose collection is locked, like Secret Service before the user unlocks it."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("collection is locked")


def secret_spellings(secret: bytes) -> list[str]:
    """The ways key material could leak into text: hex, base64 and Python's bytes repr."""
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1]]


def flip(data: bytes, index: int) -> bytes:
    altered = bytearray(data)
    altered[index] ^= 0xFF
    return bytes(altered)


@pytest.fixture
def use_keyring() -> Iterator[Callable[[keyring.backend.KeyringBackend], keyring.backend.KeyringBackend]]:
    """Install a keyring backend for one test; the previous one is restored afterwards."""
    previous = keyring.get_keyring()

    def install(backend: keyring.backend.KeyringBackend) -> keyring.backend.KeyringBackend:
        keyring.set_keyring(backend)
        return backend

    yield install
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring(use_keyring: Callable[[keyring.backend.KeyringBackend], MemoryKeyring]) -> MemoryKeyring:
    return use_keyring(MemoryKeyring())


@pytest.fixture
def no_keyring(use_keyring: Callable[[keyring.backend.KeyringBackend], keyring.backend.KeyringBackend]) -> None:
    use_keyring(keyring.backends.fail.Keyring())


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def file_store(key_dir: Path) -> PassphraseFileStore:
    return PassphraseFileStore(key_dir, PASSPHRASE)


@pytest.fixture(params=["passphrase-file", "keyring"])
def store(request: pytest.FixtureRequest, key_dir: Path) -> KeyStore:
    if request.param == "passphrase-file":
        return PassphraseFileStore(key_dir, PASSPHRASE)
    request.getfixturevalue("memory_keyring")
    return KeyringStore()


# --- passphrase file store ------------------------------------------------------------------


def test_passphrase_store_round_trips_secret_and_a_new_store_object_reads_it(
    file_store: PassphraseFileStore, key_dir: Path
) -> None:
    secret = os.urandom(32)
    file_store.save("device", secret)

    assert file_store.load("device") == secret
    assert PassphraseFileStore(key_dir, PASSPHRASE).load("device") == secret
    assert file_store.path_for("device") == key_dir / "device.key"


def test_wrong_passphrase_is_refused_as_locked_without_naming_either_passphrase(
    file_store: PassphraseFileStore, key_dir: Path
) -> None:
    file_store.save("device", os.urandom(32))
    wrong = b"incorrect horse"

    with pytest.raises(KeyStoreLocked, match="wrong passphrase") as caught:
        PassphraseFileStore(key_dir, wrong).load("device")

    assert PASSPHRASE.decode() not in str(caught.value)
    assert wrong.decode() not in str(caught.value)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        pytest.param(0, KeyStoreCorrupt, id="magic"),
        pytest.param(4, KeyStoreCorrupt, id="version"),
        pytest.param(5, KeyStoreLocked, id="salt"),
        pytest.param(21, KeyStoreLocked, id="passphrase-check"),
        pytest.param(37, KeyStoreCorrupt, id="nonce"),
        pytest.param(49, KeyStoreCorrupt, id="ciphertext"),
        pytest.param(-1, KeyStoreCorrupt, id="tag"),
    ],
)
def test_flipped_byte_anywhere_in_key_file_is_refused(
    file_store: PassphraseFileStore, index: int, expected: type[KeyStoreError]
) -> None:
    file_store.save("device", os.urandom(32))
    path = file_store.path_for("device")
    path.write_bytes(flip(path.read_bytes(), index))

    with pytest.raises(expected):
        file_store.load("device")


def test_flipped_ciphertext_byte_reports_integrity_failure(file_store: PassphraseFileStore) -> None:
    file_store.save("device", os.urandom(32))
    path = file_store.path_for("device")
    path.write_bytes(flip(path.read_bytes(), 60))

    with pytest.raises(KeyStoreCorrupt, match="integrity check"):
        file_store.load("device")


def test_truncated_key_file_is_refused_as_corrupt(file_store: PassphraseFileStore) -> None:
    file_store.save("device", os.urandom(32))
    path = file_store.path_for("device")
    path.write_bytes(path.read_bytes()[:40])

    with pytest.raises(KeyStoreCorrupt, match="not a DentGate key file"):
        file_store.load("device")


@posix_only
def test_key_file_is_created_0600_in_a_0700_directory(file_store: PassphraseFileStore, key_dir: Path) -> None:
    file_store.save("device", os.urandom(32))

    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(file_store.path_for("device").stat().st_mode) == 0o600
    assert sorted(path.name for path in key_dir.iterdir()) == ["device.key"]  # no temp file left behind


@posix_only
def test_key_file_readable_by_group_or_others_is_refused(file_store: PassphraseFileStore) -> None:
    file_store.save("device", os.urandom(32))
    file_store.path_for("device").chmod(0o644)

    with pytest.raises(KeyStoreInsecure, match="chmod 600"):
        file_store.load("device")


@posix_only
def test_key_directory_writable_by_others_is_refused(file_store: PassphraseFileStore, key_dir: Path) -> None:
    file_store.save("device", os.urandom(32))
    key_dir.chmod(0o777)

    with pytest.raises(KeyStoreInsecure, match="chmod 700"):
        file_store.load("device")
    with pytest.raises(KeyStoreInsecure):
        file_store.save("other", os.urandom(32))


@posix_only
def test_symlinked_key_file_is_not_followed(file_store: PassphraseFileStore, key_dir: Path) -> None:
    file_store.save("device", os.urandom(32))
    file_store.path_for("alias").symlink_to(file_store.path_for("device"))

    with pytest.raises(KeyStoreInsecure, match="symbolic link"):
        file_store.load("alias")


def test_secret_bytes_do_not_appear_in_key_file(file_store: PassphraseFileStore) -> None:
    secret = os.urandom(32)
    file_store.save("device", secret)
    content = file_store.path_for("device").read_bytes()

    assert secret not in content
    for spelling in secret_spellings(secret):
        assert spelling.encode() not in content
    assert PASSPHRASE not in content


def test_two_saves_of_same_secret_give_different_files(file_store: PassphraseFileStore) -> None:
    secret = os.urandom(32)
    file_store.save("first", secret)
    file_store.save("second", secret)

    first, second = (file_store.path_for(name).read_bytes() for name in ("first", "second"))
    assert first[5:21] != second[5:21]  # fresh salt
    assert first[37:49] != second[37:49]  # fresh nonce


def test_key_file_renamed_to_another_name_does_not_open(file_store: PassphraseFileStore) -> None:
    file_store.save("station-signing", os.urandom(32))
    file_store.save("device", os.urandom(32))
    file_store.path_for("device").unlink()
    os.rename(file_store.path_for("station-signing"), file_store.path_for("device"))

    with pytest.raises(KeyStoreCorrupt, match="another name"):
        file_store.load("device")


def test_save_never_overwrites_an_existing_key_file(file_store: PassphraseFileStore) -> None:
    original = os.urandom(32)
    file_store.save("device", original)
    before = file_store.path_for("device").read_bytes()

    with pytest.raises(KeyAlreadyExists):
        file_store.save("device", os.urandom(32))

    assert file_store.path_for("device").read_bytes() == before
    assert file_store.load("device") == original


def test_missing_and_deleted_keys_raise_key_not_found(file_store: PassphraseFileStore) -> None:
    with pytest.raises(KeyNotFound):
        file_store.load("device")  # the directory does not even exist yet
    file_store.save("device", os.urandom(32))
    file_store.delete("device")

    with pytest.raises(KeyNotFound):
        file_store.load("device")
    with pytest.raises(KeyNotFound):
        file_store.delete("device")
    replacement = os.urandom(32)
    file_store.save("device", replacement)
    assert file_store.load("device") == replacement


@pytest.mark.parametrize("passphrase", [b"", bytearray(), "text passphrase"])
def test_empty_or_non_bytes_passphrase_is_rejected(key_dir: Path, passphrase: object) -> None:
    with pytest.raises(InvalidPassphrase):
        PassphraseFileStore(key_dir, passphrase)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "Device", "device.key", "../device", "dev ice", "é", "a" * 65, "device\n"])
def test_names_outside_the_allowed_alphabet_are_rejected(file_store: PassphraseFileStore, name: str) -> None:
    with pytest.raises(InvalidKeyName):
        file_store.save(name, b"secret")
    with pytest.raises(InvalidKeyName):
        file_store.load(name)


def test_longest_allowed_name_is_accepted(file_store: PassphraseFileStore) -> None:
    file_store.save("a-0" * 21 + "z", b"secret")

    assert file_store.load("a-0" * 21 + "z") == b"secret"


def test_file_store_repr_does_not_show_passphrase(file_store: PassphraseFileStore) -> None:
    assert PASSPHRASE.decode() not in repr(file_store)
    assert "keys" in repr(file_store)


# --- OS keyring store -----------------------------------------------------------------------


def test_keyring_store_round_trips_secret_as_base64_under_dentgate_service(memory_keyring: MemoryKeyring) -> None:
    secret = os.urandom(32)
    store = KeyringStore()
    store.save("device", secret)

    assert store.load("device") == secret
    assert base64.b64decode(memory_keyring.passwords[("dentgate", "device")]) == secret


def test_keyring_store_refuses_overwrite_and_reports_missing_keys(memory_keyring: MemoryKeyring) -> None:
    store = KeyringStore(service="dentgate-test")
    store.save("device", b"first")

    with pytest.raises(KeyAlreadyExists):
        store.save("device", b"second")
    assert store.load("device") == b"first"
    store.delete("device")
    with pytest.raises(KeyNotFound):
        store.load("device")
    with pytest.raises(KeyNotFound):
        store.delete("device")


def test_keyring_entry_that_is_not_base64_is_corrupt(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.passwords[("dentgate", "device")] = "not base64!"

    with pytest.raises(KeyStoreCorrupt):
        KeyringStore().load("device")


def test_locked_keyring_raises_key_store_locked(use_keyring: Callable[..., keyring.backend.KeyringBackend]) -> None:
    use_keyring(LockedKeyring())

    with pytest.raises(KeyStoreLocked, match="locked"):
        KeyringStore().load("device")


def test_keyring_available_with_a_real_backend(memory_keyring: MemoryKeyring) -> None:
    assert KeyringStore.available() is True


@pytest.mark.parametrize(
    "backend",
    [keyring.backends.fail.Keyring, keyring.backends.null.Keyring],
    ids=["fail", "null"],
)
def test_keyring_not_available_with_fail_or_null_backend(
    use_keyring: Callable[..., keyring.backend.KeyringBackend], backend: type[keyring.backend.KeyringBackend]
) -> None:
    use_keyring(backend())

    assert KeyringStore.available() is False
    with pytest.raises(KeyStoreUnavailable):
        KeyringStore()


def test_keyring_not_available_with_plaintext_keyrings_alt_backend(
    use_keyring: Callable[..., keyring.backend.KeyringBackend],
) -> None:
    # Stand-in for keyrings.alt.file.PlaintextKeyring, which need not be installed.
    class PlaintextKeyring(MemoryKeyring):
        pass

    PlaintextKeyring.__module__ = "keyrings.alt.file"
    use_keyring(PlaintextKeyring())

    assert KeyringStore.available() is False


def test_keyring_chainer_without_backends_is_not_available(
    use_keyring: Callable[..., keyring.backend.KeyringBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring.backends.chainer.ChainerBackend, "backends", [])
    use_keyring(keyring.backends.chainer.ChainerBackend())

    assert KeyringStore.available() is False


def test_keyring_chainer_uses_its_first_secure_backend(
    use_keyring: Callable[..., keyring.backend.KeyringBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = MemoryKeyring()
    monkeypatch.setattr(keyring.backends.chainer.ChainerBackend, "backends", [keyring.backends.null.Keyring(), memory])
    use_keyring(keyring.backends.chainer.ChainerBackend())

    assert KeyringStore.available() is True
    KeyringStore().save("device", b"secret")
    assert base64.b64decode(memory.passwords[("dentgate", "device")]) == b"secret"


# --- choosing a store -----------------------------------------------------------------------


def test_open_key_store_uses_passphrase_file_store_when_passphrase_given(
    memory_keyring: MemoryKeyring, key_dir: Path
) -> None:
    store = open_key_store(key_dir, PASSPHRASE)

    assert isinstance(store, PassphraseFileStore)
    assert store.directory == key_dir


def test_open_key_store_uses_keyring_when_available_and_no_passphrase(
    memory_keyring: MemoryKeyring, key_dir: Path
) -> None:
    assert isinstance(open_key_store(key_dir, None), KeyringStore)


def test_open_key_store_without_keyring_or_passphrase_raises_unavailable(no_keyring: None, key_dir: Path) -> None:
    with pytest.raises(KeyStoreUnavailable, match="--passphrase-stdin"):
        open_key_store(key_dir, None)


def test_open_key_store_with_empty_passphrase_does_not_fall_back_to_keyring(
    memory_keyring: MemoryKeyring, key_dir: Path
) -> None:
    with pytest.raises(InvalidPassphrase):
        open_key_store(key_dir, b"")


# --- identities (both stores) ---------------------------------------------------------------


def test_device_identity_loads_with_same_public_key_and_its_signatures_verify(store: KeyStore) -> None:
    created = create_device_identity(store)
    loaded = load_device_identity(store)

    assert loaded.public_key_raw == created.public_key_raw
    assert len(loaded.public_key_raw) == 32
    public = Ed25519PublicKey.from_public_bytes(created.public_key_raw)
    public.verify(loaded.sign(MESSAGE), MESSAGE)
    public.verify(loaded.signing_key.sign(MESSAGE), MESSAGE)
    with pytest.raises(InvalidSignature):
        public.verify(loaded.sign(MESSAGE), MESSAGE + b"!")


def test_station_identity_loads_with_same_recipient_and_decrypts_age_messages(store: KeyStore) -> None:
    created = create_station_identity(store)
    loaded = load_station_identity(store)

    assert loaded.age_recipient == created.age_recipient
    assert loaded.age_recipient.startswith("age1")
    assert loaded.public_key_raw == created.public_key_raw
    ciphertext = pyrage.encrypt(b"crown.stl", [pyrage.x25519.Recipient.from_str(created.age_recipient)])
    assert pyrage.decrypt(ciphertext, [loaded.age_identity]) == b"crown.stl"
    assert loaded.decrypt(ciphertext) == b"crown.stl"
    Ed25519PublicKey.from_public_bytes(created.public_key_raw).verify(loaded.sign(MESSAGE), MESSAGE)
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(ciphertext, [pyrage.x25519.Identity.generate()])


def test_station_keys_are_stored_under_signing_and_age_names(store: KeyStore) -> None:
    created = create_station_identity(store, name="mill-3")

    assert len(store.load("mill-3-signing")) == 32
    assert store.load("mill-3-age").startswith(b"AGE-SECRET-KEY-1")
    assert load_station_identity(store, name="mill-3").age_recipient == created.age_recipient


def test_creating_an_identity_twice_raises_and_keeps_the_first(store: KeyStore) -> None:
    device = create_device_identity(store)
    station = create_station_identity(store)

    with pytest.raises(KeyAlreadyExists):
        create_device_identity(store)
    with pytest.raises(KeyAlreadyExists):
        create_station_identity(store)
    assert load_device_identity(store).public_key_raw == device.public_key_raw
    assert load_station_identity(store).age_recipient == station.age_recipient


def test_station_creation_over_a_leftover_age_key_leaves_no_half_identity(store: KeyStore) -> None:
    store.save("station-age", str(pyrage.x25519.Identity.generate()).encode())

    with pytest.raises(KeyAlreadyExists):
        create_station_identity(store)
    with pytest.raises(KeyNotFound):
        store.load("station-signing")


def test_loading_a_missing_identity_raises_key_not_found(store: KeyStore) -> None:
    with pytest.raises(KeyNotFound):
        load_device_identity(store)
    with pytest.raises(KeyNotFound):
        load_station_identity(store)


def test_stored_key_of_wrong_shape_is_corrupt(store: KeyStore) -> None:
    store.save("device", b"too short")
    store.save("station-signing", os.urandom(32))
    store.save("station-age", b"AGE-SECRET-KEY-1NOTVALID")

    with pytest.raises(KeyStoreCorrupt, match="Ed25519 seed"):
        load_device_identity(store)
    with pytest.raises(KeyStoreCorrupt, match="age X25519 identity") as caught:
        load_station_identity(store)
    assert "NOTVALID" not in str(caught.value)


def test_signing_fingerprint_is_openssh_style_sha256_of_raw_public_key(file_store: PassphraseFileStore) -> None:
    station = create_station_identity(file_store)
    device = create_device_identity(file_store)

    for identity in (station, device):
        digest = hashlib.sha256(identity.public_key_raw).digest()
        assert identity.signing_fingerprint == "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
        assert len(identity.signing_fingerprint) == len("SHA256:") + 43


def test_identity_reprs_show_fingerprints_but_no_key_material(file_store: PassphraseFileStore) -> None:
    device = create_device_identity(file_store)
    station = create_station_identity(file_store)
    device_seed = device.signing_key.private_bytes_raw()
    station_seed = station.signing_key.private_bytes_raw()
    age_secret = str(station.age_identity)

    assert isinstance(device, DeviceIdentity)
    assert isinstance(station, StationIdentity)
    assert repr(device) == f"DeviceIdentity(signing_fingerprint={device.signing_fingerprint!r})"
    assert station.age_recipient in repr(station)
    assert station.signing_fingerprint in repr(station)
    for text in (repr(device), str(device), repr(station), str(station)):
        assert "AGE-SECRET-KEY" not in text
        assert age_secret not in text
        for spelling in secret_spellings(device_seed) + secret_spellings(station_seed):
            assert spelling not in text


def test_identities_are_frozen(file_store: PassphraseFileStore) -> None:
    device = create_device_identity(file_store)

    with pytest.raises(AttributeError):
        device.signing_key = None  # type: ignore[misc]
