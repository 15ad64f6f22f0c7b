"""The request being served (id, client address), carried in a context variable for services and logs."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    client_address: str | None


_current: ContextVar[RequestContext | None] = ContextVar("dentgate_request", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


def enter_request(context: RequestContext) -> object:
    """Make `context` current; returns the token `leave_request` needs."""
    return _current.set(context)


def leave_request(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
