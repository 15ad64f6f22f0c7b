"""The custody chain: pinned receipt and acknowledgement vectors, every signature and every link."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.errors import DentGateError
from gateway.keys.local import LocalKeyProvider
from gateway.transfer.custody import (
    ACKNOWLEDGEMENT_CONTEXT,
    MAX_SIGNED_ARTEFACT_BYTES,
    RECEIPT_CONTEXT,
    AcknowledgedFile,
    Acknowledgement,
    CustodyArtefactInvalid,
    CustodyArtefactTooLarge,
    CustodyBroken,
    CustodySignatureInvalid,
    Receipt,
    SignedAcknowledgement,
    SignedReceipt,
    acknowledgement_bytes,
    acknowledgement_sha256,
    parse_signed_acknowledgement,
    parse_signed_receipt,
    receipt_bytes,
    receipt_for,
    receipt_sha256,
    sign_acknowledgement,
    sign_receipt,
    verify_acknowledgement,
    verify_custody,
    verify_receipt,
)
from gateway.transfer.manifest import SIGNING_CONTEXT, SignedManifest, manifest_sha256, sign_manifest
from tests.transfer.test_manifest import (
    CIPHERTEXT_SHA256,
    CROWN_SHA256,
    DESIGN,
    DEVICE_PUBLIC,
    EMPTY_SHA256,
    EXPECTED_MANIFEST_SHA256,
    EXPECTED_SIGNATURE,
    LAB,
    OTHER_PUBLIC,
    OTHER_SEED,
    STATION_A,
    STATION_B,
    build_manifest,
    device_key,
)

# RFC 8032 TEST 2 is the gateway key here (OTHER_* in the manifest tests), TEST 3 the station key.
GATEWAY_SEED, GATEWAY_PUBLIC = OTHER_SEED, OTHER_PUBLIC
STATION_SEED = bytes.fromhex("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7")
STATION_PUBLIC = bytes.fromhex("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025")
RECEIVED = datetime(2026, 11, 25, 9, 31, 2, 500000, tzinfo=UTC)
WRITTEN = datetime(2026, 11, 25, 9, 40, 0, tzinfo=UTC)
KEY_ID = "local:2b0a6c1f"

EXPECTED_RECEIPT_BYTES = (
    b'{"ciphertext_sha256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",'
    b'"ciphertext_size":1234,'
    b'"design_id":"00000000-0000-4000-8000-0000000000d1",'
    b'"device_signature":"W9d6OwrNioFXX64Pgze4Dd22DznrVbAkMiP7E3q+cx+nw0hbrxaVVI8cLn8ZMO8eZ7gsJB5LJg6BFdw3ofMUCw==",'
    b'"format":"dentgate-receipt-v1",'
    b'"key_id":"local:2b0a6c1f",'
    b'"lab_id":"00000000-0000-4000-8000-000000000001",'
    b'"manifest_sha256":"695bc8b4e08b0859861525d932608b193f5fe250de692c45606e4c905ead3413",'
    b'"received_at":"2026-11-25T09:31:02.500000Z"}'
)
EXPECTED_RECEIPT_SHA256 = "577cb14fc7f91ef849c6a14edbd440700d706f3d21d007349bba8ca59aa4f3b8"
EXPECTED_RECEIPT_SIGNATURE = "vgyP3gDkwMBYcYjNBDo+2oUkccAFr5h0TLnzV5QWw0DLvgQucovGG4fS9i6EVdJ5Sjq7Iz5EI31h8PMbZ3PlDw=="
EXPECTED_ACK_BYTES = (
    '{"design_id":"00000000-0000-4000-8000-0000000000d1",'
    '"files":[{"name":"クラウン_36.stl","sha256":"abababababababababababababababababababababababababababababababab"},'
    '{"name":"order.xml","sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}],'
    '"format":"dentgate-ack-v1",'
    '"import_name":"K-2026-0412",'
    '"receipt_sha256":"577cb14fc7f91ef849c6a14edbd440700d706f3d21d007349bba8ca59aa4f3b8",'
    '"station_id":"00000000-0000-4000-8000-0000000000a1",'
    '"written_at":"2026-11-25T09:40:00.000000Z"}'
).encode()
EXPECTED_ACK_SHA256 = "2d49a54e1e77001dfbfa9a5c06dd33161602d4a062d5a0afececc990ea8a8e0e"
EXPECTED_ACK_SIGNATURE = "kx/hUwH49x9jz4Dl37kDdtVpALBGSjwGTgScgs5yEPYnNojW1yGMkVMYfzaGiSbnDtbLwPwu5CQQF52A05yrBw=="


def gateway_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(GATEWAY_SEED)


def station_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(STATION_SEED)


def stranger_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def signed_manifest(**overrides: Any) -> SignedManifest:
    return sign_manifest(build_manifest(**overrides), device_key())


def receipt(**overrides: Any) -> Receipt:
    fields: dict[str, Any] = {
        "design_id": DESIGN,
        "lab_id": LAB,
        "manifest_sha256": EXPECTED_MANIFEST_SHA256,
        "device_signature": EXPECTED_SIGNATURE,
        "ciphertext_sha256": CIPHERTEXT_SHA256,
        "ciphertext_size": 1234,
        "received_at": RECEIVED,
        "key_id": KEY_ID,
    }
    fields.update(overrides)
    return Receipt(**fields)


def acknowledgement(**overrides: Any) -> Acknowledgement:
    fields: dict[str, Any] = {
        "design_id": DESIGN,
        "station_id": STATION_A,
        "receipt_sha256": EXPECTED_RECEIPT_SHA256,
        "files": [
            AcknowledgedFile(name="クラウン_36.stl", sha256=CROWN_SHA256),
            AcknowledgedFile(name="order.xml", sha256=EMPTY_SHA256),
        ],
        "written_at": WRITTEN,
        "import_name": "K-2026-0412",
    }
    fields.update(overrides)
    return Acknowledgement(**fields)


def chain(
    manifest: SignedManifest | None = None,
    signed_receipt: SignedReceipt | None = None,
    signed_ack: SignedAcknowledgement | None = None,
    *,
    station_public: bytes | None = STATION_PUBLIC,
    with_ack: bool = True,
):
    return verify_custody(
        manifest or signed_manifest(),
        DEVICE_PUBLIC,
        signed_receipt or sign_receipt(receipt(), gateway_key().sign),
        GATEWAY_PUBLIC,
        (signed_ack or sign_acknowledgement(acknowledgement(), station_key().sign)) if with_ack else None,
        station_public,
    )


# --- known-answer vectors ---


def test_receipt_known_answer() -> None:
    built = receipt_for(
        signed_manifest(),
        ciphertext_sha256=CIPHERTEXT_SHA256,
        ciphertext_size=1234,
        received_at=RECEIVED,
        key_id=KEY_ID,
    )
    assert built == receipt()
    assert receipt_bytes(built) == EXPECTED_RECEIPT_BYTES
    assert receipt_sha256(built) == EXPECTED_RECEIPT_SHA256
    signed = sign_receipt(built, gateway_key().sign)
    assert signed.signature == EXPECTED_RECEIPT_SIGNATURE
    gateway_key().public_key().verify(
        base64.b64decode(EXPECTED_RECEIPT_SIGNATURE), b"dentgate-receipt-v1\x00" + EXPECTED_RECEIPT_BYTES
    )
    assert verify_receipt(signed, GATEWAY_PUBLIC) == built


def test_acknowledgement_known_answer() -> None:
    ack = acknowledgement()
    assert acknowledgement_bytes(ack) == EXPECTED_ACK_BYTES
    assert acknowledgement_sha256(ack) == EXPECTED_ACK_SHA256
    signed = sign_acknowledgement(ack, station_key().sign)
    assert signed.signature == EXPECTED_ACK_SIGNATURE
    station_key().public_key().verify(
        base64.b64decode(EXPECTED_ACK_SIGNATURE), b"dentgate-ack-v1\x00" + EXPECTED_ACK_BYTES
    )
    assert verify_acknowledgement(signed, STATION_PUBLIC) == ack


def test_station_and_gateway_keys_are_the_rfc_8032_vectors() -> None:
    assert station_key().public_key().public_bytes_raw() == STATION_PUBLIC
    assert gateway_key().public_key().public_bytes_raw() == GATEWAY_PUBLIC


def test_contexts_are_distinct_and_cannot_be_confused() -> None:
    contexts = [SIGNING_CONTEXT, RECEIPT_CONTEXT, ACKNOWLEDGEMENT_CONTEXT]
    assert contexts == [b"dentgate-manifest-v1\0", b"dentgate-receipt-v1\0", b"dentgate-ack-v1\0"]
    for one in contexts:
        assert not one.startswith((b"{", b"ey"))  # audit checkpoints are JSON objects, DPoP proofs JWS
        assert all(one == other or not other.startswith(one) for other in contexts)


# --- the whole chain ---


def test_full_chain_verifies() -> None:
    verified = chain()
    assert verified.delivered
    assert verified.manifest == build_manifest()
    assert verified.manifest_sha256 == EXPECTED_MANIFEST_SHA256
    assert verified.receipt_sha256 == EXPECTED_RECEIPT_SHA256
    assert verified.acknowledgement == acknowledgement()


def test_chain_before_delivery() -> None:
    verified = chain(with_ack=False, station_public=None)
    assert not verified.delivered and verified.acknowledgement is None


def test_wire_round_trip() -> None:
    signed_receipt = sign_receipt(receipt(), gateway_key().sign)
    signed_ack = sign_acknowledgement(acknowledgement(), station_key().sign)
    receipt_wire = signed_receipt.model_dump_json().encode()
    ack_wire = signed_ack.model_dump_json().encode()
    assert parse_signed_receipt(receipt_wire) == signed_receipt
    assert parse_signed_acknowledgement(ack_wire) == signed_ack
    assert receipt_bytes(parse_signed_receipt(receipt_wire).receipt) == EXPECTED_RECEIPT_BYTES
    assert acknowledgement_bytes(parse_signed_acknowledgement(ack_wire).acknowledgement) == EXPECTED_ACK_BYTES
    chain(signed_receipt=parse_signed_receipt(receipt_wire), signed_ack=parse_signed_acknowledgement(ack_wire))


def test_acknowledged_files_in_another_order() -> None:
    files = list(reversed(acknowledgement().files))
    ack = acknowledgement(files=files)
    chain(signed_ack=sign_acknowledgement(ack, station_key().sign))


def test_second_target_station_acknowledges() -> None:
    other_station = stranger_key()
    ack = acknowledgement(station_id=STATION_B)
    verified = chain(
        signed_ack=sign_acknowledgement(ack, other_station.sign),
        station_public=other_station.public_key().public_bytes_raw(),
    )
    assert verified.acknowledgement is not None and verified.acknowledgement.station_id == STATION_B


def test_receipt_signed_by_the_local_key_provider(tmp_path: Path) -> None:
    provider = LocalKeyProvider.open(tmp_path / "keys" / "gateway-key.json")
    signed = sign_receipt(receipt(key_id=provider.key_id), provider.sign)
    assert verify_receipt(signed, provider.public_key()).key_id == provider.key_id
    with pytest.raises(CustodySignatureInvalid):
        verify_receipt(signed, GATEWAY_PUBLIC)


# --- every break is found, at the right step ---


def _broken(step: str, reason: str, **kwargs: Any) -> None:
    with pytest.raises(CustodyBroken) as caught:
        chain(**kwargs)
    assert caught.value.step == step
    assert reason in caught.value.reason
    assert caught.value.code == "custody-broken"


def test_manifest_signed_by_another_key() -> None:
    forged = sign_manifest(build_manifest(), stranger_key())
    _broken("manifest", "another signing key", manifest=forged)


def test_receipt_signed_by_another_key() -> None:
    _broken("receipt", "does not verify", signed_receipt=sign_receipt(receipt(), stranger_key().sign))


def test_receipt_signed_in_another_context() -> None:
    wrong = base64.b64encode(gateway_key().sign(ACKNOWLEDGEMENT_CONTEXT + receipt_bytes(receipt()))).decode()
    _broken("receipt", "does not verify", signed_receipt=SignedReceipt(receipt=receipt(), signature=wrong))
    bare = base64.b64encode(gateway_key().sign(receipt_bytes(receipt()))).decode()
    _broken("receipt", "does not verify", signed_receipt=SignedReceipt(receipt=receipt(), signature=bare))


def test_receipt_for_another_manifest() -> None:
    other = signed_manifest(case_reference="K-2026-9999")
    assert manifest_sha256(other.manifest) != EXPECTED_MANIFEST_SHA256
    _broken("receipt", "another manifest", manifest=other)


def test_receipt_naming_another_device_signature() -> None:
    other_signature = base64.b64encode(stranger_key().sign(b"x")).decode()
    signed = sign_receipt(receipt(device_signature=other_signature), gateway_key().sign)
    _broken("receipt", "another device signature", signed_receipt=signed)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"design_id": uuid.UUID(int=5)}, "another design or lab"),
        ({"lab_id": uuid.UUID(int=5)}, "another design or lab"),
        ({"ciphertext_sha256": "ce" * 32}, "ciphertext"),
        ({"ciphertext_size": 1233}, "ciphertext"),
    ],
)
def test_receipt_that_disagrees_with_the_manifest(overrides: dict[str, Any], reason: str) -> None:
    _broken("receipt", reason, signed_receipt=sign_receipt(receipt(**overrides), gateway_key().sign))


def test_acknowledgement_signed_by_another_key() -> None:
    signed = sign_acknowledgement(acknowledgement(), stranger_key().sign)
    _broken("acknowledgement", "does not verify", signed_ack=signed)


def test_acknowledgement_signed_in_the_receipt_context() -> None:
    wrong = base64.b64encode(station_key().sign(RECEIPT_CONTEXT + acknowledgement_bytes(acknowledgement()))).decode()
    forged = SignedAcknowledgement(acknowledgement=acknowledgement(), signature=wrong)
    _broken("acknowledgement", "does not verify", signed_ack=forged)


def test_acknowledgement_without_a_station_key() -> None:
    _broken("acknowledgement", "no station key", station_public=None)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"receipt_sha256": "00" * 32}, "another receipt"),
        ({"design_id": uuid.UUID(int=5)}, "another design"),
        ({"station_id": uuid.UUID(int=5)}, "not a target"),
        ({"files": [AcknowledgedFile(name="クラウン_36.stl", sha256=CROWN_SHA256)]}, "other files"),
        (
            {
                "files": [
                    AcknowledgedFile(name="クラウン_36.stl", sha256=CROWN_SHA256),
                    AcknowledgedFile(name="order.xml", sha256=EMPTY_SHA256),
                    AcknowledgedFile(name="extra.stl", sha256=EMPTY_SHA256),
                ]
            },
            "other files",
        ),
        (
            {
                "files": [
                    AcknowledgedFile(name="クラウン_36.stl", sha256="ac" * 32),
                    AcknowledgedFile(name="order.xml", sha256=EMPTY_SHA256),
                ]
            },
            "plaintext hash differs for 'クラウン_36.stl'",
        ),
    ],
)
def test_acknowledgement_that_breaks_a_link(overrides: dict[str, Any], reason: str) -> None:
    signed = sign_acknowledgement(acknowledgement(**overrides), station_key().sign)
    _broken("acknowledgement", reason, signed_ack=signed)


def test_receipt_changed_after_the_acknowledgement() -> None:
    # The gateway re-signs a receipt with another time: still a valid receipt, but not the acknowledged one.
    resigned = sign_receipt(receipt(received_at=datetime(2026, 11, 25, 9, 31, 3, tzinfo=UTC)), gateway_key().sign)
    _broken("acknowledgement", "another receipt", signed_receipt=resigned)


def test_custody_broken_error() -> None:
    error = CustodyBroken("receipt", "why")
    assert isinstance(error, DentGateError)
    assert (error.code, error.status, error.step, error.reason, error.detail) == (
        "custody-broken",
        409,
        "receipt",
        "why",
        "receipt: why",
    )


# --- building and parsing ---


def test_receipt_for_refuses_a_ciphertext_the_manifest_does_not_name() -> None:
    with pytest.raises(ValueError, match="not the one the manifest names"):
        receipt_for(
            signed_manifest(), ciphertext_sha256="ce" * 32, ciphertext_size=1234, received_at=RECEIVED, key_id=KEY_ID
        )
    with pytest.raises(ValueError):
        receipt_for(
            signed_manifest(),
            ciphertext_sha256=CIPHERTEXT_SHA256,
            ciphertext_size=1235,
            received_at=RECEIVED,
            key_id=KEY_ID,
        )


def test_signer_must_return_an_ed25519_signature() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        sign_receipt(receipt(), lambda message: b"short")


@pytest.mark.parametrize(
    "overrides",
    [
        {"import_name": "C:\\DentGate\\import"},
        {"import_name": "/srv/import"},
        {"files": []},
        {
            "files": [
                AcknowledgedFile(name="a.stl", sha256=CROWN_SHA256),
                AcknowledgedFile(name="A.STL", sha256=CROWN_SHA256),
            ]
        },
    ],
)
def test_acknowledgement_rules(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        acknowledgement(**overrides)


def test_parsing_limits_and_errors() -> None:
    wire = json.loads(sign_receipt(receipt(), gateway_key().sign).model_dump_json())
    with pytest.raises(CustodyArtefactTooLarge):
        parse_signed_receipt(b" " * (MAX_SIGNED_ARTEFACT_BYTES + 1))
    with pytest.raises(CustodyArtefactInvalid):
        parse_signed_receipt(json.dumps({**wire, "extra": 1}).encode())
    wire["receipt"]["received_at"] = "2026-11-25T09:31:02"
    with pytest.raises(CustodyArtefactInvalid, match="timezone"):
        parse_signed_receipt(json.dumps(wire).encode())
    with pytest.raises(CustodyArtefactInvalid):
        parse_signed_acknowledgement(b"{}")
    assert (CustodyArtefactInvalid.status, CustodyArtefactTooLarge.status) == (422, 413)
    assert CustodySignatureInvalid.code == "custody-signature-invalid"
