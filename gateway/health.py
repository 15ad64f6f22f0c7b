"""Readiness rules: which backend is reachable, and why not; and what keeps the clock right."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
import structlog

from gateway.backends import Backends
from gateway.db.engine import read_only_connection
from gateway.db.migrate import current_revision, head_revision
from gateway.errors import DentGateError

log = structlog.get_logger("dentgate.health")


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


# --- the clock (G19: event times are only as good as the clock) -------------------------------------------------

CLOCK_COMMAND_SECONDS = 2.0
CLOCKSOURCE_FILE = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")
_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronized
_STA_UNSYNC = 0x0040


@dataclass(frozen=True)
class ClockStatus:
    """Where the time comes from and whether it is synchronized; None where this host does not say."""

    source: str | None
    synchronized: bool | None
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _run(argv: list[str]) -> str | None:
    """The command's output, or None when it is missing, fails or does not answer in time."""
    executable = shutil.which(argv[0])
    if executable is None:
        return None
    try:
        completed = subprocess.run(  # noqa: S603 - fixed argv, no input from callers
            [executable, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=CLOCK_COMMAND_SECONDS,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout if completed.returncode == 0 else None


def _yes(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get((value or "").strip().lower())


def timedatectl_status() -> ClockStatus | None:
    """systemd's view: `NTPSynchronized` (the kernel's sync flag) and `NTP` (a time service is enabled)."""
    output = _run(["timedatectl", "show", "-p", "NTPSynchronized", "-p", "NTP"])
    if output is None:
        return None
    values = dict(line.partition("=")[::2] for line in output.splitlines() if "=" in line)
    synchronized = _yes(values.get("NTPSynchronized"))
    if synchronized is None:
        return None
    service = {True: "enabled", False: "disabled", None: "unknown"}[_yes(values.get("NTP"))]
    return ClockStatus("timedatectl", synchronized, f"NTP service {service}")


def chrony_status() -> ClockStatus | None:
    """chrony's view: `Leap status : Normal` once it tracks a source, `Not synchronised` before."""
    output = _run(["chronyc", "-n", "tracking"])
    if output is None:
        return None
    values = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in output.splitlines())}
    leap = values.get("Leap status")
    if leap is None:
        return None
    synchronized = leap.lower() != "not synchronised"
    return ClockStatus("chrony", synchronized, f"reference {values.get('Reference ID', 'unknown')}, leap {leap}")


class _Timex(ctypes.Structure):
    # The head of Linux's struct timex; the kernel writes the whole struct, so room is left for the rest.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("rest", ctypes.c_char * 512),
    ]


def kernel_status() -> ClockStatus | None:
    """Linux's own flag (adjtimex with no changes, allowed to anyone), as NTP daemons leave it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        clocksource = CLOCKSOURCE_FILE.read_text(encoding="ascii").strip()
    except OSError:
        clocksource = "unknown"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    synchronized = state != _TIME_ERROR and not timex.status & _STA_UNSYNC
    return ClockStatus("kernel", synchronized, f"adjtimex, clocksource {clocksource}")


def clock_status() -> ClockStatus:
    """The first source this host answers from: timedatectl, chrony, the Linux kernel; unknown otherwise."""
    for probe in (timedatectl_status, chrony_status, kernel_status):
        status = probe()
        if status is not None:
            return status
    return ClockStatus(None, None, "no clock synchronization status is readable on this host")


def start_clock_probe() -> Future[ClockStatus]:
    """Read `clock_status` on the probe pool, alongside the backend checks."""
    return _probes.submit(clock_status)


def clock_report(probe: Future[ClockStatus]) -> dict[str, object]:
    """The probe's answer within the deadline; never raises, so the clock can never fail readiness."""
    try:
        return probe.result(timeout=CHECK_DEADLINE_SECONDS).as_dict()
    except FutureTimeout:
        return ClockStatus(None, None, f"the clock did not answer within {CHECK_DEADLINE_SECONDS:g} s").as_dict()
    except Exception:  # a broken probe is reported as unknown and logged; readiness is about the backends
        log.exception("clock status failed")
        return ClockStatus(None, None, "the clock status could not be read").as_dict()
