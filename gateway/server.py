"""Running the gateway: migrate where asked, then serve with uvicorn, in one process or in N worker processes.

With `workers > 1` the parent process migrates (once), builds the app once to refuse a bad configuration before
any worker starts, then hands the port to uvicorn's supervisor, which starts the workers and restarts one that
dies. Each worker is a fresh interpreter (multiprocessing "spawn"): it rebuilds its settings the way the parent
did, from the same command-line flags (passed in `WORKER_FLAGS_VARIABLE`, never a secret), over the same
inherited `DENTGATE_*` environment and configuration file, and opens its own backends. Workers share nothing in
memory: everything replicas must agree on (sessions, used key proofs and TOTP steps, the audit chain head, job
leases, uploads) lives in PostgreSQL and the object store, and a committed job wakes the long polls of every
worker through PostgreSQL LISTEN/NOTIFY, as it does across replicas (G13).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from uvicorn.config import STARTUP_FAILURE

from gateway.app import create_app
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.logs import configure_logging
from gateway.settings import Settings

WORKER_APP = "gateway.server:worker_app"
WORKER_FLAGS_VARIABLE = "_DENTGATE_SERVE_FLAGS"
log = structlog.get_logger("dentgate.server")


class WorkersRefused(ValueError):
    """A `workers` count this configuration cannot run."""


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse fewer than one worker, and several workers on the embedded SQLite database."""
    if workers < 1:
        raise WorkersRefused(f"the gateway needs at least one worker, not {workers}")
    if workers > 1 and make_url(settings.effective_database_url).get_backend_name() == "sqlite":
        raise WorkersRefused(
            "several workers need PostgreSQL (set DENTGATE_DATABASE_URL); on the embedded SQLite database run one "
            "worker: a job committed in one worker would reach a station waiting on another only at its 2 s "
            "fallback wake-up, and every write queues on the one database file anyway"
        )


def serve(
    settings: Settings, migrate_at_start: bool = True, workers: int = 1, flags: Mapping[str, Any] | None = None
) -> None:
    """Serve until interrupted; the embedded default migrates its SQLite database first.

    `workers > 1` needs PostgreSQL and `flags`: the keyword arguments `settings` was built from (the command's
    flags), from which each worker rebuilds the same settings over the same environment and configuration file.
    """
    check_workers(settings, workers)
    configure_logging(settings.log_level)
    backends = open_backends(settings)
    if migrate_at_start:
        revision = migrate(backends.engine)
        log.info("database migrated", revision=revision, database=backends.engine.url.render_as_string())
    log.info(
        "gateway starting",
        host=settings.host,
        port=settings.port,
        workers=workers,
        storage=backends.store.describe(),
        key_id=backends.keys.key_id,
        environment=settings.environment,
    )
    app = create_app(settings, backends)  # with workers: a check of the configuration before any worker starts
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
        "server_header": False,
    }
    if workers == 1:
        uvicorn.run(app, **options)
        return
    backends.close()  # each worker opens its own
    os.environ[WORKER_FLAGS_VARIABLE] = json.dumps(_json_flags(flags or {}))
    uvicorn.run(WORKER_APP, factory=True, workers=workers, **options)


def worker_app() -> FastAPI:
    """The app of one `serve --workers N` worker; uvicorn imports and calls this in each worker process.

    A failure here ends the worker with uvicorn's startup-failure status, so the supervisor stops instead of
    restarting a worker that would fail the same way again.
    """
    try:
        settings = Settings(**json.loads(os.environ.get(WORKER_FLAGS_VARIABLE, "{}")))
        configure_logging(settings.log_level)
        # As with one worker (access_log=False): our middleware's "request" line is the one line per request.
        logging.getLogger("uvicorn.access").propagate = False
        return create_app(settings)
    except Exception:  # logged, then the whole command stops (uvicorn's startup-failure exit status)
        configure_logging()
        log.exception("worker could not start")
        sys.exit(STARTUP_FAILURE)


def _json_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The flags as JSON values (paths as strings); a secret has no flag, so none is ever passed on."""
    return {name: str(value) if isinstance(value, Path) else value for name, value in flags.items()}
