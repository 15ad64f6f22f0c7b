"""Readiness rules: which backend is reachable, and why not."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gateway.backends import Backends
from gateway.db.engine import ping
from gateway.db.migrate import current_revision, head_revision
from gateway.errors import DentGateError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database(backends: Backends) -> Check:
    try:
        ping(backends.engine)
        with backends.engine.connect() as connection:
            revision = current_revision(connection)
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error) or error).strip().splitlines()[0]
        return Check("database", False, f"database unreachable: {reason}")
    expected = head_revision()
    if revision != expected:
        return Check(
            "database", False, f"schema at {revision or 'none'}, expected {expected}: run `dentgate admin migrate`"
        )
    return Check("database", True, f"{backends.engine.dialect.name} at schema {revision}")


def check_storage(backends: Backends) -> Check:
    try:
        backends.store.check_ready()
    except DentGateError as error:
        return Check("storage", False, error.detail)
    return Check("storage", True, backends.store.describe())


def check_keys(backends: Backends) -> Check:
    try:
        backends.keys.check_ready()
    except DentGateError as error:
        return Check("keys", False, error.detail)
    return Check("keys", True, backends.keys.key_id)


def readiness(backends: Backends) -> list[Check]:
    return [check_database(backends), check_storage(backends), check_keys(backends)]
