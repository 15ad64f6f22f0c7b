"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from gateway import __version__
from gateway.audit.checkpoints import checkpoint_due_labs, enable_checkpoints, publish_pending
from gateway.audit.custody_routes import router as custody_router
from gateway.audit.publication import Publisher, open_publisher
from gateway.audit.routes import router as audit_router
from gateway.backends import Backends, open_backends
from gateway.compliance.report.routes import router as compliance_report_router
from gateway.compliance.routes import router as compliance_router
from gateway.identity.routes import router as identity_router
from gateway.incidents.routes import retry_notifications
from gateway.incidents.routes import router as incident_router
from gateway.middleware import JsonBodyLimitMiddleware, RequestContextMiddleware
from gateway.policy import default_policy
from gateway.problems import install_problem_handlers
from gateway.records.routes import router as records_router
from gateway.routes import router as health_router
from gateway.settings import Settings
from gateway.transfer.design_routes import router as design_router
from gateway.transfer.routes import router as transfer_router
from gateway.transfer.station_routes import router as delivery_router
from gateway.transfer.uploads import expire_uploads

HOUSEKEEPING_SECONDS = 600
log = structlog.get_logger("dentgate.housekeeping")


def _audit_checkpoints(backends: Backends, publisher: Publisher | None) -> tuple[int, int]:
    signed = checkpoint_due_labs(backends.sessions, backends.keys, backends.clock())
    return signed, publish_pending(backends.sessions, publisher) if publisher is not None else 0


async def _housekeeping(backends: Backends, publisher: Publisher | None) -> None:
    """Periodic chores every replica may run: audit events unsigned for too long get a checkpoint and
    unpublished checkpoints are published (G19); incident notifications are retried (G18); abandoned uploads
    expire and their bytes are deleted."""
    while True:
        await asyncio.sleep(HOUSEKEEPING_SECONDS)
        try:
            signed, published = await run_in_threadpool(_audit_checkpoints, backends, publisher)
        except Exception:  # the chore retries next round; the failure is logged, never silent
            log.exception("audit checkpoint housekeeping failed")
        else:
            if signed or published:
                log.info("audit checkpoints", signed=signed, published=published)
        try:
            notified = await run_in_threadpool(retry_notifications, backends)
        except Exception:  # the chore retries next round; the failure is logged, never silent
            log.exception("incident notification housekeeping failed")
        else:
            if notified:
                log.info("incident notifications sent", count=notified)
        try:
            expired = await run_in_threadpool(expire_uploads, backends.sessions, backends.staging, backends.clock())
        except Exception:  # the chore retries next round; the failure is logged, never silent
            log.exception("housekeeping failed")
            continue
        if expired:
            log.info("uploads expired", count=expired)


def create_app(settings: Settings | None = None, backends: Backends | None = None) -> FastAPI:
    """Build the gateway app; `backends` may be passed in by tests, otherwise opened from `settings`."""
    settings = settings or Settings()
    backends = backends or open_backends(settings)
    publisher = open_publisher(backends.settings)  # refuses an S3 bucket without Object Lock
    enable_checkpoints(backends.sessions, backends.keys, default_policy().audit, publisher)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        housekeeping = asyncio.create_task(_housekeeping(backends, publisher))
        backends.job_signal.start(asyncio.get_running_loop())
        yield
        housekeeping.cancel()
        backends.close()

    app = FastAPI(
        title="DentGate",
        version=__version__,
        summary="Secure gateway between remote dental technicians and the lab's milling stations",
        lifespan=lifespan,
    )
    app.state.backends = backends
    app.state.publisher = publisher
    install_problem_handlers(app)
    app.add_middleware(JsonBodyLimitMiddleware, limit=settings.max_json_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    app.include_router(identity_router)
    app.include_router(transfer_router)
    app.include_router(delivery_router)
    app.include_router(design_router)
    app.include_router(custody_router)
    app.include_router(audit_router)
    app.include_router(records_router)
    app.include_router(incident_router)
    app.include_router(compliance_router)
    app.include_router(compliance_report_router)
    return app
