"""A design's custody chain: technician signature → gateway receipt → station acknowledgement (pure, no I/O).

- The **manifest** is signed by the technician's device (`gateway.transfer.manifest`).
- The **receipt** is signed by the gateway key once the ciphertext has arrived whole and matched the
  manifest: it names the manifest by its hash and repeats the device's signature.
- The **acknowledgement** is signed by a target station once it has decrypted and written the files:
  it names the receipt by its hash and lists the plaintext hash of every file.

Each artefact is canonical JSON (`gateway.audit.chain.canonical_json`) with its own `format`, and each
signature is over `b"<format>\\0" + canonical bytes`, so a signature on one kind of artefact never
verifies as another (nor as a DPoP proof, a JWS beginning "ey", nor as an audit checkpoint, a JSON object).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from cryptography.exceptions import InvalidSignature
from pydantic import Field, StringConstraints, field_serializer, model_validator

from gateway.audit.chain import canonical_json
from gateway.errors import DentGateError
from gateway.transfer.manifest import (
    MAX_FILES,
    MAX_JSON_INTEGER,
    Ed25519Signature,
    FileName,
    Manifest,
    ManifestSignatureInvalid,
    Sha256Hex,
    Signed,
    SignedManifest,
    UtcDatetime,
    ed25519_public_key,
    file_name_key,
    manifest_sha256,
    parse_signed,
    utc_text,
    verify_manifest,
)

RECEIPT_FORMAT = "dentgate-receipt-v1"
ACKNOWLEDGEMENT_FORMAT = "dentgate-ack-v1"
RECEIPT_CONTEXT = RECEIPT_FORMAT.encode("ascii") + b"\0"
ACKNOWLEDGEMENT_CONTEXT = ACKNOWLEDGEMENT_FORMAT.encode("ascii") + b"\0"
MAX_SIGNED_ARTEFACT_BYTES = 64 * 1024

Step = Literal["manifest", "receipt", "acknowledgement"]


class CustodyArtefactInvalid(DentGateError):
    code = "custody-artefact-invalid"
    status = 422
    title = "Invalid receipt or acknowledgement"


class CustodyArtefactTooLarge(CustodyArtefactInvalid):
    code = "custody-artefact-too-large"
    status = 413
    title = "Receipt or acknowledgement too large"


class CustodySignatureInvalid(DentGateError):
    code = "custody-signature-invalid"
    status = 422
    title = "Receipt or acknowledgement signature does not verify"


class CustodyBroken(DentGateError):
    """The custody chain does not verify; `step` is the first artefact that fails, `reason` says why."""

    code = "custody-broken"
    status = 409
    title = "Custody chain does not verify"

    def __init__(self, step: Step, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


class Receipt(Signed):
    """What the gateway received: the manifest (by hash and device signature) and the ciphertext it measured."""

    format: Literal["dentgate-receipt-v1"] = RECEIPT_FORMAT
    design_id: uuid.UUID
    lab_id: uuid.UUID
    manifest_sha256: Sha256Hex
    device_signature: Ed25519Signature
    ciphertext_sha256: Sha256Hex
    ciphertext_size: Annotated[int, Field(gt=0, le=MAX_JSON_INTEGER)]
    received_at: UtcDatetime
    key_id: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]

    @field_serializer("received_at", when_used="json")
    def _time_text(self, value: datetime) -> str:
        return utc_text(value)


class SignedReceipt(Signed):
    receipt: Receipt
    signature: Ed25519Signature


class AcknowledgedFile(Signed):
    name: FileName
    sha256: Sha256Hex


class Acknowledgement(Signed):
    """What a station wrote: the plaintext hash of each file, and the import folder's name (never its full path)."""

    format: Literal["dentgate-ack-v1"] = ACKNOWLEDGEMENT_FORMAT
    design_id: uuid.UUID
    station_id: uuid.UUID
    receipt_sha256: Sha256Hex
    files: list[AcknowledgedFile] = Field(min_length=1, max_length=MAX_FILES)
    written_at: UtcDatetime
    import_name: FileName

    @field_serializer("written_at", when_used="json")
    def _time_text(self, value: datetime) -> str:
        return utc_text(value)

    @model_validator(mode="after")
    def _unique_names(self) -> Acknowledgement:
        names = [file_name_key(file.name) for file in self.files]
        if len(set(names)) != len(names):
            raise ValueError("file names must be unique")
        return self


