"""Key providers: one contract for the local and AWS KMS backends, then backend-specific behaviour."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.keys import KeyProvider, KeyProviderError, UnwrapFailed
from gateway.keys.factory import open_key_provider
from gateway.keys.fields import FieldDecryptFailed, open_field, seal_field
from gateway.keys.kms import SIGNING_KEY_CONTEXT, KmsKeyProvider
from gateway.keys.local import LocalKeyProvider
from gateway.settings import Settings

REGION = "ap-northeast-1"
MESSAGE = b"receipt: case 42, crown.stl, sha256=ab12"


def flip(data: bytes, index: int) -> bytes:
    """`data` with every bit of the byte at `index` inverted."""
    altered = bytearray(data)
    altered[index] ^= 0xFF
    return bytes(altered)


def secret_spellings(secret: bytes) -> list[str]:
    """The ways key material could leak into text: hex, base64 and Python's bytes repr."""
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1]]


def kms_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("kms", endpoint_url=endpoint, region_name=REGION)


@dataclass
class Backend:
    """How the contract suite opens providers and reads back secret material for one backend."""

    name: str
    key_file: Path
    open_at: Callable[[Path], KeyProvider]
    open_other: Callable[[], KeyProvider]
    secrets_in: Callable[[Path], list[bytes]]

    def open(self) -> KeyProvider:
        return self.open_at(self.key_file)


def _local_backend(tmp_path: Path) -> Backend:
    def secrets_in(path: Path) -> list[bytes]:
        document = json.loads(path.read_bytes())
        return [base64.b64decode(document["ed25519_private"]), base64.b64decode(document["kek"])]

    return Backend(
        name="local",
        key_file=tmp_path / "keys" / "gateway-key.json",
        open_at=LocalKeyProvider.open,
        open_other=lambda: LocalKeyProvider.open(tmp_path / "other" / "gateway-key.json"),
        secrets_in=secrets_in,
    )


def _kms_backend(tmp_path: Path, endpoint: str, kms_key_id: str) -> Backend:
    client = kms_client(endpoint)
    other_key_id = client.create_key(Description="another gateway")["KeyMetadata"]["KeyId"]

    def secrets_in(path: Path) -> list[bytes]:
        sealed = base64.b64decode(json.loads(path.read_bytes())["sealed_ed25519_seed"])
        seed = client.decrypt(CiphertextBlob=sealed, EncryptionContext=SIGNING_KEY_CONTEXT)["Plaintext"]
        return [seed]

    return Backend(
        name="kms",
        key_file=tmp_path / "keys" / "gateway-key.json",
        open_at=lambda path: KmsKeyProvider(kms_key_id, path, client),
        open_other=lambda: KmsKeyProvider(other_key_id, tmp_path / "other" / "sealed.json", client),
        secrets_in=secrets_in,
    )


