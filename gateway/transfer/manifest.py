"""The design manifest: what a technician's device signs about one sealed design bundle (pure, no I/O).

The device encrypts the bundle to the target stations' age recipients and the lab's archive recipient,
then signs `b"dentgate-manifest-v1\\0" + manifest_bytes(manifest)` with its Ed25519 key (RFC 8032).
`manifest_bytes` is the canonical JSON of the audit chain (`gateway.audit.chain.canonical_json`) over
the model's JSON form, with times in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. The signature covers the
parsed model re-encoded, never the bytes received, so whitespace, key order or duplicate keys in a
transmitted manifest cannot change what was signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import pyrage
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
    model_validator,
)

from gateway.audit.chain import canonical_json
from gateway.errors import DentGateError
from gateway.identity.proofs import thumbprint_of_public_key
from gateway.transfer.teeth import InvalidTooth, parse_tooth

FORMAT = "dentgate-manifest-v1"
SIGNING_CONTEXT = FORMAT.encode("ascii") + b"\0"
MAX_SIGNED_MANIFEST_BYTES = 64 * 1024
MAX_FILES = 32
MAX_TARGET_STATIONS = 8
MAX_TEETH = 64
MAX_FILE_NAME_BYTES = 255
MAX_JSON_INTEGER = 2**53 - 1  # the largest integer every JSON reader keeps exactly

_WINDOWS_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{prefix}{digit}" for prefix in ("COM", "LPT") for digit in "123456789¹²³"}
)


class ManifestInvalid(DentGateError):
    code = "manifest-invalid"
    status = 422
    title = "Invalid design manifest"


class ManifestTooLarge(ManifestInvalid):
    code = "manifest-too-large"
    status = 413
    title = "Design manifest too large"


class ManifestSignatureInvalid(DentGateError):
    code = "manifest-signature-invalid"
    status = 422
    title = "Design manifest signature does not verify"


def check_file_name(name: str) -> str:
    """`name` if it is safe as one file name in a bundle and on the station's disk, else ValueError.

    One path component only: no `/`, `\\` or `:` (a Windows drive), no `..` anywhere, no control or
    format characters (which hide an extension, e.g. U+202E), no trailing dot or space (Windows drops
    them), no Windows device name, and at most 255 UTF-8 bytes. Choosing a name is the sanitiser's
    work (`gateway.transfer.formats.sanitise_filename`, whose results all pass); this is the check
    every side applies to the names it is given.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a file name must be a non-empty string")
    if len(name.encode("utf-8", errors="surrogatepass")) > MAX_FILE_NAME_BYTES:
        raise ValueError(f"a file name has at most {MAX_FILE_NAME_BYTES} UTF-8 bytes")
    if any(separator in name for separator in "/\\:"):
        raise ValueError("a file name must not contain '/', '\\' or ':'")
    if ".." in name:
        raise ValueError("a file name must not contain '..'")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp") for char in name):
        raise ValueError("a file name must not contain control or format characters")
    if name.endswith((" ", ".")):
        raise ValueError("a file name must not end with a space or '.'")
    if name.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_DEVICE_NAMES:
        raise ValueError("a file name must not be a Windows device name")
    return name


def file_name_key(name: str) -> str:
    """The form under which two names count as the same file on case-insensitive or normalising disks."""
    return unicodedata.normalize("NFC", name).casefold()


def _plain_text(value: str) -> str:
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        raise ValueError("control characters are not allowed")
    return value


def _age_recipient(value: str) -> str:
    try:
        canonical = str(pyrage.x25519.Recipient.from_str(value))
    except (pyrage.RecipientError, ValueError):
        raise ValueError("not an age X25519 recipient (age1…)") from None
    if canonical != value:
        raise ValueError("an age recipient must be written in its canonical lower-case form")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None


def utc_text(instant: datetime) -> str:
    """The one textual form of a time in signed content: RFC 3339 UTC with microseconds and 'Z'."""
    if instant.tzinfo is None:
        raise ValueError("signed times must be timezone-aware")
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _canonical_base64(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("not canonical base64")
    return value


Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
FileName = Annotated[str, AfterValidator(check_file_name)]
Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_plain_text)]
Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_plain_text)]
MediaType = Annotated[
    str,
    StringConstraints(max_length=127, pattern=r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$"),
]
AgeRecipient = Annotated[str, StringConstraints(max_length=100), AfterValidator(_age_recipient)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
JsonSize = Annotated[int, Field(ge=0, le=MAX_JSON_INTEGER)]
Ed25519Signature = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}==$"), AfterValidator(_canonical_base64)
]
Thumbprint = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]