class SignedAcknowledgement(Signed):
    acknowledgement: Acknowledgement
    signature: Ed25519Signature


def receipt_bytes(receipt: Receipt) -> bytes:
    return canonical_json(receipt.model_dump(mode="json"))


def receipt_sha256(receipt: Receipt) -> str:
    """Lower-case hex SHA-256 of `receipt_bytes`, the receipt's name in acknowledgements."""
    return hashlib.sha256(receipt_bytes(receipt)).hexdigest()


def acknowledgement_bytes(acknowledgement: Acknowledgement) -> bytes:
    return canonical_json(acknowledgement.model_dump(mode="json"))


def acknowledgement_sha256(acknowledgement: Acknowledgement) -> str:
    return hashlib.sha256(acknowledgement_bytes(acknowledgement)).hexdigest()


def _b64(signature: bytes) -> str:
    if not isinstance(signature, bytes) or len(signature) != 64:
        raise ValueError("an Ed25519 signature is 64 bytes")
    return base64.b64encode(signature).decode("ascii")


def _verify(public_key_raw: bytes, signature: str, message: bytes) -> bool:
    try:
        ed25519_public_key(public_key_raw).verify(base64.b64decode(signature), message)
    except InvalidSignature:
        return False
    return True


def receipt_for(
    signed: SignedManifest, *, ciphertext_sha256: str, ciphertext_size: int, received_at: datetime, key_id: str
) -> Receipt:
    """The receipt for a verified manifest whose ciphertext the gateway measured as given.

    ValueError if the measurement differs from what the manifest announced: never sign that.
    """
    manifest = signed.manifest
    if ciphertext_sha256 != manifest.ciphertext_sha256 or ciphertext_size != manifest.ciphertext_size:
        raise ValueError("the ciphertext received is not the one the manifest names")
    return Receipt(
        design_id=manifest.design_id,
        lab_id=manifest.lab_id,
        manifest_sha256=manifest_sha256(manifest),
        device_signature=signed.signature,
        ciphertext_sha256=ciphertext_sha256,
        ciphertext_size=ciphertext_size,
        received_at=received_at,
        key_id=key_id,
    )


def sign_receipt(receipt: Receipt, sign: Callable[[bytes], bytes]) -> SignedReceipt:
    """Sign with the gateway key, e.g. `sign_receipt(receipt, key_provider.sign)`."""
    return SignedReceipt(receipt=receipt, signature=_b64(sign(RECEIPT_CONTEXT + receipt_bytes(receipt))))


def verify_receipt(signed: SignedReceipt, gateway_public_key_raw: bytes) -> Receipt:
    if not _verify(gateway_public_key_raw, signed.signature, RECEIPT_CONTEXT + receipt_bytes(signed.receipt)):
        raise CustodySignatureInvalid("the receipt signature does not verify with the gateway key")
    return signed.receipt


def sign_acknowledgement(acknowledgement: Acknowledgement, sign: Callable[[bytes], bytes]) -> SignedAcknowledgement:
    """Sign with the station key, e.g. `sign_acknowledgement(ack, station_identity.sign)`."""
    message = ACKNOWLEDGEMENT_CONTEXT + acknowledgement_bytes(acknowledgement)
    return SignedAcknowledgement(acknowledgement=acknowledgement, signature=_b64(sign(message)))


def verify_acknowledgement(signed: SignedAcknowledgement, station_public_key_raw: bytes) -> Acknowledgement:
    message = ACKNOWLEDGEMENT_CONTEXT + acknowledgement_bytes(signed.acknowledgement)
    if not _verify(station_public_key_raw, signed.signature, message):
        raise CustodySignatureInvalid("the acknowledgement signature does not verify with the station key")
    return signed.acknowledgement


def parse_signed_receipt(json_bytes: bytes) -> SignedReceipt:
    return parse_signed(
        SignedReceipt, json_bytes, MAX_SIGNED_ARTEFACT_BYTES, CustodyArtefactInvalid, CustodyArtefactTooLarge
    )


