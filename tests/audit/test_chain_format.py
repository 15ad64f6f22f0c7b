"""The pure chain format: a known-answer vector and each kind of tampering, without a database."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import UTC, datetime

import pytest

from gateway.audit.chain import (
    ChainBroken,
    ChainedEvent,
    InvalidAuditEvent,
    canonical_event,
    event_hash,
    genesis_hash,
    verify_events,
)

LAB = uuid.UUID("00000000-0000-4000-8000-000000000001")
T0 = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)


def build_chain(count: int) -> list[tuple[ChainedEvent, str]]:
    chain, prev = [], genesis_hash(LAB)
    for seq in range(1, count + 1):
        event = ChainedEvent(
            lab_id=LAB,
            seq=seq,
            occurred_at=T0,
            actor_type="technician",
            actor_id=f"t{seq}",
            category="operation",
            action="design.commit",
            target=f"design:{seq}",
            outcome="success",
            reason=None,
            client_address="192.0.2.7",
            device_id="dev-1",
            request_id=f"req-{seq}",
            details={"size": seq * 10, "名前": "歯科"},
            prev_hash=prev,
        )
        prev = event_hash(event)
        chain.append((event, prev))
    return chain


KNOWN_FIRST_EVENT = (
    '{"action":"design.commit","actor":{"id":"t1","type":"technician"},"category":"operation",'
    '"client_address":"192.0.2.7","details":{"size":10,"名前":"歯科"},"device":"dev-1",'
    '"format":"dentgate-audit-v1","lab":"00000000-0000-4000-8000-000000000001","outcome":"success",'
    '"prev":"f29b8028f77d526269569e2cefddf5a4a09e5efdb5af9df7a6b2421720594990","reason":null,'
    '"request_id":"req-1","seq":1,"target":"design:1","time":"2026-11-25T09:30:00.123456Z"}'
)


def test_known_answer_vector_fixes_the_encoding():
    event, digest = build_chain(1)[0]
    assert genesis_hash(LAB) == hashlib.sha256(f"dentgate-audit-v1:genesis:{LAB}".encode()).hexdigest()
    assert canonical_event(event) == KNOWN_FIRST_EVENT.encode("utf-8")
    assert digest == hashlib.sha256(KNOWN_FIRST_EVENT.encode("utf-8")).hexdigest()
    assert digest == "76385783e9343392f9cce3fb9078c0079e25a9b96c8d6e5335be2d4f9f456c2a"


def test_intact_chain_verifies_to_its_head():
    chain = build_chain(5)
    verified = verify_events(LAB, chain)
    assert (verified.count, verified.head_seq, verified.head_hash) == (5, 5, chain[-1][1])


def test_changed_field_is_found_at_its_sequence_number():
    chain = build_chain(6)
    event, digest = chain[3]
    chain[3] = (dataclasses.replace(event, outcome="failure"), digest)
    with pytest.raises(ChainBroken) as broken:
        verify_events(LAB, chain)
    assert broken.value.seq == 4


def test_deleted_event_is_found_at_the_gap():
    chain = build_chain(6)
    del chain[2]
    with pytest.raises(ChainBroken) as broken:
        verify_events(LAB, chain)
    assert broken.value.seq == 3


def test_well_forged_inserted_event_is_found_where_it_was_inserted():
    chain = build_chain(6)
    prev = chain[1][1]
    forged = ChainedEvent(
        LAB, 3, T0, "manager", "m1", "operation", "design.delete", None, "success", None, None, None, None, {}, prev
    )
    renumbered = [(dataclasses.replace(e, seq=e.seq + 1), h) for e, h in chain[2:]]
    tampered = chain[:2] + [(forged, event_hash(forged))] + renumbered
    with pytest.raises(ChainBroken) as broken:
        verify_events(LAB, tampered)
    assert broken.value.seq == 3
    assert "inserted" in broken.value.reason


def test_reordered_events_are_found_at_the_first_swapped_position():
    chain = build_chain(6)
    (a, ha), (b, hb) = chain[2], chain[3]
    chain[2], chain[3] = (dataclasses.replace(b, seq=3), hb), (dataclasses.replace(a, seq=4), ha)
    with pytest.raises(ChainBroken) as broken:
        verify_events(LAB, chain)
    assert broken.value.seq == 3


def test_chain_of_another_lab_does_not_verify():
    with pytest.raises(ChainBroken) as broken:
        verify_events(uuid.uuid4(), build_chain(2))
    assert broken.value.seq == 1


def test_recomputed_chain_is_caught_by_a_signed_hash():
    chain = build_chain(4)
    signed = {4: chain[3][1]}
    rebuilt, prev = [], genesis_hash(LAB)
    for event, _ in chain:
        event = dataclasses.replace(
            event, actor_id="someone-else" if event.seq == 2 else event.actor_id, prev_hash=prev
        )
        prev = event_hash(event)
        rebuilt.append((event, prev))
    verify_events(LAB, rebuilt)  # self-consistent: only the signature can tell
    with pytest.raises(ChainBroken) as broken:
        verify_events(LAB, rebuilt, signed)
    assert broken.value.seq == 4


def test_details_that_are_not_plain_json_are_refused():
    event = dataclasses.replace(build_chain(1)[0][0], details={"when": datetime.now(UTC)})
    with pytest.raises(InvalidAuditEvent):
        event_hash(event)


def test_unknown_category_is_refused():
    with pytest.raises(InvalidAuditEvent):
        event_hash(dataclasses.replace(build_chain(1)[0][0], category="misc"))


def test_rewritten_first_event_is_named_as_sequence_one():
    chain = build_chain(3)
    first = dataclasses.replace(chain[0][0], prev_hash="")
    with pytest.raises(ChainBroken) as broken:
        verify_events(LAB, [(first, event_hash(first)), *chain[1:]])
    assert broken.value.seq == 1
