"""Pure audit-chain format: canonical encoding, event hashes, checkpoint statements, verification.

No database and no I/O: callers pass events in and get hashes, or a `ChainBroken` naming the
first bad sequence number, out.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.errors import DentGateError

FORMAT = "dentgate-audit-v1"
Category = Literal["access", "auth", "operation"]
Outcome = Literal["success", "failure", "denied", "error"]
CATEGORIES: frozenset[str] = frozenset({"access", "auth", "operation"})
OUTCOMES: frozenset[str] = frozenset({"success", "failure", "denied", "error"})


class ChainBroken(DentGateError):
    """The chain does not verify; `seq` is the first sequence number that fails."""

    code = "audit-chain-broken"
    status = 409
    title = "Audit chain does not verify"

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"sequence {seq}: {reason}")
        self.seq = seq
        self.reason = reason


class InvalidAuditEvent(DentGateError):
    code = "invalid-audit-event"
    status = 500
    title = "Invalid audit event"


@dataclass(frozen=True)
class ChainedEvent:
    """The hashed content of one event: every field the hash covers, plus its link."""

    lab_id: uuid.UUID
    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: str | None
    category: str
    action: str
    target: str | None
    outcome: str
    reason: str | None
    client_address: str | None
    device_id: str | None
    request_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = ""


def genesis_hash(lab_id: uuid.UUID) -> str:
    """The `prev_hash` of a lab's first event, bound to the lab so chains cannot be swapped."""
    return hashlib.sha256(f"{FORMAT}:genesis:{lab_id}".encode()).hexdigest()


def format_instant(instant: datetime) -> str:
    """RFC 3339 UTC with microseconds, the one textual form of a time in hashed content."""
    if instant.tzinfo is None:
        raise InvalidAuditEvent("audit times must be timezone-aware")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8; NaN and infinities refused (RFC 8785 in spirit)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def event_document(event: ChainedEvent) -> dict[str, Any]:
    """The event as the JSON object its hash covers (and an export carries, with the hash beside it)."""
    if event.category not in CATEGORIES:
        raise InvalidAuditEvent(f"unknown audit category {event.category!r}")
    if event.outcome not in OUTCOMES:
        raise InvalidAuditEvent(f"unknown audit outcome {event.outcome!r}")
    return {
        "format": FORMAT,
        "lab": str(event.lab_id),
        "seq": event.seq,
        "time": format_instant(event.occurred_at),
        "actor": {"type": event.actor_type, "id": event.actor_id},
        "category": event.category,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "reason": event.reason,
        "client_address": event.client_address,
        "device": event.device_id,
        "request_id": event.request_id,
        "details": event.details,
        "prev": event.prev_hash,
    }


def event_from_document(document: dict[str, Any]) -> ChainedEvent:
    """The inverse of `event_document`, for checking an exported event offline; InvalidAuditEvent if malformed."""
    try:
        if document["format"] != FORMAT:
            raise InvalidAuditEvent(f"not a {FORMAT} event")
        return ChainedEvent(
            lab_id=uuid.UUID(document["lab"]),
            seq=int(document["seq"]),
            occurred_at=datetime.strptime(document["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
            actor_type=document["actor"]["type"],
            actor_id=document["actor"]["id"],
            category=document["category"],
            action=document["action"],
            target=document["target"],
            outcome=document["outcome"],
            reason=document["reason"],
            client_address=document["client_address"],
            device_id=document["device"],
            request_id=document["request_id"],
            details=document["details"],
            prev_hash=document["prev"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidAuditEvent(f"malformed exported event: {error}") from None


def canonical_event(event: ChainedEvent) -> bytes:
    try:
        return canonical_json(event_document(event))
    except (TypeError, ValueError) as error:
        raise InvalidAuditEvent(f"audit details are not plain JSON: {error}") from error


def event_hash(event: ChainedEvent) -> str:
    """SHA-256 over the canonical event, which includes the previous event's hash."""
    return hashlib.sha256(canonical_event(event)).hexdigest()


def checkpoint_statement(lab_id: uuid.UUID, seq: int, head_hash: str, signed_at: datetime) -> bytes:
    """The exact bytes the gateway signs for a checkpoint."""
    return canonical_json(
        {
            "format": f"{FORMAT}-checkpoint",
            "lab": str(lab_id),
            "seq": seq,
            "hash": head_hash,
            "signed_at": format_instant(signed_at),
        }
    )


@dataclass(frozen=True)
class VerifiedChain:
    count: int
    head_seq: int
    head_hash: str


def verify_events(
    lab_id: uuid.UUID,
    events: Iterable[tuple[ChainedEvent, str]],
    expected_hashes: dict[int, str] | None = None,
    anchor: tuple[int, str] | None = None,
) -> VerifiedChain:
    """Walk `(event, stored_hash)` pairs in sequence order and raise ChainBroken at the first fault.

    Finds a changed field (hash mismatch), a deleted event (gap), an inserted or reordered event
    (broken link or out-of-order number), and, through `expected_hashes` from signed checkpoints,
    a chain recomputed from some point on. The walk starts at the genesis, or, after a purge, at
    `anchor`: the (sequence number, hash) of the signed checkpoint that closes the purged segment.
    """
    expected_hashes = expected_hashes or {}
    anchor_seq, running = anchor if anchor is not None and anchor[0] > 0 else (0, genesis_hash(lab_id))
    before_running = ""
    expected_seq = anchor_seq + 1
    count = 0
    for event, stored_hash in events:
        if event.seq != expected_seq:
            missing = event.seq > expected_seq
            raise ChainBroken(
                expected_seq,
                f"event missing (next stored event is {event.seq})"
                if missing
                else f"sequence number {event.seq} out of order",
            )
        if event.prev_hash != running:
            if before_running and event.prev_hash == before_running:
                raise ChainBroken(event.seq - 1, "event inserted into the chain")
            if count == 0 and anchor_seq:
                raise ChainBroken(event.seq, "link to the signed checkpoint at the purge boundary is broken")
            raise ChainBroken(event.seq, "link to the previous event is broken")
        recomputed = event_hash(event)
        if recomputed != stored_hash:
            raise ChainBroken(event.seq, "content does not match its hash")
        signed = expected_hashes.get(event.seq)
        if signed is not None and signed != recomputed:
            raise ChainBroken(event.seq, "chain differs from a signed checkpoint")
        before_running, running = running, recomputed
        expected_seq += 1
        count += 1
    return VerifiedChain(count=count, head_seq=expected_seq - 1, head_hash=running)
