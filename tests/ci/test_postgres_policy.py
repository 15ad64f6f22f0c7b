"""Under CI an unreachable PostgreSQL fails the run; on a developer's machine it skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def run_postgres_tests(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["DENTGATE_TEST_POSTGRES_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/db/test_migrations.py",
            "-k",
            "postgresql",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_unreachable_postgresql_fails_under_ci(ci):
    result = run_postgres_tests(ci)
    assert result.returncode == 1, result.stdout
    assert "CI=true: PostgreSQL tests must run, not skip" in result.stdout
    assert "2 errors" in result.stdout


def test_unreachable_postgresql_skips_outside_ci():
    result = run_postgres_tests(None)
    assert result.returncode == 0, result.stdout
    assert "2 skipped" in result.stdout
