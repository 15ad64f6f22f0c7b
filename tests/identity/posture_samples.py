"""Posture reports as a client would send them, relative to a given time."""

from __future__ import annotations

from datetime import datetime, timedelta


def compliant_windows(now: datetime, **changes: object) -> dict:
    report = {
        "os_family": "windows",
        "os_name": "Microsoft Windows 11 Pro",
        "os_version": "10.0.22631",
        "os_build": "22631",
        "serial_number": "PF3ABCDE",
        "hostname": "CAD-PC-01",
        "user": "tanaka",
        "last_update": (now - timedelta(days=7)).date().isoformat(),
        "antimalware": [{"name": "Microsoft Defender Antivirus", "enabled": True, "up_to_date": True}],
        "disk_encryption": True,
        "firewall_enabled": True,
        "bluetooth_enabled": False,
        "adhoc_wifi_enabled": False,
        "network": {"kind": "wired", "wifi_ssid": None, "wifi_security": None, "wifi_open": None},
        "removable_media_blocked": True,
        "installed_applications": [{"name": "exocad DentalCAD", "version": "3.2", "publisher": "exocad GmbH"}],
        "cloud_sync_clients": [],
        "collected_at": now.isoformat(),
        "collector_version": "test",
    }
    report.update(changes)
    return report