def parse_signed_acknowledgement(json_bytes: bytes) -> SignedAcknowledgement:
    return parse_signed(
        SignedAcknowledgement, json_bytes, MAX_SIGNED_ARTEFACT_BYTES, CustodyArtefactInvalid, CustodyArtefactTooLarge
    )


@dataclass(frozen=True)
class CustodyChain:
    """A verified chain; `acknowledgement` is None while the design has not been delivered."""

    manifest: Manifest
    receipt: Receipt
    acknowledgement: Acknowledgement | None
    manifest_sha256: str
    receipt_sha256: str

    @property
    def delivered(self) -> bool:
        return self.acknowledgement is not None


def verify_custody(
    signed_manifest: SignedManifest,
    device_public_key_raw: bytes,
    signed_receipt: SignedReceipt,
    gateway_public_key_raw: bytes,
    signed_acknowledgement: SignedAcknowledgement | None = None,
    station_public_key_raw: bytes | None = None,
) -> CustodyChain:
    """Check every signature and every link, or raise CustodyBroken naming the first step that fails.

    Links: the receipt names the manifest's hash, the device's signature, its design, lab and ciphertext;
    the acknowledgement names the receipt's hash and the design, comes from a target station, and lists
    exactly the manifest's files with the same plaintext hashes. Times are not compared: device and
    station clocks are not trusted to agree with the gateway's.
    """
    try:
        manifest = verify_manifest(signed_manifest, device_public_key_raw)
    except ManifestSignatureInvalid as error:
        raise CustodyBroken("manifest", error.detail) from None
    manifest_hash = manifest_sha256(manifest)

    try:
        receipt = verify_receipt(signed_receipt, gateway_public_key_raw)
    except CustodySignatureInvalid as error:
        raise CustodyBroken("receipt", error.detail) from None
    if receipt.manifest_sha256 != manifest_hash:
        raise CustodyBroken("receipt", "the receipt names another manifest")
    if receipt.device_signature != signed_manifest.signature:
        raise CustodyBroken("receipt", "the receipt names another device signature")
    if (receipt.design_id, receipt.lab_id) != (manifest.design_id, manifest.lab_id):
        raise CustodyBroken("receipt", "the receipt is for another design or lab")
    if (receipt.ciphertext_sha256, receipt.ciphertext_size) != (manifest.ciphertext_sha256, manifest.ciphertext_size):
        raise CustodyBroken("receipt", "the ciphertext received is not the one the manifest names")
    receipt_hash = receipt_sha256(receipt)

    acknowledgement = None
    if signed_acknowledgement is not None:
        if station_public_key_raw is None:
            raise CustodyBroken("acknowledgement", "no station key to verify the acknowledgement with")
        try:
            acknowledgement = verify_acknowledgement(signed_acknowledgement, station_public_key_raw)
        except CustodySignatureInvalid as error:
            raise CustodyBroken("acknowledgement", error.detail) from None
        if acknowledgement.receipt_sha256 != receipt_hash:
            raise CustodyBroken("acknowledgement", "the acknowledgement names another receipt")
        if acknowledgement.design_id != manifest.design_id:
            raise CustodyBroken("acknowledgement", "the acknowledgement is for another design")
        if acknowledgement.station_id not in manifest.target_stations:
            raise CustodyBroken("acknowledgement", "the acknowledging station is not a target of the design")
        written = {file.name: file.sha256 for file in acknowledgement.files}
        sent = {file.name: file.sha256 for file in manifest.files}
        if written.keys() != sent.keys():
            raise CustodyBroken("acknowledgement", "the station wrote other files than the manifest lists")
        changed = sorted(name for name in sent if written[name] != sent[name])
        if changed:
            raise CustodyBroken("acknowledgement", f"plaintext hash differs for {', '.join(map(repr, changed))}")
    return CustodyChain(
        manifest=manifest,
        receipt=receipt,
        acknowledgement=acknowledgement,
        manifest_sha256=manifest_hash,
        receipt_sha256=receipt_hash,
    )
