"""The class of every API route: a sync endpoint's request transaction commits in the endpoint's own thread.

FastAPI runs a sync endpoint on a thread of the server's pool, then validates its response on another, then
closes its dependencies on a third. A request transaction (`LabSession`) that committed only when its
dependency closed held its database connection, and its locks (SQLite's write lock, rows locked FOR UPDATE),
while it waited for those threads. With more concurrent requests than threads, every thread could be waiting
for a connection or a lock that only a request waiting for a thread could give back: the server stalled until
a time-out (`bench/README.md`, the load benchmark with 96 technicians). Committing as soon as the endpoint
returns, in its thread, gives the connection and the locks back before the request needs another thread.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

# Session.info key marking the request's one transaction (`gateway.identity.auth.lab_session`).
REQUEST_TRANSACTION = "dentgate_request_transaction"


def commits_in_its_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint`, committing the request transaction it was given once it returns normally."""

    @functools.wraps(endpoint)
    def call(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session) and value.info.get(REQUEST_TRANSACTION) and value.in_transaction():
                value.commit()
        return result

    return call


class TransactionalRoute(APIRoute):
    """An APIRoute whose sync endpoint commits its request transaction before the response is validated."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(inspect.unwrap(endpoint)):
            endpoint = commits_in_its_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)
