"""`dentgate demo` as a new user runs it: the whole job on one PC, with a byte-identical delivery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def test_demo_delivers_the_crown_byte_for_byte_and_verifies_the_audit_chain(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DENTGATE_")}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "clients.cli", "demo", "--workdir", str(tmp_path / "d"), "--json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    original, delivered = (Path(summary[k]).read_bytes() for k in ("original_file", "delivered_file"))
    assert original == delivered
    assert summary["audit_verified"] is True
    assert summary["receipt"]["receipt"]["design_id"] == summary["design_id"]
    assert elapsed < 30
