"""Shared fixtures: a database per test on SQLite and PostgreSQL, and moto's S3/KMS server over HTTP."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

POSTGRES_URL = os.environ.get("DENTGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_unreachable_reason() -> str | None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        return f"PostgreSQL at {POSTGRES_URL} unreachable: {error.orig}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = _postgres_unreachable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run, not skip)")
    pytest.skip(reason)


@contextmanager
def fresh_postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards (ask for `postgres_available`)."""
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    with fresh_postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Every database test runs once on SQLite and once on PostgreSQL, each on a clean schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dentgate.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode on a loopback port: S3 and KMS over real HTTP, as boto3 talks to AWS."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-northeast-1")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def new_bucket(moto_endpoint: str) -> str:
    """A fresh bucket on the moto server."""
    import boto3

    name = f"dentgate-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="ap-northeast-1").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-1"}
    )
    return name


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> str:
    """A fresh bucket on the moto server."""
    return new_bucket(moto_endpoint)


@pytest.fixture
def kms_key_id(moto_endpoint: str) -> str:
    """A fresh symmetric KMS key on the moto server."""
    import boto3

    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name="ap-northeast-1")
    return kms.create_key(Description="dentgate test key")["KeyMetadata"]["KeyId"]


@pytest.fixture
def engine(database_url: str):
    """A migrated database engine (SQLite or PostgreSQL), disposed after the test."""
    from gateway.db.engine import create_db_engine
    from gateway.db.migrate import migrate

    engine = create_db_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    from gateway.db.engine import session_factory

    return session_factory(engine)


@pytest.fixture
def make_lab(sessions):
    """Create a lab (with its audit chain) in its own committed transaction."""
    from gateway.db.engine import transaction
    from gateway.identity.service import create_lab

    def make(name: str | None = None):
        with transaction(sessions) as session:
            return create_lab(session, name or f"Lab {uuid.uuid4().hex[:8]}")

    return make


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that ask for the KMS endpoint by name count as KMS tests in the summary."""
    for item in items:
        if "kms_key_id" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kms)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say how many tests really ran on PostgreSQL and on the S3/KMS endpoint, so a skip cannot hide."""
    passed = terminalreporter.stats.get("passed", [])
    skipped = terminalreporter.stats.get("skipped", [])
    for marker, label in (("postgres", "PostgreSQL"), ("s3", "S3 (moto server)"), ("kms", "KMS (moto server)")):
        ran = sum(1 for report in passed if marker in report.keywords)
        not_ran = sum(1 for report in skipped if marker in report.keywords)
        terminalreporter.write_line(f"dentgate: {label} tests passed: {ran}, skipped: {not_ran}")
