"""Running the gateway: migrate where asked, then serve with uvicorn."""

from __future__ import annotations

import structlog
import uvicorn

from gateway.app import create_app
from gateway.backends import open_backends
from gateway.db.migrate import migrate
from gateway.logs import configure_logging
from gateway.settings import Settings

log = structlog.get_logger("dentgate.server")


def serve(settings: Settings, migrate_at_start: bool = True) -> None:
    """Serve until interrupted; the embedded default migrates its SQLite database first."""
    configure_logging(settings.log_level)
    backends = open_backends(settings)
    if migrate_at_start:
        revision = migrate(backends.engine)
        log.info("database migrated", revision=revision, database=backends.engine.url.render_as_string())
    log.info(
        "gateway starting",
        host=settings.host,
        port=settings.port,
        storage=backends.store.describe(),
        key_id=backends.keys.key_id,
        environment=settings.environment,
    )
    uvicorn.run(
        create_app(settings, backends),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
    )