class Signed(BaseModel):
    """Base of every signed artefact: frozen, strict (no "5" for 5), unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ManifestFile(Signed):
    name: FileName
    media_type: MediaType
    size: JsonSize
    sha256: Sha256Hex


class ToothEntry(Signed):
    """A tooth by its FDI number, with the numbering system (canonical name) and text the design gave it in."""

    fdi: int
    source_system: Text64
    source_value: Text64

    @model_validator(mode="after")
    def _same_tooth(self) -> ToothEntry:
        try:
            tooth = parse_tooth(self.source_value, self.source_system)
        except InvalidTooth as error:
            raise ValueError(error.detail) from None
        if tooth.source_system != self.source_system:
            raise ValueError(f"write the numbering system as {tooth.source_system!r}")
        if tooth.fdi != self.fdi:
            raise ValueError(f"{self.source_value!r} ({self.source_system}) is FDI {tooth.fdi}, not {self.fdi}")
        return self


class ManifestRecipient(Signed):
    """One age recipient the ciphertext is encrypted to: a target station's or the lab archive's."""

    kind: Literal["station", "archive"]
    station_id: uuid.UUID | None
    age_recipient: AgeRecipient

    @model_validator(mode="after")
    def _station_named(self) -> ManifestRecipient:
        if (self.kind == "station") != (self.station_id is not None):
            raise ValueError("a station recipient names its station; the archive recipient names none")
        return self


class Manifest(Signed):
    format: Literal["dentgate-manifest-v1"]
    design_id: uuid.UUID
    lab_id: uuid.UUID
    case_reference: Text64
    files: list[ManifestFile] = Field(min_length=1, max_length=MAX_FILES)
    teeth: list[ToothEntry] = Field(max_length=MAX_TEETH)
    material: Text100 | None = None
    process: Text64
    remote_location: Text100
    target_stations: list[uuid.UUID] = Field(min_length=1, max_length=MAX_TARGET_STATIONS)
    recipients: list[ManifestRecipient] = Field(min_length=2, max_length=MAX_TARGET_STATIONS + 1)
    technician_id: uuid.UUID
    device_id: uuid.UUID
    created_at: UtcDatetime
    ciphertext_size: Annotated[int, Field(gt=0, le=MAX_JSON_INTEGER)]
    ciphertext_sha256: Sha256Hex

    @field_serializer("created_at", when_used="json")
    def _time_text(self, value: datetime) -> str:
        return utc_text(value)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        names = [file_name_key(file.name) for file in self.files]
        if len(set(names)) != len(names):
            raise ValueError("file names must be unique (ignoring case and Unicode normalisation)")
        if len(set(self.target_stations)) != len(self.target_stations):
            raise ValueError("target stations must be unique")
        archives = [r for r in self.recipients if r.kind == "archive"]
        if len(archives) != 1:
            raise ValueError("the recipients must include exactly one archive recipient")
        stations = [r.station_id for r in self.recipients if r.kind == "station"]
        if len(set(stations)) != len(stations) or set(stations) != set(self.target_stations):
            raise ValueError("the station recipients must be exactly one for each target station")
        keys = [r.age_recipient for r in self.recipients]
        if len(set(keys)) != len(keys):
            raise ValueError("each recipient must have its own age recipient")
        return self


class SignedManifest(Signed):
    """A manifest with the device's Ed25519 signature (standard base64) and the RFC 7638 thumbprint of its key."""

    manifest: Manifest
    signature: Ed25519Signature
    signer: Thumbprint


def manifest_bytes(manifest: Manifest) -> bytes:
    """The canonical JSON of the manifest: the bytes its hash and (after the context) its signature cover."""
    return canonical_json(manifest.model_dump(mode="json"))


def manifest_sha256(manifest: Manifest) -> str:
    """Lower-case hex SHA-256 of `manifest_bytes`, the manifest's name in receipts."""
    return hashlib.sha256(manifest_bytes(manifest)).hexdigest()


def manifest_signing_input(manifest: Manifest) -> bytes:
    """`b"dentgate-manifest-v1\\0" + manifest_bytes`: no other DentGate signature can be over these bytes."""
    return SIGNING_CONTEXT + manifest_bytes(manifest)


def _raw_public_key(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_manifest(manifest: Manifest, device_private_key: Ed25519PrivateKey) -> SignedManifest:
    signature = device_private_key.sign(manifest_signing_input(manifest))
    return SignedManifest(
        manifest=manifest,
        signature=base64.b64encode(signature).decode("ascii"),
        signer=thumbprint_of_public_key(_raw_public_key(device_private_key)),
    )


def ed25519_public_key(raw: bytes) -> Ed25519PublicKey:
    """The key of a raw 32-byte Ed25519 public key (as enrolled); ValueError for anything else."""
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 raw bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_manifest(signed: SignedManifest, device_public_key_raw: bytes) -> Manifest:
    """The manifest if the enrolled device key signed it, else ManifestSignatureInvalid."""
    key = ed25519_public_key(device_public_key_raw)
    if signed.signer != thumbprint_of_public_key(device_public_key_raw):
        raise ManifestSignatureInvalid("the manifest names another signing key than the device's")
    try:
        key.verify(base64.b64decode(signed.signature), manifest_signing_input(signed.manifest))
    except InvalidSignature:
        raise ManifestSignatureInvalid("the manifest signature does not verify with the device key") from None
    return signed.manifest


def validation_summary(error: ValidationError, limit: int = 5) -> str:
    """Where and why a model was refused, without echoing the input values."""
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:limit]:
        location = ".".join(str(part) for part in item["loc"]) or "(document)"
        parts.append(f"{location}: {item['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_signed(
    model: type[Any], data: bytes, limit: int, invalid: type[DentGateError], too_large: type[DentGateError]
) -> Any:
    """`model` parsed from JSON `data` of at most `limit` bytes; `too_large` or `invalid` otherwise."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("signed artefacts are parsed from bytes")
    if len(data) > limit:
        raise too_large(f"at most {limit} bytes are accepted")
    try:
        return model.model_validate_json(bytes(data))
    except ValidationError as error:
        raise invalid(validation_summary(error)) from None


def parse_signed_manifest(json_bytes: bytes) -> SignedManifest:
    """A SignedManifest from at most 64 KiB of JSON; ManifestTooLarge or ManifestInvalid otherwise.

    The signature is not checked here: call `verify_manifest` with the enrolled device key.
    """
    return parse_signed(SignedManifest, json_bytes, MAX_SIGNED_MANIFEST_BYTES, ManifestInvalid, ManifestTooLarge)
