"""Audit exports an inspector can verify on their own, offline (G19).

An export is a contiguous run of a lab's chain (every event from the first at or after `since` to the
last before `until`), one event per line, in JSON Lines or CSV, streamed in constant memory. Each line
carries the event exactly as its hash covers it, plus the hash, so the chain links can be recomputed.
The last line is a trailer, `#dentgate-export-manifest <json>`, holding the manifest the gateway
signed: the count, the SHA-256 of every byte before the trailer, the chain positions (first and last
sequence number, the hash before the first event and of the last) and who exported what when.
The client keeps the events and the manifest as two files; `verify_export` checks them offline.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.chain import (
    ChainedEvent,
    InvalidAuditEvent,
    canonical_json,
    event_document,
    event_from_document,
    event_hash,
    format_instant,
)
from gateway.errors import DentGateError

EXPORT_FORMAT = "dentgate-audit-export-v1"
SIGNING_CONTEXT = EXPORT_FORMAT.encode("ascii") + b"\0"
TRAILER = b"#dentgate-export-manifest "
FileFormat = Literal["jsonl", "csv"]
CSV_COLUMNS = (
    "format", "lab", "seq", "time", "actor_type", "actor_id", "category", "action", "target", "outcome",
    "reason", "client_address", "device", "request_id", "details", "prev", "hash",
)  # fmt: skip


class ExportInvalid(DentGateError):
    """The export does not verify; `detail` says where and why."""

    code = "audit-export-invalid"
    status = 422
    title = "The audit export does not verify"


@dataclass(frozen=True)
class ExportVerified:
    count: int
    first_seq: int | None
    last_seq: int | None
    key_id: str
    public_key: bytes


def _csv_line(values: Iterable[object]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode("utf-8")


def render(document: dict[str, Any], digest: str, file_format: FileFormat) -> bytes:
    """One exported event: the hashed document and its hash, as a JSON line or a CSV row."""
    if file_format == "jsonl":
        return canonical_json({**document, "hash": digest}) + b"\n"
    flat = {**document, "actor_type": document["actor"]["type"], "actor_id": document["actor"]["id"]}
    flat["details"] = canonical_json(document["details"]).decode("utf-8")
    flat["hash"] = digest
    return _csv_line("" if flat[column] is None else flat[column] for column in CSV_COLUMNS)


def export_lines(
    lab_id: uuid.UUID,
    events: Iterable[tuple[ChainedEvent, str]],
    file_format: FileFormat,
    about: dict[str, Any],
    sign: Callable[[bytes], bytes],
    key_id: str,
    public_key: bytes,
    now: Callable[[], datetime],
) -> Iterator[bytes]:
    """The export's bytes, event by event, then the signed manifest trailer; memory stays constant."""
    sha256, count = hashlib.sha256(), 0
    first_seq = last_seq = first_prev = last_hash = None
    if file_format == "csv":
        header = _csv_line(CSV_COLUMNS)
        sha256.update(header)
        yield header
    for event, digest in events:
        line = render(event_document(event), digest, file_format)
        sha256.update(line)
        count += 1
        if first_seq is None:
            first_seq, first_prev = event.seq, event.prev_hash
        last_seq, last_hash = event.seq, digest
        yield line
    manifest = {
        "format": EXPORT_FORMAT,
        "lab": str(lab_id),
        "file_format": file_format,
        "count": count,
        "sha256": sha256.hexdigest(),
        "first_seq": first_seq,
        "last_seq": last_seq,
        "prev_hash": first_prev,
        "last_hash": last_hash,
        "exported_at": format_instant(now()),
        **about,
        "key_id": key_id,
        "public_key": base64.b64encode(public_key).decode("ascii"),
    }
    signature = base64.b64encode(sign(SIGNING_CONTEXT + canonical_json(manifest))).decode("ascii")
    yield TRAILER + canonical_json({"manifest": manifest, "signature": signature}) + b"\n"