@pytest.fixture(params=["local", pytest.param("kms", marks=pytest.mark.kms)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path)
    return _kms_backend(tmp_path, request.getfixturevalue("moto_endpoint"), request.getfixturevalue("kms_key_id"))


@pytest.fixture
def provider(backend: Backend) -> KeyProvider:
    return backend.open()


# --- contract: every backend ----------------------------------------------------------------


def test_signature_verifies_with_public_key_and_fails_for_tampered_message(provider: KeyProvider) -> None:
    public = Ed25519PublicKey.from_public_bytes(provider.public_key())
    signature = provider.sign(MESSAGE)

    public.verify(signature, MESSAGE)
    assert len(signature) == 64
    with pytest.raises(InvalidSignature):
        public.verify(signature, MESSAGE + b"!")
    with pytest.raises(InvalidSignature):
        public.verify(flip(signature, 10), MESSAGE)


def test_key_id_names_backend_and_public_key_fingerprint(backend: Backend, provider: KeyProvider) -> None:
    fingerprint = hashlib.sha256(provider.public_key()).hexdigest()[:16]
    assert len(provider.public_key()) == 32
    assert provider.key_id.startswith("local:" if backend.name == "local" else "aws-kms:")
    assert provider.key_id.endswith(":" + fingerprint)


def test_reopened_provider_has_same_key_and_unwraps_earlier_data_keys(backend: Backend) -> None:
    first = backend.open()
    data_key = first.generate_data_key()
    reopened = backend.open()

    assert reopened.public_key() == first.public_key()
    assert reopened.key_id == first.key_id
    assert reopened.unwrap_data_key(data_key.wrapped) == data_key.plaintext


def test_data_keys_are_fresh_256_bit_keys_that_unwrap(provider: KeyProvider) -> None:
    one, two = provider.generate_data_key(), provider.generate_data_key()

    assert len(one.plaintext) == len(two.plaintext) == 32
    assert one.plaintext != two.plaintext and one.wrapped != two.wrapped
    assert one.plaintext not in one.wrapped
    assert provider.unwrap_data_key(one.wrapped) == one.plaintext
    assert one.plaintext.hex() not in repr(one)


@pytest.mark.parametrize("position", [0, 1, 20, -17, -1])
def test_wrapped_key_with_one_flipped_byte_raises_unwrap_failed(provider: KeyProvider, position: int) -> None:
    wrapped = provider.generate_data_key().wrapped

    with pytest.raises(UnwrapFailed):
        provider.unwrap_data_key(flip(wrapped, position))


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"not a wrapped key at all", b"\x00" * 61, bytes(range(200))])
def test_garbage_wrapped_key_raises_unwrap_failed(provider: KeyProvider, garbage: bytes) -> None:
    with pytest.raises(UnwrapFailed):
        provider.unwrap_data_key(garbage)


def test_wrapped_key_from_another_provider_raises_unwrap_failed(backend: Backend, provider: KeyProvider) -> None:
    other = backend.open_other()
    foreign = other.generate_data_key()

    assert other.public_key() != provider.public_key()
    with pytest.raises(UnwrapFailed):
        provider.unwrap_data_key(foreign.wrapped)


def test_key_material_is_absent_from_repr_and_directory_listing(backend: Backend, provider: KeyProvider) -> None:
    secret_values = backend.secrets_in(backend.key_file)
    names = " ".join(str(path) for path in backend.key_file.parent.parent.rglob("*"))

    assert provider.key_id in repr(provider)
    for secret in secret_values:
        for spelling in secret_spellings(secret):
            assert spelling not in repr(provider)
            assert spelling not in str(provider)
            assert spelling not in names
    assert sorted(os.listdir(backend.key_file.parent)) == [backend.key_file.name]


