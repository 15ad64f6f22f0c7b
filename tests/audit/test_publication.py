"""Checkpoints published outside the database (G19): a local append-only file and S3 under Object Lock
(moto over HTTP), each database test on SQLite and PostgreSQL. Whoever controls the database, and
deletes or recomputes the chain's tail together with its checkpoint rows and head, is still caught."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import boto3
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from gateway.audit.chain import ChainBroken, checkpoint_statement, event_hash, genesis_hash
from gateway.audit.checkpoints import enable_checkpoints, publish_pending
from gateway.audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from gateway.audit.publication import (
    FilePublisher,
    PublicationFailed,
    PublicationUnusable,
    PublishedCheckpoint,
    add_years,
    open_publisher,
    verify_against_published,
)
from gateway.audit.service import as_chained, verify, write_checkpoint
from gateway.db.engine import transaction
from gateway.settings import Settings
from tests.audit.events import add_events
from tests.audit.test_checkpoints import audit_policy
from tests.tcp_proxy import TcpProxy

REGION = "ap-northeast-1"


@pytest.fixture
def locked_bucket(moto_endpoint: str) -> str:
    """A fresh bucket with Object Lock enabled on the moto server."""
    name = f"dentgate-lock-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}, ObjectLockEnabledForBucket=True
    )
    return name


def s3_settings(tmp_path, endpoint: str, bucket: str) -> Settings:
    url = f"s3://{bucket}/checkpoints"
    return Settings(data_dir=tmp_path, checkpoint_publish_url=url, s3_endpoint_url=endpoint, s3_region=REGION)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def publisher(request: pytest.FixtureRequest, tmp_path):
    if request.param == "file":
        url = (tmp_path / "published" / "checkpoints.jsonl").as_uri()
        return open_publisher(Settings(data_dir=tmp_path, checkpoint_publish_url=url))
    endpoint, bucket = request.getfixturevalue("moto_endpoint"), request.getfixturevalue("locked_bucket")
    return open_publisher(s3_settings(tmp_path, endpoint, bucket))


def published_chain(sessions, make_lab, keys, publisher, events: int = 12):
    """A lab with checkpoints at 5 and 10 (N = 5), both published once their transactions commit."""
    background = enable_checkpoints(sessions, keys, audit_policy(every_events=5), publisher)
    lab = make_lab()
    add_events(sessions, lab.id, events)
    background.wait(timeout=60)
    with sessions() as session:
        rows = session.execute(sa.select(AuditCheckpoint.seq, AuditCheckpoint.published_at)).all()
    assert [seq for seq, _ in rows] == [5, 10] and all(at is not None for _, at in rows)
    return lab


def drop_checkpoints_and_set_head(session, lab_id, seq: int, digest: str) -> None:
    session.execute(sa.delete(AuditCheckpoint).where(AuditCheckpoint.lab_id == lab_id))
    session.execute(
        sa.update(AuditChainHead).where(AuditChainHead.lab_id == lab_id).values(last_seq=seq, last_hash=digest)
    )


def broken_against_published(sessions, lab_id, keys, publisher) -> ChainBroken:
    with sessions() as session, pytest.raises(ChainBroken) as broken:
        verify_against_published(session, lab_id, keys.public_key(), publisher)
    return broken.value


def test_checkpoints_are_published_to_a_private_append_only_file(sessions, make_lab, keys, tmp_path):
    path = tmp_path / "published" / "checkpoints.jsonl"
    publisher = open_publisher(Settings(data_dir=tmp_path, checkpoint_publish_url=path.as_uri()))
    lab = published_chain(sessions, make_lab, keys, publisher)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_bytes().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [5, 10]
    for line in lines:
        checkpoint = PublishedCheckpoint.from_json(line)
        checkpoint.check_signature(keys.public_key())
        assert (checkpoint.lab_id, checkpoint.key_id) == (lab.id, keys.key_id)
    publisher.publish(PublishedCheckpoint.from_json(lines[0]))  # publishing again is harmless
    assert publish_pending(sessions, publisher) == 0
    with sessions() as session:
        result = verify_against_published(session, lab.id, keys.public_key(), publisher)
    assert (result.chain.head_seq, result.published) == (13, 2)
    assert "the last at 10" in result.note


@pytest.mark.s3
def test_s3_checkpoints_are_locked_in_compliance_mode(sessions, make_lab, keys, tmp_path, moto_endpoint, locked_bucket):
    publisher = open_publisher(s3_settings(tmp_path, moto_endpoint, locked_bucket))
    lab = published_chain(sessions, make_lab, keys, publisher)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    key = f"checkpoints/{lab.id}/{5:020d}.json"
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=locked_bucket)["Contents"]) == [
        key,
        f"checkpoints/{lab.id}/{10:020d}.json",
    ]
    head = s3.head_object(Bucket=locked_bucket, Key=key)
    with sessions() as session:
        signed_at = session.scalar(sa.select(AuditCheckpoint.signed_at).where(AuditCheckpoint.seq == 5))
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"].date() == add_years(signed_at, 5).date()
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=locked_bucket, Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    s3.delete_object(Bucket=locked_bucket, Key=key)  # only hides the latest version behind a delete marker
    with sessions() as session:
        assert verify_against_published(session, lab.id, keys.public_key(), publisher).published == 2


@pytest.mark.s3
def test_a_bucket_without_object_lock_is_refused_at_start(tmp_path, moto_endpoint, s3_bucket):
    with pytest.raises(PublicationUnusable, match="Object Lock"):
        open_publisher(s3_settings(tmp_path, moto_endpoint, s3_bucket))


def test_truncated_tail_is_found_by_a_published_checkpoint(sessions, make_lab, keys, publisher):
    lab = published_chain(sessions, make_lab, keys, publisher)
    with transaction(sessions) as session:  # cut 8..13, drop every checkpoint row, rewind the head
        kept = session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq == 7)).one()
        session.execute(sa.delete(AuditEvent).where(AuditEvent.lab_id == lab.id, AuditEvent.seq > 7))
        drop_checkpoints_and_set_head(session, lab.id, 7, kept.hash)
    with sessions() as session:
        assert verify(session, lab.id, keys.public_key()).head_seq == 7  # the database alone cannot tell
    broken = broken_against_published(sessions, lab.id, keys, publisher)
    assert (broken.seq, broken.reason) == (8, "events up to the signed checkpoint 10 are missing")


def test_rewritten_history_is_found_by_a_published_checkpoint_even_if_signed_again(sessions, make_lab, keys, publisher):
    lab = published_chain(sessions, make_lab, keys, publisher)
    with transaction(sessions) as session:  # rewrite event 3 and recompute every hash after it
        prev = genesis_hash(lab.id)
        for row in session.scalars(sa.select(AuditEvent).where(AuditEvent.lab_id == lab.id).order_by(AuditEvent.seq)):
            if row.seq == 3:
                row.actor_id = "forger"
            row.prev_hash = prev
            row.hash = prev = event_hash(as_chained(row))
        drop_checkpoints_and_set_head(session, lab.id, 13, prev)
    with transaction(sessions) as session:  # the gateway's own chore then signs the forged head
        write_checkpoint(session, lab.id, keys)
    assert publish_pending(sessions, publisher) == 1
    with sessions() as session:
        assert verify(session, lab.id, keys.public_key()).head_seq == 13  # the database alone cannot tell
    broken = broken_against_published(sessions, lab.id, keys, publisher)
    assert (broken.seq, broken.reason) == (5, "chain differs from a signed checkpoint")


def test_a_published_checkpoint_signed_by_another_key_is_refused(sessions, make_lab, keys, tmp_path):
    from gateway.keys.local import LocalKeyProvider

    publisher = FilePublisher(tmp_path / "checkpoints.jsonl")
    lab = make_lab()
    add_events(sessions, lab.id, 3)
    with sessions() as session:
        head = session.scalars(sa.select(AuditChainHead).where(AuditChainHead.lab_id == lab.id)).one()
    impostor = LocalKeyProvider.open(tmp_path / "other" / "key.json")
    signed_at = datetime.now(UTC)
    signature = impostor.sign(checkpoint_statement(lab.id, head.last_seq, head.last_hash, signed_at))
    publisher.publish(
        PublishedCheckpoint(lab.id, head.last_seq, head.last_hash, signed_at, impostor.key_id,
                            base64.b64encode(signature).decode())
    )  # fmt: skip
    broken = broken_against_published(sessions, lab.id, keys, publisher)
    assert (broken.seq, broken.reason) == (4, "published checkpoint signature does not verify")


@pytest.mark.s3
def test_publication_failure_does_not_stop_recording_and_is_retried(
    sessions, make_lab, keys, tmp_path, moto_endpoint, locked_bucket
):
    target = urlsplit(moto_endpoint)
    proxy = TcpProxy(target.hostname, target.port)  # not started yet: the endpoint is unreachable
    publisher = open_publisher(s3_settings(tmp_path, f"http://127.0.0.1:{proxy.port}", locked_bucket))
    background = enable_checkpoints(sessions, keys, audit_policy(every_events=5), publisher)
    lab = make_lab()
    add_events(sessions, lab.id, 12)
    background.wait(timeout=60)
    with sessions() as session:
        assert verify(session, lab.id, keys.public_key()).head_seq == 13
        assert session.scalars(sa.select(AuditCheckpoint.published_at)).all() == [None, None]
        with pytest.raises(PublicationFailed):
            verify_against_published(session, lab.id, keys.public_key(), publisher)
    assert publish_pending(sessions, publisher) == 0  # still unreachable: logged, kept for later
    proxy.start()
    try:
        assert publish_pending(sessions, publisher) == 2
        with sessions() as session:
            assert None not in session.scalars(sa.select(AuditCheckpoint.published_at)).all()
            assert verify_against_published(session, lab.id, keys.public_key(), publisher).published == 2
    finally:
        proxy.stop()


def test_without_publication_verify_says_so(sessions, make_lab, keys, tmp_path):
    assert open_publisher(Settings(data_dir=tmp_path)) is None
    lab = make_lab()
    with sessions() as session:
        result = verify_against_published(session, lab.id, keys.public_key(), None)
    assert (result.chain.head_seq, result.published) == (1, 0)
    assert result.note.startswith("no published checkpoints")


def test_a_torn_line_is_skipped_and_the_next_checkpoint_starts_a_line_of_its_own(tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    publisher = FilePublisher(path)
    lab = uuid.uuid4()
    path.write_bytes(b'{"format":"dentgate-audit-v1-checkpoint","lab":')  # a crash mid-write
    checkpoint = PublishedCheckpoint(lab, 7, "ab" * 32, datetime.now(UTC), "local:x", "c2ln")
    publisher.publish(checkpoint)
    assert publisher.published(lab) == [checkpoint]
    assert publisher.published(uuid.uuid4()) == []


@pytest.mark.s3
def test_the_gateway_refuses_to_start_on_a_bucket_without_object_lock(tmp_path, moto_endpoint, s3_bucket):
    from gateway.app import create_app

    with pytest.raises(PublicationUnusable, match="Object Lock"):
        create_app(s3_settings(tmp_path, moto_endpoint, s3_bucket))


def test_the_gateway_signs_every_n_events_and_housekeeping_signs_and_publishes(sessions, make_lab, keys, tmp_path):
    from gateway.app import _audit_checkpoints, create_app
    from gateway.audit.service import CHECKPOINTING

    app = create_app(Settings(data_dir=tmp_path / "gateway"))
    assert app.state.backends.sessions.kw["info"][CHECKPOINTING].every_events == 1000
    app.state.backends.close()
    publisher = FilePublisher(tmp_path / "checkpoints.jsonl")
    lab = make_lab()
    add_events(sessions, lab.id, 2)
    backends = SimpleNamespace(sessions=sessions, keys=keys, clock=lambda: datetime.now(UTC) + timedelta(minutes=11))
    assert _audit_checkpoints(backends, publisher) == (1, 1)
    assert [checkpoint.seq for checkpoint in publisher.published(lab.id)] == [3]
    assert _audit_checkpoints(backends, publisher) == (0, 0)
