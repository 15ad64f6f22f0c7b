"""The adapters one gateway process works with, opened once from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from gateway.db.base import utcnow
from gateway.db.engine import create_db_engine, session_factory
from gateway.db.scoping import GatewaySession
from gateway.keys import KeyProvider
from gateway.keys.factory import open_key_provider
from gateway.settings import Settings
from gateway.storage import ObjectStore
from gateway.storage.factory import open_object_store, open_staging_area
from gateway.storage.staging import StagingArea
from gateway.transfer.job_signal import JobSignal, postgres_dsn


@dataclass
class Backends:
    settings: Settings
    engine: sa.Engine
    sessions: sessionmaker[GatewaySession]
    store: ObjectStore
    staging: StagingArea
    keys: KeyProvider
    job_signal: JobSignal
    clock: Callable[[], datetime] = field(default=utcnow)

    def close(self) -> None:
        self.job_signal.stop()
        self.engine.dispose()


def open_backends(settings: Settings) -> Backends:
    """Connect lazily to the database, open the object store and load the gateway key."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = create_db_engine(settings.effective_database_url, settings.database_connect_timeout)
    sessions = session_factory(engine)
    return Backends(
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=open_object_store(settings),
        staging=open_staging_area(settings),
        keys=open_key_provider(settings),
        job_signal=JobSignal(sessions, postgres_dsn(engine)),
    )
