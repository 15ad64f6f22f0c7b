"""Collect this PC's posture (G7, G8, G9, G15): run the platform's commands, each with a timeout, and parse them."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import ModuleType

from clients.posture import Command, Runner, linux, macos, windows
from gateway.identity.posture import PostureReport

MAX_OUTPUT_BYTES = 32 * 1024 * 1024  # a runaway command's output is treated as a failure, not parsed
COLLECTORS: Mapping[str, ModuleType] = {"Windows": windows, "Darwin": macos, "Linux": linux}
_LOCALE = {"Linux": "C.UTF-8", "Darwin": "C"}  # parsers read English tool output; Windows output is localised


class UnsupportedPlatformError(RuntimeError):
    """The operating system has no posture collector."""


def run_command(command: Command) -> str | None:
    """Run one command (no shell) within its timeout: stdout as text, or None if it failed, timed out or is absent."""
    locale = _LOCALE.get(platform.system())
    env = {**os.environ, "LC_ALL": locale, "LANG": locale} if locale else None
    try:
        completed = subprocess.run(  # noqa: S603 - argv comes from the collector modules, not from input
            list(command.argv),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=command.timeout,
            check=False,
            env=env,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if completed.returncode not in command.ok_returncodes or len(completed.stdout) > MAX_OUTPUT_BYTES:
        return None
    return completed.stdout.decode("utf-8", errors="replace")


def run_commands(commands: Iterable[Command], runner: Runner = run_command, workers: int = 4) -> dict[str, str | None]:
    """Every command's output by key (None for failures), run a few at a time."""
    commands = list(commands)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outputs = list(pool.map(runner, commands))
    return {command.key: output for command, output in zip(commands, outputs, strict=True)}


def collect_posture(
    runner: Runner = run_command,
    *,
    system: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PostureReport:
    """This PC's PostureReport, using the collector for `system` (default `platform.system()`)."""
    name = system or platform.system()
    collector = COLLECTORS.get(name)
    if collector is None:
        raise UnsupportedPlatformError(f"no posture collector for {name!r}")
    outputs = run_commands(collector.COMMANDS, runner)
    report: PostureReport = collector.build_report(outputs, hostname=_hostname(), user=_user(), collected_at=clock())
    return report


def _hostname() -> str | None:
    return socket.gethostname() or None


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment and no passwd entry
        return None
