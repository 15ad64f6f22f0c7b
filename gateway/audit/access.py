"""Access events (G19): every HTTP request of an authenticated principal, one audit event each.

`RequestContextMiddleware` calls `record_access` once the response has been sent. The event goes on the
caller's lab chain in a short transaction of its own, after the request's own transaction has
committed or rolled back, so an operation's events come before the access event of the request that
made them. Recording can fail (the database went away); the failure is logged and the response, already
sent, is not affected.

Recorded: method, the route template (`/api/v1/designs/{design_id}`, never the raw path or query),
the path parameters that are UUIDs, status, latency, actor, session, device or station, client address
and request id. Never recorded: headers, query strings, bodies. Requests without an authenticated
principal (probes, login, activation, enrolment, refused tokens) are not access events: the
authentication steps record their own `auth` events.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import structlog
from fastapi.concurrency import run_in_threadpool
from starlette.types import Scope

from gateway.audit.chain import Outcome
from gateway.audit.service import AuditEntry, record
from gateway.db.engine import transaction
from gateway.db.scoping import bind_to_lab
from gateway.identity.sessions import Principal, principal_entry
from gateway.request_context import current_request

ACCESS_CATEGORY = "access"
ACCESS_ACTION = "http.request"
UNMATCHED_ROUTE = "(no route)"
log = structlog.get_logger("dentgate.audit.access")


@dataclass(frozen=True)
class AccessFacts:
    """What the middleware measured about one request."""

    method: str
    route: str
    status: int
    latency_ms: float
    params: dict[str, str]
    client_address: str | None
    request_id: str | None


def outcome_of(status: int) -> Outcome:
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    if status < 500:
        return "failure"
    return "error"


def _uuid_params(path_params: Any) -> dict[str, str]:
    """The path parameters that are UUIDs (every id the API takes); anything else a caller typed is left out."""
    kept: dict[str, str] = {}
    if not isinstance(path_params, dict):
        return kept
    for name, value in path_params.items():
        try:
            kept[str(name)] = str(uuid.UUID(str(value)))
        except ValueError:
            continue
    return kept


def access_entry(principal: Principal, facts: AccessFacts) -> AuditEntry:
    details: dict[str, Any] = {
        "method": facts.method,
        "route": facts.route,
        "status": facts.status,
        "latency_ms": facts.latency_ms,
    }
    if principal.station_id is not None:
        details["station"] = str(principal.station_id)
    if facts.params:
        details["params"] = facts.params
    entry = principal_entry(principal, ACCESS_CATEGORY, ACCESS_ACTION, f"session:{principal.session_id}",
                            outcome_of(facts.status), None, details)  # fmt: skip
    return dataclasses.replace(entry, client_address=facts.client_address, request_id=facts.request_id)


def store_access(sessions: Any, entry: AuditEntry) -> None:
    """Append the access event in a transaction of its own, scoped to the caller's lab."""
    with transaction(sessions) as session:
        bind_to_lab(session, entry.lab_id)
        record(session, entry)


def facts_of(scope: Scope, status: int, started: float) -> AccessFacts:
    route = scope.get("route")
    request = current_request()
    return AccessFacts(
        method=str(scope.get("method", "")),
        route=str(getattr(route, "path", None) or UNMATCHED_ROUTE),
        status=status,
        latency_ms=round((time.perf_counter() - started) * 1000, 1),
        params=_uuid_params(scope.get("path_params")),
        client_address=request.client_address if request else None,
        request_id=request.request_id if request else None,
    )


async def record_access(scope: Scope, status: int, started: float) -> None:
    """Record the request as an access event when an authenticated principal made it; never raises.

    Shielded from cancellation: a request whose client went away is still on record.
    """
    principal = (scope.get("state") or {}).get("principal")
    if not isinstance(principal, Principal):
        return
    facts = facts_of(scope, status, started)
    with anyio.CancelScope(shield=True):
        try:
            backends = scope["app"].state.backends
            await run_in_threadpool(store_access, backends.sessions, access_entry(principal, facts))
        except Exception:  # the response is already sent; the gap is logged for the operator, never silent
            log.exception("access event not recorded", route=facts.route, status=facts.status)