def test_key_file_is_created_owner_only_in_owner_only_directory(backend: Backend, provider: KeyProvider) -> None:
    assert stat.S_IMODE(backend.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(backend.key_file.parent.stat().st_mode) == 0o700
    assert json.loads(backend.key_file.read_bytes())["version"] == 1


def test_provider_refuses_key_file_readable_by_others(backend: Backend) -> None:
    backend.open()
    backend.key_file.chmod(0o644)

    with pytest.raises(KeyProviderError, match="group or others"):
        backend.open()


def test_check_ready_passes_for_a_healthy_provider(provider: KeyProvider) -> None:
    provider.check_ready()


def test_concurrent_first_opens_agree_on_one_key(backend: Backend) -> None:
    results: list[bytes] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(6)

    def open_one() -> None:
        barrier.wait()
        try:
            results.append(backend.open().public_key())
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(results) == 6 and len(set(results)) == 1
    assert backend.open().public_key() == results[0]
    assert os.listdir(backend.key_file.parent) == [backend.key_file.name]


# --- field encryption over every backend ----------------------------------------------------


def test_sealed_field_round_trips_and_hides_plaintext(provider: KeyProvider) -> None:
    plaintext = "患者: 山田 花子, DOB 1980-04-01".encode()
    sealed = seal_field(provider, plaintext, "case:42/patient_name")

    assert plaintext not in sealed
    assert sealed[0] == 1
    assert open_field(provider, sealed, "case:42/patient_name") == plaintext
    assert open_field(provider, seal_field(provider, b"", "empty"), "empty") == b""


def test_sealing_twice_gives_different_blobs(provider: KeyProvider) -> None:
    assert seal_field(provider, b"same", "ctx") != seal_field(provider, b"same", "ctx")


def test_opening_with_wrong_context_raises_field_decrypt_failed(provider: KeyProvider) -> None:
    sealed = seal_field(provider, b"Dr. Tanaka", "case:42/dentist")

    with pytest.raises(FieldDecryptFailed):
        open_field(provider, sealed, "case:43/dentist")
    with pytest.raises(FieldDecryptFailed):
        open_field(provider, sealed, "")


@pytest.mark.parametrize("region", ["version", "length", "wrapped", "nonce", "ciphertext", "tag"])
def test_flipped_byte_anywhere_raises_field_decrypt_failed(provider: KeyProvider, region: str) -> None:
    sealed = seal_field(provider, b"tooth 11, zirconia, shade A2", "case:7/notes")
    wrapped_length = int.from_bytes(sealed[1:3], "big")
    position = {
        "version": 0,
        "length": 2,
        "wrapped": 3 + wrapped_length // 2,
        "nonce": 3 + wrapped_length + 5,
        "ciphertext": 3 + wrapped_length + 12 + 3,
        "tag": len(sealed) - 1,
    }[region]

    with pytest.raises(FieldDecryptFailed):
        open_field(provider, flip(sealed, position), "case:7/notes")


def test_truncated_blobs_raise_field_decrypt_failed(provider: KeyProvider) -> None:
    sealed = seal_field(provider, b"tooth 11", "case:7/notes")
    wrapped_length = int.from_bytes(sealed[1:3], "big")

    for length in [0, 1, 2, 3, 3 + wrapped_length - 1, 3 + wrapped_length + 12, len(sealed) - 1]:
        with pytest.raises(FieldDecryptFailed):
            open_field(provider, sealed[:length], "case:7/notes")


def test_field_sealed_by_another_provider_raises_field_decrypt_failed(backend: Backend, provider: KeyProvider) -> None:
    foreign = seal_field(backend.open_other(), b"secret", "ctx")

    with pytest.raises(FieldDecryptFailed):
        open_field(provider, foreign, "ctx")


def test_field_decrypt_failed_is_a_stable_domain_error() -> None:
    error = FieldDecryptFailed("x")

    assert (error.code, error.status) == ("field-decrypt-failed", 500)


# --- local backend --------------------------------------------------------------------------


def test_local_key_file_holds_documented_fields(tmp_path: Path) -> None:
    path = tmp_path / "k" / "key.json"
    provider = LocalKeyProvider.open(path)
    document = json.loads(path.read_bytes())

    assert set(document) == {"version", "ed25519_private", "kek", "created_at"}
    assert len(base64.b64decode(document["ed25519_private"])) == 32
    assert len(base64.b64decode(document["kek"])) == 32
    assert repr(provider) == f"LocalKeyProvider(key_id={provider.key_id!r}, path={str(path)!r})"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_local_provider_refuses_group_or_other_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key.json"
    LocalKeyProvider.open(path)
    path.chmod(mode)

    with pytest.raises(KeyProviderError, match="chmod 600"):
        LocalKeyProvider.open(path)


def _valid_document(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "valid.json"
    LocalKeyProvider.open(path)
    return json.loads(path.read_bytes())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda doc: "not json {",
        lambda doc: "[1, 2]",
        lambda doc: json.dumps({**doc, "version": 2}),
        lambda doc: json.dumps({k: v for k, v in doc.items() if k != "kek"}),
        lambda doc: json.dumps({**doc, "ed25519_private": base64.b64encode(b"short").decode()}),
        lambda doc: json.dumps({**doc, "kek": "!!not base64!!"}),
        lambda doc: json.dumps({**doc, "kek": 12345}),
    ],
    ids=["not-json", "not-object", "wrong-version", "missing-kek", "short-seed", "bad-base64", "kek-not-string"],
)
def test_local_provider_refuses_malformed_key_file(tmp_path: Path, mutate: Callable[[dict], str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(mutate(_valid_document(tmp_path)))
    path.chmod(0o600)

    with pytest.raises(KeyProviderError, match=r"malformed|version"):
        LocalKeyProvider.open(path)


def test_local_provider_refuses_symlinked_key_file(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    LocalKeyProvider.open(real)
    link = tmp_path / "link.json"
    link.symlink_to(real)

    with pytest.raises(KeyProviderError):
        LocalKeyProvider.open(link)


def test_local_provider_uses_key_file_created_by_someone_else(tmp_path: Path) -> None:
    original = tmp_path / "a.json"
    first = LocalKeyProvider.open(original)
    copy = tmp_path / "b.json"
    copy.write_bytes(original.read_bytes())
    copy.chmod(0o600)

    assert LocalKeyProvider.open(copy).public_key() == first.public_key()
    assert copy.read_bytes() == original.read_bytes()


def test_local_provider_creates_its_key_file_on_a_filesystem_without_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_hard_links(source: object, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)

    provider = LocalKeyProvider.open(tmp_path / "keys" / "key.json")
    assert os.listdir(tmp_path / "keys") == ["key.json"]
    assert (tmp_path / "keys" / "key.json").stat().st_mode & 0o777 == 0o600
    assert LocalKeyProvider.open(tmp_path / "keys" / "key.json").public_key() == provider.public_key()


def test_local_provider_refuses_key_path_under_a_regular_file(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("")

    with pytest.raises(KeyProviderError, match="Not a directory"):
        LocalKeyProvider.open(not_a_directory / "key.json")


def test_local_wrapped_key_layout_is_version_nonce_ciphertext(tmp_path: Path) -> None:
    wrapped = LocalKeyProvider.open(tmp_path / "key.json").generate_data_key().wrapped

    assert len(wrapped) == 1 + 12 + 32 + 16
    assert wrapped[0] == 1


def test_local_check_ready_fails_when_key_file_disappears(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    provider = LocalKeyProvider.open(path)
    provider.check_ready()
    path.unlink()

    with pytest.raises(KeyProviderError, match="disappeared"):
        provider.check_ready()


# --- KMS backend ----------------------------------------------------------------------------


def test_kms_sealed_file_holds_kms_ciphertext_not_the_seed(tmp_path: Path, moto_endpoint: str, kms_key_id: str) -> None:
    client = kms_client(moto_endpoint)
    path = tmp_path / "sealed.json"
    KmsKeyProvider(kms_key_id, path, client)
    raw = path.read_bytes()
    document = json.loads(raw)
    sealed = base64.b64decode(document["sealed_ed25519_seed"])
    seed = client.decrypt(CiphertextBlob=sealed, EncryptionContext=SIGNING_KEY_CONTEXT)["Plaintext"]

    assert set(document) == {"version", "kms_key_id", "sealed_ed25519_seed"}
    assert document["kms_key_id"] == kms_key_id
    assert len(seed) == 32
    assert seed not in raw and seed not in sealed
    for spelling in secret_spellings(seed):
        assert spelling.encode() not in raw


def test_kms_sealed_seed_needs_the_signing_encryption_context(
    tmp_path: Path, moto_endpoint: str, kms_key_id: str
) -> None:
    from botocore.exceptions import ClientError

    client = kms_client(moto_endpoint)
    path = tmp_path / "sealed.json"
    KmsKeyProvider(kms_key_id, path, client)
    sealed = base64.b64decode(json.loads(path.read_bytes())["sealed_ed25519_seed"])

    with pytest.raises(ClientError):
        client.decrypt(CiphertextBlob=sealed, EncryptionContext={"purpose": "dentgate-field-key"})


def test_kms_provider_refuses_file_sealed_under_another_key(
    tmp_path: Path, moto_endpoint: str, kms_key_id: str
) -> None:
    client = kms_client(moto_endpoint)
    other_key_id = client.create_key(Description="other")["KeyMetadata"]["KeyId"]
    path = tmp_path / "sealed.json"
    KmsKeyProvider(kms_key_id, path, client)
    before = path.read_bytes()

    with pytest.raises(KeyProviderError, match="refusing"):
        KmsKeyProvider(other_key_id, path, client)
    assert path.read_bytes() == before


def test_kms_provider_refuses_sealed_seed_swapped_from_another_key(
    tmp_path: Path, moto_endpoint: str, kms_key_id: str
) -> None:
    client = kms_client(moto_endpoint)
    other_key_id = client.create_key(Description="other")["KeyMetadata"]["KeyId"]
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"
    KmsKeyProvider(kms_key_id, ours, client)
    KmsKeyProvider(other_key_id, theirs, client)
    forged = json.loads(ours.read_bytes())
    forged["sealed_ed25519_seed"] = json.loads(theirs.read_bytes())["sealed_ed25519_seed"]
    ours.write_text(json.dumps(forged))

    with pytest.raises(KeyProviderError, match="decrypt"):
        KmsKeyProvider(kms_key_id, ours, client)


def test_kms_check_ready_fails_for_disabled_key(tmp_path: Path, moto_endpoint: str, kms_key_id: str) -> None:
    client = kms_client(moto_endpoint)
    provider = KmsKeyProvider(kms_key_id, tmp_path / "sealed.json", client)
    provider.check_ready()
    client.disable_key(KeyId=kms_key_id)

    with pytest.raises(KeyProviderError, match="Disabled"):
        provider.check_ready()


def test_kms_provider_reports_unknown_key_as_provider_error(tmp_path: Path, moto_endpoint: str) -> None:
    missing = "11111111-2222-3333-4444-555555555555"

    with pytest.raises(KeyProviderError, match=missing):
        KmsKeyProvider(missing, tmp_path / "sealed.json", kms_client(moto_endpoint))
    assert not (tmp_path / "sealed.json").exists()


def test_kms_provider_reports_unreachable_endpoint_as_provider_error(tmp_path: Path, moto_endpoint: str) -> None:
    import boto3
    from botocore.config import Config

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    client = boto3.client(
        "kms",
        endpoint_url=f"http://127.0.0.1:{dead_port}",
        region_name=REGION,
        config=Config(connect_timeout=1, retries={"max_attempts": 1}),
    )

    with pytest.raises(KeyProviderError, match="failed"):
        KmsKeyProvider("any-key", tmp_path / "sealed.json", client)


def test_kms_wrapped_data_key_is_bound_to_the_field_context(
    tmp_path: Path, moto_endpoint: str, kms_key_id: str
) -> None:
    from botocore.exceptions import ClientError

    client = kms_client(moto_endpoint)
    data_key = KmsKeyProvider(kms_key_id, tmp_path / "sealed.json", client).generate_data_key()

    assert (
        client.decrypt(CiphertextBlob=data_key.wrapped, EncryptionContext={"purpose": "dentgate-field-key"})[
            "Plaintext"
        ]
        == data_key.plaintext
    )
    with pytest.raises(ClientError):
        client.decrypt(CiphertextBlob=data_key.wrapped)


# --- factory --------------------------------------------------------------------------------


def test_factory_opens_local_provider_at_configured_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "conf" / "gateway-key.json"
    provider = open_key_provider(Settings(key_provider="local", key_file=key_file))

    assert isinstance(provider, LocalKeyProvider)
    assert key_file.is_file()
    assert provider.public_key() == LocalKeyProvider.open(key_file).public_key()


def test_factory_defaults_key_file_into_data_dir(tmp_path: Path) -> None:
    provider = open_key_provider(Settings(key_provider="local", data_dir=tmp_path / "data"))

    assert isinstance(provider, LocalKeyProvider)
    assert (tmp_path / "data" / "keys" / "gateway-key.json").is_file()


def test_factory_opens_kms_provider_with_sealed_key_at_key_file(
    tmp_path: Path, moto_endpoint: str, kms_key_id: str
) -> None:
    key_file = tmp_path / "gateway-key.json"
    settings = Settings(
        key_provider=f"aws-kms:{kms_key_id}",
        key_file=key_file,
        kms_endpoint_url=moto_endpoint,
        kms_region=REGION,
    )
    provider = open_key_provider(settings)

    assert isinstance(provider, KmsKeyProvider)
    assert provider.key_id.startswith(f"aws-kms:{kms_key_id}:")
    assert json.loads(key_file.read_bytes())["kms_key_id"] == kms_key_id
    provider.check_ready()
    assert open_key_provider(settings).public_key() == provider.public_key()
