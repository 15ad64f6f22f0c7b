"""The design manifest: a pinned known-answer vector, round trips, signatures, and each schema rule."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.errors import DentGateError
from gateway.identity.proofs import thumbprint_of_public_key
from gateway.transfer.formats import sanitise_filename
from gateway.transfer.manifest import (
    MAX_SIGNED_MANIFEST_BYTES,
    SIGNING_CONTEXT,
    Manifest,
    ManifestFile,
    ManifestInvalid,
    ManifestRecipient,
    ManifestSignatureInvalid,
    ManifestTooLarge,
    SignedManifest,
    ToothEntry,
    check_file_name,
    manifest_bytes,
    manifest_sha256,
    parse_signed_manifest,
    sign_manifest,
    verify_manifest,
)

# RFC 8032 section 7.1, TEST 1: the device key. Its RFC 7638 thumbprint is the one of RFC 8037 appendix A.3.
DEVICE_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
DEVICE_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
DEVICE_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
# RFC 8032 TEST 2: some other key.
OTHER_SEED = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
OTHER_PUBLIC = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")

LAB = uuid.UUID("00000000-0000-4000-8000-000000000001")
DESIGN = uuid.UUID("00000000-0000-4000-8000-0000000000d1")
STATION_A = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
STATION_B = uuid.UUID("00000000-0000-4000-8000-0000000000a2")
TECHNICIAN = uuid.UUID("00000000-0000-4000-8000-0000000000e1")
DEVICE = uuid.UUID("00000000-0000-4000-8000-0000000000f1")
CREATED = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)
# Test-only age X25519 keys.
AGE_A_SECRET = "AGE-SECRET-KEY-16GZ2NEMWJZS0KX09REXR859ESL73VCVF96N8EQ4Y0V859MDZNWAQWV8LA9"
AGE_A = "age16a0c50c35n9w9quf7gfgecqjatev493zuxn496lfsm29l8zyxslq9nv4n7"
AGE_B_SECRET = "AGE-SECRET-KEY-1NT7HPYDMUZN9RZTQRC5F6AJLWTRGUK08K26CL8K7PJP9N9DMPE0SQHS9FG"
AGE_B = "age168xrxy2e69qpds45rwyz2wg9uvkfe7d9k8r5pjcc7vdr3krcv39ssfgduw"
AGE_ARCHIVE_SECRET = "AGE-SECRET-KEY-103W5YDJJ6J7CQC2ZAK3486QU04Y8HP6G74M34L4KNU6QN5MFEA8S3EHZS6"
AGE_ARCHIVE = "age1rt5ws2gyzavsedh2kssl7a6ec5cnt2kp4w4fgmqjenwr7enudq4qlx4shn"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
CROWN_SHA256 = "ab" * 32
CIPHERTEXT_SHA256 = "cd" * 32

EXPECTED_MANIFEST_BYTES = (
    '{"case_reference":"K-2026-0412",'
    '"ciphertext_sha256":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",'
    '"ciphertext_size":1234,'
    '"created_at":"2026-11-25T09:30:00.123456Z",'
    '"design_id":"00000000-0000-4000-8000-0000000000d1",'
    '"device_id":"00000000-0000-4000-8000-0000000000f1",'
    '"files":[{"media_type":"model/stl","name":"クラウン_36.stl",'
    '"sha256":"abababababababababababababababababababababababababababababababab","size":684},'
    '{"media_type":"application/xml","name":"order.xml",'
    '"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}],'
    '"format":"dentgate-manifest-v1",'
    '"lab_id":"00000000-0000-4000-8000-000000000001",'
    '"material":"ジルコニア",'
    '"process":"design",'
    '"recipients":['
    '{"age_recipient":"age16a0c50c35n9w9quf7gfgecqjatev493zuxn496lfsm29l8zyxslq9nv4n7",'
    '"kind":"station","station_id":"00000000-0000-4000-8000-0000000000a1"},'
    '{"age_recipient":"age168xrxy2e69qpds45rwyz2wg9uvkfe7d9k8r5pjcc7vdr3krcv39ssfgduw",'
    '"kind":"station","station_id":"00000000-0000-4000-8000-0000000000a2"},'
    '{"age_recipient":"age1rt5ws2gyzavsedh2kssl7a6ec5cnt2kp4w4fgmqjenwr7enudq4qlx4shn",'
    '"kind":"archive","station_id":null}],'
    '"remote_location":"自宅 (大阪)",'
    '"target_stations":["00000000-0000-4000-8000-0000000000a1","00000000-0000-4000-8000-0000000000a2"],'
    '"technician_id":"00000000-0000-4000-8000-0000000000e1",'
    '"teeth":[{"fdi":36,"source_system":"FDI","source_value":"36"},'
    '{"fdi":36,"source_system":"Universal","source_value":"19"}]}'
).encode()
EXPECTED_MANIFEST_SHA256 = "695bc8b4e08b0859861525d932608b193f5fe250de692c45606e4c905ead3413"
EXPECTED_SIGNATURE = "W9d6OwrNioFXX64Pgze4Dd22DznrVbAkMiP7E3q+cx+nw0hbrxaVVI8cLn8ZMO8eZ7gsJB5LJg6BFdw3ofMUCw=="


def device_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(DEVICE_SEED)


def other_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(OTHER_SEED)


def manifest_document(**overrides: Any) -> dict[str, Any]:
    """The known-answer manifest as JSON-ready data, with top-level fields replaced by `overrides`."""
    document: dict[str, Any] = {
        "format": "dentgate-manifest-v1",
        "design_id": str(DESIGN),
        "lab_id": str(LAB),
        "case_reference": "K-2026-0412",
        "files": [
            {"name": "クラウン_36.stl", "media_type": "model/stl", "size": 684, "sha256": CROWN_SHA256},
            {"name": "order.xml", "media_type": "application/xml", "size": 0, "sha256": EMPTY_SHA256},
        ],
        "teeth": [
            {"fdi": 36, "source_system": "FDI", "source_value": "36"},
            {"fdi": 36, "source_system": "Universal", "source_value": "19"},
        ],
        "material": "ジルコニア",
        "process": "design",
        "remote_location": "自宅 (大阪)",
        "target_stations": [str(STATION_A), str(STATION_B)],
        "recipients": [
            {"kind": "station", "station_id": str(STATION_A), "age_recipient": AGE_A},
            {"kind": "station", "station_id": str(STATION_B), "age_recipient": AGE_B},
            {"kind": "archive", "station_id": None, "age_recipient": AGE_ARCHIVE},
        ],
        "technician_id": str(TECHNICIAN),
        "device_id": str(DEVICE),
        "created_at": "2026-11-25T09:30:00.123456Z",
        "ciphertext_size": 1234,
        "ciphertext_sha256": CIPHERTEXT_SHA256,
    }
    document.update(overrides)
    return document


def build_manifest(**overrides: Any) -> Manifest:
    return Manifest.model_validate_json(json.dumps(manifest_document(**overrides)))


def signed_document(manifest: dict[str, Any], key: Ed25519PrivateKey | None = None) -> bytes:
    """Wire JSON of a manifest document signed by `key` (the device key by default)."""
    signed = sign_manifest(Manifest.model_validate_json(json.dumps(manifest)), key or device_key())
    return signed.model_dump_json().encode("utf-8")


# --- known-answer vector ---


def test_fixed_keys_are_the_rfc_8032_and_8037_vectors() -> None:
    raw = device_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw == DEVICE_PUBLIC
    assert thumbprint_of_public_key(raw) == DEVICE_THUMBPRINT
    assert other_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == OTHER_PUBLIC


def test_python_construction_gives_the_pinned_bytes() -> None:
    manifest = Manifest(
        format="dentgate-manifest-v1",
        design_id=DESIGN,
        lab_id=LAB,
        case_reference="K-2026-0412",
        files=[
            ManifestFile(name="クラウン_36.stl", media_type="model/stl", size=684, sha256=CROWN_SHA256),
            ManifestFile(name="order.xml", media_type="application/xml", size=0, sha256=EMPTY_SHA256),
        ],
        teeth=[
            ToothEntry(fdi=36, source_system="FDI", source_value="36"),
            ToothEntry(fdi=36, source_system="Universal", source_value="19"),
        ],
        material="ジルコニア",
        process="design",
        remote_location="自宅 (大阪)",
        target_stations=[STATION_A, STATION_B],
        recipients=[
            ManifestRecipient(kind="station", station_id=STATION_A, age_recipient=AGE_A),
            ManifestRecipient(kind="station", station_id=STATION_B, age_recipient=AGE_B),
            ManifestRecipient(kind="archive", station_id=None, age_recipient=AGE_ARCHIVE),
        ],
        technician_id=TECHNICIAN,
        device_id=DEVICE,
        created_at=CREATED,
        ciphertext_size=1234,
        ciphertext_sha256=CIPHERTEXT_SHA256,
    )
    assert manifest == build_manifest()
    assert manifest_bytes(manifest) == EXPECTED_MANIFEST_BYTES


def test_known_answer_hash_and_signature() -> None:
    manifest = build_manifest()
    assert manifest_bytes(manifest) == EXPECTED_MANIFEST_BYTES
    assert manifest_sha256(manifest) == EXPECTED_MANIFEST_SHA256
    assert hashlib.sha256(EXPECTED_MANIFEST_BYTES).hexdigest() == EXPECTED_MANIFEST_SHA256
    signed = sign_manifest(manifest, device_key())
    assert signed.signature == EXPECTED_SIGNATURE  # Ed25519 is deterministic
    assert signed.signer == DEVICE_THUMBPRINT
    # The signature is over the domain-separated bytes, checked here without DentGate's code.
    message = b"dentgate-manifest-v1\x00" + EXPECTED_MANIFEST_BYTES
    assert message == SIGNING_CONTEXT + manifest_bytes(manifest)
    device_key().public_key().verify(base64.b64decode(EXPECTED_SIGNATURE), message)
    assert verify_manifest(signed, DEVICE_PUBLIC) == manifest


# --- round trips and time normalisation ---


def test_round_trip_json_manifest_bytes_is_identical() -> None:
    manifest = build_manifest()
    again = Manifest.model_validate_json(manifest_bytes(manifest))
    assert again == manifest
    assert manifest_bytes(again) == manifest_bytes(manifest)
    wire = sign_manifest(manifest, device_key()).model_dump_json().encode("utf-8")
    parsed = parse_signed_manifest(wire)
    assert manifest_bytes(verify_manifest(parsed, DEVICE_PUBLIC)) == EXPECTED_MANIFEST_BYTES
    assert parse_signed_manifest(parsed.model_dump_json().encode("utf-8")) == parsed


def test_wire_whitespace_and_key_order_do_not_matter() -> None:
    wire = json.loads(signed_document(manifest_document()))
    pretty = json.dumps(dict(reversed(list(wire.items()))), indent=4, ensure_ascii=True).encode("ascii")
    assert verify_manifest(parse_signed_manifest(pretty), DEVICE_PUBLIC) == build_manifest()


@pytest.mark.parametrize(
    "given",
    ["2026-11-25T18:30:00.123456+09:00", "2026-11-25T09:30:00.123456+00:00", "2026-11-25T09:30:00.123456Z"],
)
def test_times_are_signed_in_utc_with_z(given: str) -> None:
    manifest = build_manifest(created_at=given)
    assert manifest.created_at == CREATED and manifest.created_at.tzinfo == UTC
    assert manifest_bytes(manifest) == EXPECTED_MANIFEST_BYTES


def test_whole_seconds_keep_their_microseconds_digits() -> None:
    manifest = build_manifest(created_at="2026-11-25T09:30:00Z")
    assert b'"created_at":"2026-11-25T09:30:00.000000Z"' in manifest_bytes(manifest)
    assert manifest_bytes(Manifest.model_validate_json(manifest_bytes(manifest))) == manifest_bytes(manifest)


def test_python_datetime_in_another_zone_is_normalised() -> None:
    jst = timezone(timedelta(hours=9))
    manifest = build_manifest().model_copy()
    data = manifest.model_dump()
    data["created_at"] = CREATED.astimezone(jst)
    assert manifest_bytes(Manifest(**data)) == EXPECTED_MANIFEST_BYTES


def test_material_may_be_absent() -> None:
    document = manifest_document()
    del document["material"]
    assert b'"material":null' in manifest_bytes(Manifest.model_validate_json(json.dumps(document)))


# --- signatures ---


def test_every_changed_field_breaks_the_signature() -> None:
    wire = json.loads(signed_document(manifest_document()))
    changes: list[tuple[str, Any]] = [
        ("case_reference", "K-2026-0413"),
        ("ciphertext_size", 1235),
        ("ciphertext_sha256", "ce" * 32),
        ("created_at", "2026-11-25T09:30:00.123457Z"),
        ("process", "milling"),
        ("material", None),
        ("target_stations", [str(STATION_A)]),
        ("files", manifest_document()["files"][:1]),
    ]
    for field, value in changes:
        changed = json.loads(json.dumps(wire))
        changed["manifest"][field] = value
        if field == "target_stations":
            changed["manifest"]["recipients"] = [r for r in changed["manifest"]["recipients"][::2]]
        parsed = parse_signed_manifest(json.dumps(changed).encode())
        with pytest.raises(ManifestSignatureInvalid):
            verify_manifest(parsed, DEVICE_PUBLIC)


def test_another_key_is_refused() -> None:
    signed = parse_signed_manifest(signed_document(manifest_document(), other_key()))
    with pytest.raises(ManifestSignatureInvalid, match="another signing key"):
        verify_manifest(signed, DEVICE_PUBLIC)
    # Claiming the device's thumbprint does not help a signature made with another key.
    forged = signed.model_copy(update={"signer": DEVICE_THUMBPRINT})
    with pytest.raises(ManifestSignatureInvalid, match="does not verify"):
        verify_manifest(forged, DEVICE_PUBLIC)


def test_signature_without_the_context_is_refused() -> None:
    manifest = build_manifest()
    bare = base64.b64encode(device_key().sign(manifest_bytes(manifest))).decode()
    signed = SignedManifest(manifest=manifest, signature=bare, signer=DEVICE_THUMBPRINT)
    with pytest.raises(ManifestSignatureInvalid):
        verify_manifest(signed, DEVICE_PUBLIC)


def test_flipped_signature_bit_is_refused() -> None:
    raw = bytearray(base64.b64decode(EXPECTED_SIGNATURE))
    raw[10] ^= 1
    signed = SignedManifest(
        manifest=build_manifest(), signature=base64.b64encode(bytes(raw)).decode(), signer=DEVICE_THUMBPRINT
    )
    with pytest.raises(ManifestSignatureInvalid):
        verify_manifest(signed, DEVICE_PUBLIC)


def test_error_codes() -> None:
    assert issubclass(ManifestSignatureInvalid, DentGateError)
    assert (ManifestSignatureInvalid.code, ManifestSignatureInvalid.status) == ("manifest-signature-invalid", 422)
    assert (ManifestInvalid.code, ManifestInvalid.status) == ("manifest-invalid", 422)
    assert (ManifestTooLarge.code, ManifestTooLarge.status) == ("manifest-too-large", 413)
    assert issubclass(ManifestTooLarge, ManifestInvalid)


def test_device_key_must_be_32_bytes() -> None:
    signed = sign_manifest(build_manifest(), device_key())
    with pytest.raises(ValueError):
        verify_manifest(signed, DEVICE_PUBLIC[:31])


# --- parsing limits and schema rules ---


def test_size_cap() -> None:
    wire = signed_document(manifest_document())
    padded = wire[:-1] + b" " * (MAX_SIGNED_MANIFEST_BYTES - len(wire)) + b"}"
    assert len(padded) == MAX_SIGNED_MANIFEST_BYTES
    parse_signed_manifest(padded)
    with pytest.raises(ManifestTooLarge):
        parse_signed_manifest(padded + b" ")


def test_largest_manifest_fits_the_cap() -> None:
    long_name = "あ" * 80 + ".stl"  # 244 UTF-8 bytes
    files = [
        {"name": f"{i:02d}{long_name}", "media_type": "application/vnd.ms-pki.stl", "size": 2**40, "sha256": "a" * 64}
        for i in range(32)
    ]
    teeth = [{"fdi": 11, "source_system": "FDI", "source_value": "11" + " " * 62}] * 64
    stations = [str(uuid.UUID(int=i + 1)) for i in range(8)]
    keys = [str(pyrage.x25519.Identity.generate().to_public()) for _ in range(9)]
    recipients = [
        {"kind": "station", "station_id": s, "age_recipient": k} for s, k in zip(stations, keys, strict=False)
    ]
    recipients.append({"kind": "archive", "station_id": None, "age_recipient": keys[8]})
    document = manifest_document(
        files=files,
        teeth=teeth,
        target_stations=stations,
        recipients=recipients,
        case_reference="案" * 64,
        process="工" * 64,
        remote_location="場" * 100,
        material="材" * 100,
    )
    wire = signed_document(document)
    assert len(wire) < MAX_SIGNED_MANIFEST_BYTES / 1.5
    assert verify_manifest(parse_signed_manifest(wire), DEVICE_PUBLIC).files[31].size == 2**40


def _files(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "media_type": "model/stl", "size": 1, "sha256": CROWN_SHA256} for n in names]


def _recipients(*entries: tuple[str, uuid.UUID | None, str]) -> list[dict[str, Any]]:
    return [{"kind": k, "station_id": str(s) if s else None, "age_recipient": a} for k, s, a in entries]


INVALID_MANIFESTS: dict[str, dict[str, Any]] = {
    "unknown field": {"priority": "high"},
    "other format": {"format": "dentgate-manifest-v2"},
    "design id not a UUID": {"design_id": "design-1"},
    "empty case reference": {"case_reference": ""},
    "long case reference": {"case_reference": "K" * 65},
    "control character": {"case_reference": "K-1\n2"},
    "empty process": {"process": ""},
    "long location": {"remote_location": "x" * 101},
    "no files": {"files": []},
    "33 files": {"files": _files(*(f"f{i}.stl" for i in range(33)))},
    "duplicate names": {"files": _files("a.stl", "a.stl")},
    "names differing in case": {"files": _files("Crown.stl", "crown.STL")},
    "names differing in normalisation": {"files": _files("\u30ac.stl", "\u30ab\u3099.stl")},
    "parent directory name": {"files": _files("../evil.stl")},
    "directory in name": {"files": _files("a/b.stl")},
    "backslash in name": {"files": _files("a\\b.stl")},
    "drive in name": {"files": _files("C:evil.stl")},
    "device name": {"files": _files("con.stl")},
    "bidi override": {"files": _files("x\u202elts.exe")},
    "trailing dot": {"files": _files("crown.stl.")},
    "empty name": {"files": _files("")},
    "upper-case hash": {"files": [{"name": "a.stl", "media_type": "model/stl", "size": 1, "sha256": "AB" * 32}]},
    "short hash": {"files": [{"name": "a.stl", "media_type": "model/stl", "size": 1, "sha256": "ab" * 31}]},
    "negative size": {"files": [{"name": "a.stl", "media_type": "model/stl", "size": -1, "sha256": CROWN_SHA256}]},
    "size as text": {"files": [{"name": "a.stl", "media_type": "model/stl", "size": "1", "sha256": CROWN_SHA256}]},
    "size as float": {"files": [{"name": "a.stl", "media_type": "model/stl", "size": 1.0, "sha256": CROWN_SHA256}]},
    "size beyond 2**53": {
        "files": [{"name": "a.stl", "media_type": "model/stl", "size": 2**53, "sha256": CROWN_SHA256}]
    },
    "bad media type": {"files": [{"name": "a.stl", "media_type": "STL", "size": 1, "sha256": CROWN_SHA256}]},
    "no such tooth": {"teeth": [{"fdi": 19, "source_system": "FDI", "source_value": "19"}]},
    "tooth as boolean": {"teeth": [{"fdi": True, "source_system": "FDI", "source_value": "11"}]},
    "tooth disagrees with its source": {"teeth": [{"fdi": 36, "source_system": "Universal", "source_value": "3"}]},
    "tooth system alias": {"teeth": [{"fdi": 36, "source_system": "UNN", "source_value": "19"}]},
    "unknown tooth system": {"teeth": [{"fdi": 36, "source_system": "Palmer", "source_value": "6"}]},
    "no target station": {"target_stations": [], "recipients": _recipients(("archive", None, AGE_ARCHIVE))},
    "duplicate target": {"target_stations": [str(STATION_A), str(STATION_A)]},
    "nine targets": {"target_stations": [str(uuid.UUID(int=i + 1)) for i in range(9)]},
    "no archive": {"recipients": _recipients(("station", STATION_A, AGE_A), ("station", STATION_B, AGE_B))},
    "two archives": {
        "recipients": _recipients(
            ("station", STATION_A, AGE_A),
            ("station", STATION_B, AGE_B),
            ("archive", None, AGE_ARCHIVE),
            ("archive", None, "age1ky2c8vlu6c7449xv55cyw72jkh28pdrstp0af6vzw99g80c3s98s8ds0ws"),
        )
    },
    "target without recipient": {
        "recipients": _recipients(("station", STATION_A, AGE_A), ("archive", None, AGE_ARCHIVE)),
    },
    "recipient for a station that is no target": {
        "recipients": _recipients(
            ("station", STATION_A, AGE_A),
            ("station", STATION_B, AGE_B),
            ("station", uuid.UUID(int=99), "age1ky2c8vlu6c7449xv55cyw72jkh28pdrstp0af6vzw99g80c3s98s8ds0ws"),
            ("archive", None, AGE_ARCHIVE),
        )
    },
    "archive key also a station key": {
        "recipients": _recipients(
            ("station", STATION_A, AGE_A), ("station", STATION_B, AGE_B), ("archive", None, AGE_A)
        )
    },
    "station recipient without station": {
        "recipients": _recipients(
            ("station", None, AGE_A), ("station", STATION_B, AGE_B), ("archive", None, AGE_ARCHIVE)
        )
    },
    "archive naming a station": {
        "recipients": _recipients(
            ("station", STATION_A, AGE_A), ("station", STATION_B, AGE_B), ("archive", STATION_A, AGE_ARCHIVE)
        )
    },
    "upper-case age recipient": {
        "recipients": _recipients(
            ("station", STATION_A, AGE_A.upper()), ("station", STATION_B, AGE_B), ("archive", None, AGE_ARCHIVE)
        )
    },
    "not an age recipient": {
        "recipients": _recipients(
            ("station", STATION_A, "age1notarecipient"), ("station", STATION_B, AGE_B), ("archive", None, AGE_ARCHIVE)
        )
    },
    "ssh key as recipient": {
        "recipients": _recipients(
            ("station", STATION_A, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN"),
            ("station", STATION_B, AGE_B),
            ("archive", None, AGE_ARCHIVE),
        )
    },
    "unknown recipient kind": {
        "recipients": _recipients(
            ("station", STATION_A, AGE_A), ("station", STATION_B, AGE_B), ("escrow", None, AGE_ARCHIVE)
        )
    },
    "naive time": {"created_at": "2026-11-25T09:30:00"},
    "time as number": {"created_at": 1795000000},
    "empty ciphertext": {"ciphertext_size": 0},
    "ciphertext hash not hex": {"ciphertext_sha256": "z" * 64},
}


@pytest.mark.parametrize("overrides", INVALID_MANIFESTS.values(), ids=INVALID_MANIFESTS.keys())
def test_schema_rules(overrides: dict[str, Any]) -> None:
    wire = json.loads(signed_document(manifest_document()))
    wire["manifest"].update(overrides)
    with pytest.raises(ManifestInvalid) as caught:
        parse_signed_manifest(json.dumps(wire).encode("utf-8"))
    assert caught.value.code == "manifest-invalid"


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"[]",
        b"not json",
        b'{"manifest": {}, "signature": "", "signer": ""}',
        b'{"signature": "' + EXPECTED_SIGNATURE.encode() + b'", "signer": "' + DEVICE_THUMBPRINT.encode() + b'"}',
    ],
)
def test_malformed_documents(document: bytes) -> None:
    with pytest.raises(ManifestInvalid):
        parse_signed_manifest(document)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signature", EXPECTED_SIGNATURE[:-2]),
        ("signature", EXPECTED_SIGNATURE.replace("+", "-")),
        ("signature", EXPECTED_SIGNATURE[:-3] + "D=="),  # same bytes, non-canonical trailing bits
        ("signer", DEVICE_THUMBPRINT + "="),
        ("extra", "x"),
    ],
)
def test_signature_envelope_rules(field: str, value: str) -> None:
    wire = json.loads(signed_document(manifest_document()))
    wire[field] = value
    with pytest.raises(ManifestInvalid):
        parse_signed_manifest(json.dumps(wire).encode())


def test_refusal_does_not_echo_the_input() -> None:
    wire = json.loads(signed_document(manifest_document()))
    wire["manifest"]["case_reference"] = "患者 山田太郎 " * 10
    with pytest.raises(ManifestInvalid) as caught:
        parse_signed_manifest(json.dumps(wire).encode())
    assert "山田" not in caught.value.detail
    assert "manifest.case_reference" in caught.value.detail


def test_models_are_frozen() -> None:
    manifest = build_manifest()
    with pytest.raises(ValueError):
        manifest.process = "milling"  # type: ignore[misc]


# --- file names ---


@pytest.mark.parametrize("name", ["クラウン_36.stl", "order.xml", ".hidden", "COM0.stl", " lead.stl", "x" * 255])
def test_check_file_name_accepts(name: str) -> None:
    assert check_file_name(name) == name


@pytest.mark.parametrize(
    "name", ["", ".", "..", "a..b.stl", "a/b", "/abs", "a\\b", "C:x", "nul", "Aux.txt", "x.stl ", "tab\there", "\u2028"]
)
def test_check_file_name_refuses(name: str) -> None:
    with pytest.raises(ValueError):
        check_file_name(name)


@pytest.mark.parametrize(
    "raw",
    [
        "../../etc/passwd",
        "C:\\Windows\\evil.stl",
        "C:evil.stl",
        "con.stl",
        "LPT1",
        "x\u202elts.exe",
        "a\x00b.stl",
        "crown.stl. . ",
        "..",
        "",
        "あ" * 200 + ".stl",
        "file:stream.stl",
        "Crown<1>.stl",
    ],
)
def test_every_sanitised_name_passes_the_check(raw: str) -> None:
    assert check_file_name(sanitise_filename(raw)) == sanitise_filename(raw)


def test_long_name_is_refused() -> None:
    with pytest.raises(ValueError, match="255"):
        check_file_name("あ" * 86)
