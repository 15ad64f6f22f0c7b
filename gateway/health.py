"""Readiness rules: which backend is reachable, and why not."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import sqlalchemy as sa

from gateway.backends import Backends
from gateway.db.engine import read_only_connection
from gateway.db.migrate import current_revision, head_revision
from gateway.errors import DentGateError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database(backends: Backends) -> Check:
    try:
        with read_only_connection(backends.engine) as connection:
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


def _adapter_check(name: str, check_ready: Callable[[], object], describe: Callable[[], str]) -> Check:
    try:
        check_ready()
    except DentGateError as error:
        return Check(name, False, error.detail)
    return Check(name, True, describe())


def check_storage(backends: Backends) -> Check:
    return _adapter_check("storage", backends.store.check_ready, backends.store.describe)


def check_keys(backends: Backends) -> Check:
    return _adapter_check("keys", backends.keys.check_ready, lambda: backends.keys.key_id)


# Probes run here so a backend that stops answering costs a probe its deadline, not a request thread.
_probes = ThreadPoolExecutor(max_workers=6, thread_name_prefix="dentgate-readiness")
CHECK_DEADLINE_SECONDS = 5.0


def readiness(backends: Backends) -> list[Check]:
    """Run every check at once; a check still running at the deadline counts as failed."""
    probes = {"database": check_database, "storage": check_storage, "keys": check_keys}
    futures = {name: _probes.submit(probe, backends) for name, probe in probes.items()}
    checks = []
    for name, future in futures.items():
        try:
            checks.append(future.result(timeout=CHECK_DEADLINE_SECONDS))
        except FutureTimeout:
            checks.append(Check(name, False, f"{name} did not answer within {CHECK_DEADLINE_SECONDS:g} s"))
    return checks
