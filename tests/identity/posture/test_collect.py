"""collect_posture: picks the platform collector, runs each command with a timeout, failures become unknowns."""

from __future__ import annotations

import sys
from datetime import datetime

import pytest

from clients.posture import Command, windows
from clients.posture.collect import (
    COLLECTORS,
    UnsupportedPlatformError,
    collect_posture,
    run_command,
    run_commands,
)
from tests.identity.posture.samples import COLLECTED_AT, recorded_outputs


class RecordedRunner:
    """Answers each command from a recorded scenario and remembers what it was asked."""

    def __init__(self, scenario: str) -> None:
        self.outputs = recorded_outputs(scenario)
        self.asked: list[Command] = []

    def __call__(self, command: Command) -> str | None:
        self.asked.append(command)
        return self.outputs.get(command.key)


def _clock() -> datetime:
    return COLLECTED_AT


def test_windows_posture_is_collected_through_the_runner() -> None:
    runner = RecordedRunner("windows/compliant")
    report = collect_posture(runner, system="Windows", clock=_clock)
    assert sorted(command.key for command in runner.asked) == sorted(command.key for command in windows.COMMANDS)
    expected = windows.build_report(
        runner.outputs, hostname=report.hostname, user=report.user, collected_at=COLLECTED_AT
    )
    assert report == expected
    assert report.os_family == "windows"
    assert report.hostname  # this machine's name


@pytest.mark.parametrize(("system", "family"), [("Windows", "windows"), ("Darwin", "macos"), ("Linux", "linux")])
def test_the_collector_follows_the_platform(system: str, family: str) -> None:
    report = collect_posture(lambda command: None, system=system, clock=_clock)
    assert report.os_family == family
    assert report.disk_encryption is None  # every command failed


def test_an_unsupported_platform_is_refused() -> None:
    with pytest.raises(UnsupportedPlatformError, match="FreeBSD"):
        collect_posture(lambda command: None, system="FreeBSD")


def test_collecting_on_this_machine_gives_a_report() -> None:
    report = collect_posture(lambda command: None)  # platform.system() of the test machine
    assert report.os_family in ("windows", "macos", "linux")
    assert report.collected_at.tzinfo is not None


def test_run_commands_returns_every_key_even_when_some_fail() -> None:
    commands = [Command("a", ("a",)), Command("b", ("b",)), Command("c", ("c",))]
    outputs = run_commands(commands, lambda command: None if command.key == "b" else command.key.upper())
    assert outputs == {"a": "A", "b": None, "c": "C"}


def test_run_command_returns_stdout() -> None:
    command = Command("echo", (sys.executable, "-c", "print('Status: active')"))
    assert run_command(command) == "Status: active\n"


def test_run_command_decodes_utf8_output() -> None:
    command = Command("ja", (sys.executable, "-c", "import sys; sys.stdout.buffer.write('認証 : オープン'.encode())"))
    assert run_command(command) == "認証 : オープン"


def test_run_command_treats_a_failing_exit_code_as_unknown() -> None:
    assert run_command(Command("fail", (sys.executable, "-c", "print('partial'); raise SystemExit(1)"))) is None


def test_run_command_accepts_exit_codes_the_command_declares_as_normal() -> None:
    inactive = Command("clamd", (sys.executable, "-c", "print('inactive'); raise SystemExit(3)"), 10, frozenset({0, 3}))
    assert run_command(inactive) == "inactive\n"


def test_run_command_gives_up_after_its_timeout() -> None:
    started = datetime.now()
    assert run_command(Command("slow", (sys.executable, "-c", "import time; time.sleep(30)"), timeout=0.5)) is None
    assert (datetime.now() - started).total_seconds() < 10


def test_run_command_of_a_missing_program_is_unknown() -> None:
    assert run_command(Command("missing", ("dentgate-no-such-program-4f1c",))) is None


def test_every_platform_has_a_collector() -> None:
    assert set(COLLECTORS) == {"Windows", "Darwin", "Linux"}
