"""Process-level routes: liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import BackendsDep
from gateway.health import clock_report, readiness, start_clock_probe
from gateway.problems import problem
from gateway.routing import TransactionalRoute

router = APIRouter(tags=["health"], route_class=TransactionalRoute)


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    summary="Database, object storage and key provider are reachable; the clock's synchronization is reported",
    responses={503: {"description": "A backend is unreachable; the problem names it"}},
)
def readyz(backends: BackendsDep) -> JSONResponse:
    """Ready when every backend answers. `clock` says where the time comes from and whether it is
    synchronized (null when the host does not say); it is reported, never a reason to be unready."""
    clock_probe = start_clock_probe()
    checks = readiness(backends)
    clock = clock_report(clock_probe)
    report = {check.name: {"ok": check.ok, "detail": check.detail} for check in checks}
    failing = [check.detail for check in checks if not check.ok]
    if failing:
        return problem(503, "not-ready", "Service not ready", "; ".join(failing), "/readyz", checks=report, clock=clock)
    return JSONResponse({"status": "ready", "checks": report, "clock": clock})
