"""Engines and sessions for SQLite (embedded default, WAL) and PostgreSQL (production)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from gateway.db.scoping import GatewaySession

SQLITE_BUSY_TIMEOUT_SECONDS = 30
# A connection with this execution option only reads: on SQLite it begins DEFERRED and waits for no writer.
READ_ONLY_OPTION = "dentgate_read_only"


def create_db_engine(url: str, connect_timeout: int = 3) -> sa.Engine:
    """An engine with the pragmas and timeouts DentGate relies on.

    SQLite: WAL journal, foreign keys on, and every transaction begun IMMEDIATE (unless the
    connection is marked read-only) so writers queue on the database lock instead of failing when a
    transaction that has read later writes.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_private_file(Path(parsed.database))
        engine = sa.create_engine(
            url,
            hide_parameters=True,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=10,
        hide_parameters=True,  # bound values may be secrets; keep them out of error messages and logs
        connect_args={
            "connect_timeout": connect_timeout,
            # Notice a vanished server or network within seconds, not after the kernel's two hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": 15_000,
        },
    )


def _create_private_file(path: Path) -> None:
    """Create the SQLite file owner-only (0600) before SQLite does; its -wal and -shm files follow its mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def session_factory(engine: sa.Engine) -> sessionmaker[GatewaySession]:
    return sessionmaker(engine, class_=GatewaySession, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[GatewaySession]) -> Iterator[GatewaySession]:
    """One unit of work: commit when the block ends normally, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def read_only_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for reads that never waits on SQLite's write lock."""
    with engine.connect() as connection:
        yield connection.execution_options(**{READ_ONLY_OPTION: True})