def _documents(lines: Iterator[bytes], file_format: FileFormat) -> Iterator[tuple[dict[str, Any], str]]:
    if file_format == "jsonl":
        for number, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                digest = record.pop("hash")
            except (ValueError, KeyError, AttributeError):
                raise ExportInvalid(f"line {number} is not an exported event") from None
            yield record, digest
        return
    rows = csv.DictReader(io.TextIOWrapper(_LineReader(lines), encoding="utf-8", newline=""))
    if tuple(rows.fieldnames or ()) != CSV_COLUMNS:
        raise ExportInvalid("the CSV header is not the export's")
    for number, row in enumerate(rows, start=2):
        try:
            document = {key: (value if value != "" else None) for key, value in row.items() if key != "hash"}
            document["actor"] = {"type": document.pop("actor_type"), "id": document.pop("actor_id")}
            document["seq"] = int(document["seq"])
            document["details"] = json.loads(document["details"] or "{}")
        except (ValueError, KeyError, TypeError):
            raise ExportInvalid(f"row {number} is not an exported event") from None
        yield document, row["hash"]


class _LineReader(io.RawIOBase):
    """A binary stream over an iterator of lines, for the csv module (which wants text)."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines, self._pending = lines, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._lines)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def parse_trailer(line: bytes) -> dict[str, Any]:
    """The signed manifest from a trailer line (or from a manifest file's content)."""
    text = line[len(TRAILER) :] if line.startswith(TRAILER) else line
    try:
        signed = json.loads(text)
        if not isinstance(signed, dict) or set(signed) != {"manifest", "signature"}:
            raise ValueError("not a signed manifest")
    except ValueError:
        raise ExportInvalid("the export manifest is not a signed manifest") from None
    return signed


def verify_export(
    lines: Iterable[bytes], signed_manifest: dict[str, Any], trusted_key: bytes | None = None
) -> ExportVerified:
    """Check an export offline: the manifest's signature (against `trusted_key` when given), the file's
    SHA-256 and count, every event's hash and every link; ExportInvalid names the first failure."""
    manifest = signed_manifest["manifest"]
    try:
        public_key = base64.b64decode(manifest["public_key"], validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            base64.b64decode(signed_manifest["signature"], validate=True), SIGNING_CONTEXT + canonical_json(manifest)
        )
    except (InvalidSignature, ValueError, KeyError, TypeError):
        raise ExportInvalid("the manifest's signature does not verify") from None
    if trusted_key is not None and public_key != trusted_key:
        raise ExportInvalid("the manifest is signed by another key than the gateway key you trust")
    if manifest.get("format") != EXPORT_FORMAT or manifest.get("file_format") not in ("jsonl", "csv"):
        raise ExportInvalid("not a DentGate audit export manifest")
    sha256, counted = hashlib.sha256(), 0

    def hashed(source: Iterable[bytes]) -> Iterator[bytes]:
        for line in source:
            sha256.update(line)
            yield line

    previous_hash, previous_seq = manifest["prev_hash"], None
    for document, digest in _documents(hashed(iter(lines)), manifest["file_format"]):
        try:
            event = event_from_document(document)
            recomputed = event_hash(event)
        except InvalidAuditEvent as error:
            raise ExportInvalid(f"event {counted + 1}: {error.detail}") from None
        if str(event.lab_id) != manifest["lab"]:
            raise ExportInvalid(f"sequence {event.seq}: an event of another lab")
        if previous_seq is not None and event.seq != previous_seq + 1:
            raise ExportInvalid(f"sequence {previous_seq + 1}: missing from the export")
        if event.prev_hash != previous_hash:
            raise ExportInvalid(f"sequence {event.seq}: does not link to the event before it")
        if recomputed != digest:
            raise ExportInvalid(f"sequence {event.seq}: its content does not match its hash")
        previous_hash, previous_seq, counted = digest, event.seq, counted + 1
    if sha256.hexdigest() != manifest["sha256"]:
        raise ExportInvalid("the file's SHA-256 differs from the signed manifest's")
    if counted != manifest["count"] or (counted and previous_hash != manifest["last_hash"]):
        raise ExportInvalid(f"the file holds {counted} events; the signed manifest says {manifest['count']}")
    return ExportVerified(counted, manifest["first_seq"], manifest["last_seq"], manifest["key_id"], public_key)
