"""Recorded command outputs and ready-made reports for the posture tests, at a fixed time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.identity.posture import PostureReport

RECORDED = Path(__file__).parent / "recorded"
NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 10:00 in Japan
COLLECTED_AT = NOW - timedelta(minutes=2)


def recorded(relative: str) -> str:
    """One recorded output, e.g. 'windows/wlan_open_ja.txt'."""
    return (RECORDED / relative).read_text(encoding="utf-8")


def recorded_outputs(scenario: str, **overrides: str | None) -> dict[str, str | None]:
    """Every recorded output of a scenario directory (e.g. 'windows/compliant') by command key, plus overrides."""
    outputs: dict[str, str | None] = {
        path.stem: path.read_text(encoding="utf-8") for path in sorted((RECORDED / scenario).iterdir())
    }
    outputs.update(overrides)
    return outputs


def compliant_report(**changes: Any) -> PostureReport:
    """A Windows report that passes the default policy at NOW; `changes` replace fields."""
    fields: dict[str, Any] = {
        "os_family": "windows",
        "os_name": "Microsoft Windows 11 Pro 23H2",
        "os_version": "10.0.22631",
        "os_build": "22631.4460",
        "serial_number": "5CD2417XQ8",
        "hostname": "CAD-PC-07",
        "user": "sato",
        "last_update": (NOW - timedelta(days=14)).date(),
        "antimalware": [{"name": "Windows Defender", "enabled": True, "up_to_date": True}],
        "disk_encryption": True,
        "firewall_enabled": True,
        "bluetooth_enabled": False,
        "adhoc_wifi_enabled": False,
        "network": {"kind": "wired"},
        "removable_media_blocked": True,
        "installed_applications": [{"name": "exocad DentalCAD 3.2 Elefsina", "version": "3.2.9158"}],
        "cloud_sync_clients": [],
        "collected_at": COLLECTED_AT,
        "collector_version": "test",
    }
    fields.update(changes)
    return PostureReport.model_validate(fields)
