"""Waking stations' long polls the moment a job becomes available to them (G13).

A transaction that makes jobs available calls `announce(session, station_ids)`. On commit, and only on
commit, the waiting long polls of those stations wake up:
- in this process, through the session's `after_commit` event;
- in every replica, on PostgreSQL, through `pg_notify` sent inside the same transaction (PostgreSQL
  delivers a notification only if its transaction commits) and a LISTEN connection per process.

A waiter also wakes every few seconds on its own, so a job whose lease ran out, or one committed by
another process on SQLite, is still found; the signal makes the common case immediate, not correct.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import defaultdict

import psycopg
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session, sessionmaker

CHANNEL = "dentgate_jobs"
PENDING = "dentgate_pending_job_stations"
FALLBACK_WAKE_SECONDS = 2.0
STOP_CHECK_SECONDS = 0.2  # how often the listener looks up from LISTEN to see whether it should stop
RECONNECT_SECONDS = (0.5, 1, 2, 5)
log = structlog.get_logger("dentgate.job_signal")


def announce(session: Session, station_ids: object) -> None:
    """Mark jobs of these stations available once the session's transaction commits."""
    stations = {str(station_id) for station_id in station_ids}  # type: ignore[attr-defined]
    if not stations:
        return
    session.info.setdefault(PENDING, set()).update(stations)
    if session.get_bind().dialect.name == "postgresql":
        for station in sorted(stations):
            session.execute(sa.select(sa.func.pg_notify(CHANNEL, station)))


class JobSignal:
    """Per-station wake-ups for the long polls of one gateway process."""

    def __init__(self, sessions: sessionmaker, postgres_dsn: str | None) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dsn = postgres_dsn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        sa.event.listen(sessions, "after_commit", self._after_commit)
        sa.event.listen(sessions, "after_rollback", self._after_rollback)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver wake-ups into `loop`; on PostgreSQL, start listening for other replicas' commits."""
        self._loop = loop
        if self._dsn and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._listen, name="dentgate-job-listener", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._loop = None

    async def wait(self, ready: asyncio.Event, timeout: float) -> None:
        """Sleep until `ready` (from `waiter`) is set by an announcement, or `timeout` (at most the fallback)."""
        try:
            await asyncio.wait_for(ready.wait(), min(timeout, FALLBACK_WAKE_SECONDS))
        except TimeoutError:
            return

    def waiter(self, station_id: uuid.UUID) -> asyncio.Event:
        """Register interest before looking for a job, so an announcement in between is not lost."""
        event = asyncio.Event()
        with self._lock:
            self._waiters[str(station_id)].add(event)
        return event

    def forget(self, station_id: uuid.UUID, event: asyncio.Event) -> None:
        with self._lock:
            waiters = self._waiters.get(str(station_id))
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[str(station_id)]

    def wake(self, stations: set[str] | None) -> None:
        """Wake the waiters of these stations (all of them when None); safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with self._lock:
            keys = self._waiters.keys() if stations is None else stations & self._waiters.keys()
            events = [event for key in keys for event in self._waiters[key]]
        for event in events:
            loop.call_soon_threadsafe(event.set)

    def _after_commit(self, session: Session) -> None:
        stations = session.info.pop(PENDING, None)
        if stations:
            self.wake(stations)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop(PENDING, None)

    def _listen(self) -> None:
        """LISTEN on the channel, reconnecting with back-off; after each (re)connect wake every waiter,
        since announcements may have been missed while the connection was down."""
        attempt = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=3) as connection:  # type: ignore[arg-type]
                    connection.execute(f"LISTEN {CHANNEL}")
                    attempt = 0
                    self.wake(None)
                    while not self._stop.is_set():
                        for notification in connection.notifies(timeout=STOP_CHECK_SECONDS):
                            self.wake({notification.payload})
            except psycopg.Error as error:
                delay = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
                attempt += 1
                log.warning("job listener disconnected; reconnecting", error=str(error), retry_in=delay)
                self._stop.wait(delay)


def postgres_dsn(engine: sa.Engine) -> str | None:
    """A libpq connection string for the engine's PostgreSQL database, or None on SQLite."""
    if engine.dialect.name != "postgresql":
        return None
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)
