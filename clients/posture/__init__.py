"""Device posture collectors (G7, G8, G9, G15): per OS, commands to run and pure parsers of their output.

Parsers never guess: output that is missing, malformed or not understood leaves the field None (unknown).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.identity.posture import (
    MAX_APPLICATIONS,
    MAX_NAME_LENGTH,
    OPEN_WIFI_SECURITY,
    AntimalwareProduct,
    InstalledApplication,
)

COLLECTOR_VERSION = "dentgate-posture/1.0"
SIGNATURE_MAX_AGE = timedelta(days=7)  # antimalware signatures older than this are "out of date" (G7)

Outputs = Mapping[str, str | None]


@dataclass(frozen=True)
class Command:
    """One command a collector runs; `key` names its output. Return codes outside `ok_returncodes` mean failure."""

    key: str
    argv: tuple[str, ...]
    timeout: float = 30.0
    ok_returncodes: frozenset[int] = frozenset({0})


Runner = Callable[[Command], str | None]
"""Runs a command and gives its stdout, or None when it failed, timed out or does not exist."""


def load_json(text: str | None) -> Any:
    """Parsed JSON, or None when the text is missing or not JSON."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return json.loads(text.lstrip("\ufeff").strip())
    except (ValueError, RecursionError):
        return None


def as_records(value: Any) -> list[dict[str, Any]] | None:
    """A JSON object or list of objects as a list of objects (PowerShell sends one object bare); None otherwise."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return None


def clip(value: Any, limit: int = MAX_NAME_LENGTH) -> str | None:
    """A stripped string cut to `limit` characters; None for empty or non-scalar values."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    return text[:limit] or None


def to_bool(value: Any) -> bool | None:
    """True/False from JSON booleans, 0/1, or the words true/false, on/off, yes/no, enabled/disabled."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "1", "on", "yes", "enabled"):
            return True
        if word in ("false", "0", "off", "no", "disabled"):
            return False
    return None


_JUNK_SERIALS = frozenset(
    {"", "0", "none", "n/a", "na", "default string", "to be filled by o.e.m.", "system serial number",
     "not specified", "not applicable", "chassis serial number", "0123456789", "serial number"}
)  # fmt: skip


_SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/:-]*")


def clean_serial(value: Any) -> str | None:
    """A hardware serial number: one plain line; None when absent, garbled or a placeholder ('Default string')."""
    text = clip(value, 100)
    if text is None or not _SERIAL.fullmatch(text) or text.lower() in _JUNK_SERIALS or set(text) <= {"0", " ", "-"}:
        return None
    return text


_MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 date/time, or PowerShell 5's `/Date(ms)/`, as an aware datetime (naive ones taken as UTC)."""
    if isinstance(value, dict):  # PowerShell 5 wraps some dates as {"value": "/Date(..)/", "DateTime": "..."}
        value = value.get("value")
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _MS_DATE.fullmatch(text)
    try:
        if match:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def latest_past_date(dates: Iterable[date | None], collected_at: datetime) -> date | None:
    """The newest date not after the collection day; later dates are misparsed (e.g. by locale) and ignored."""
    limit = collected_at.date() + timedelta(days=1)
    valid = [when for when in dates if when is not None and when <= limit]
    return max(valid, default=None)


def signatures_fresh(updated: datetime | None, collected_at: datetime) -> bool | None:
    """Whether antimalware signatures from `updated` are recent enough (G7); None when unknown."""
    if updated is None:
        return None
    return collected_at - updated <= SIGNATURE_MAX_AGE


def wifi_is_open(security: str | None) -> bool | None:
    """True for open (unauthenticated) Wi-Fi, False for WEP/WPA*, None when the security label is not understood."""
    if security is None:
        return None
    label = security.lower()
    if label in OPEN_WIFI_SECURITY:
        return True
    if label.startswith(("wpa", "wep", "802.1x", "dynamic-wep")):
        return False
    return None


def make_applications(entries: Iterable[tuple[Any, Any, Any]]) -> list[InstalledApplication]:
    """Ledger entries (G8) from (name, version, publisher), deduplicated, clipped, at most MAX_APPLICATIONS."""
    seen: set[tuple[str, str | None]] = set()
    apps: list[InstalledApplication] = []
    for name, version, publisher in entries:
        clean_name = clip(name)
        clean_version = clip(version, 100)
        if clean_name is None or (clean_name.casefold(), clean_version) in seen:
            continue
        seen.add((clean_name.casefold(), clean_version))
        apps.append(InstalledApplication(name=clean_name, version=clean_version, publisher=clip(publisher)))
        if len(apps) >= MAX_APPLICATIONS:
            break
    return apps


_CLOUD_SYNC = (
    ("OneDrive", re.compile(r"\bonedrive\b", re.IGNORECASE)),
    ("Dropbox", re.compile(r"\bdropbox\b", re.IGNORECASE)),
    ("Google Drive", re.compile(r"\bgoogle drive\b|\bdrivefs\b|backup and sync from google", re.IGNORECASE)),
    ("Box", re.compile(r"^box(?: (?:drive|sync|tools|edit))?$|\bbox drive\b", re.IGNORECASE)),
    ("iCloud", re.compile(r"\bicloud\b", re.IGNORECASE)),
)


def detect_cloud_sync(app_names: Iterable[str]) -> list[str]:
    """Known cloud sync clients (G8) among installed application names, by canonical name."""
    names = list(app_names)
    return [label for label, pattern in _CLOUD_SYNC if any(pattern.search(name) for name in names)]


def parse_mdatp_health(text: str | None) -> AntimalwareProduct | None:
    """Microsoft Defender for Endpoint on macOS/Linux from `mdatp health` (G7); None when not installed."""
    if not text:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    enabled = to_bool(fields.get("real_time_protection_enabled", "").split(" ")[0])
    if enabled is None:
        return None
    status = fields.get("definitions_status", "").lower()
    up_to_date: bool | None = None
    if status in ("up_to_date", "updated", "uptodate"):
        up_to_date = True
    elif status:
        up_to_date = False
    elif fields.get("definitions_updated_minutes_ago", "").isdigit():
        up_to_date = int(fields["definitions_updated_minutes_ago"]) <= SIGNATURE_MAX_AGE.total_seconds() // 60
    return AntimalwareProduct(name="Microsoft Defender for Endpoint", enabled=enabled, up_to_date=up_to_date)
