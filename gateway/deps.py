"""What a route needs, as `Annotated` dependencies: the backends and one transaction per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from gateway.backends import Backends


def get_backends(request: Request) -> Backends:
    return request.app.state.backends


BackendsDep = Annotated[Backends, Depends(get_backends)]


def get_session(backends: BackendsDep) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it raises."""
    with backends.sessions() as session, session.begin():
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an error.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
