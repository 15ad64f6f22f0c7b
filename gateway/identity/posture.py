"""Device posture reports and their evaluation against the lab policy (G7, G8, G9, G15). Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from gateway.policy import PosturePolicy

MAX_APPLICATIONS = 5000
MAX_ANTIMALWARE = 32
MAX_CLOUD_SYNC = 32
MAX_NAME_LENGTH = 300
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_REPORT_AGE = timedelta(hours=24)

Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH)]
Text = Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]
Short = Annotated[str, StringConstraints(max_length=100)]

OPEN_WIFI_SECURITY = frozenset({"open", "none", "owe", "enhanced-open"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AntimalwareProduct(_Strict):
    """A security product the device reports (G7); `up_to_date` is None when its signature state is unknown."""

    name: Name
    enabled: StrictBool
    up_to_date: StrictBool | None = None


class NetworkState(_Strict):
    """How the device is connected (G7: no public Wi-Fi); None means not reported."""

    kind: Literal["wired", "wifi", "cellular", "unknown"] = "unknown"
    wifi_ssid: Annotated[str, StringConstraints(max_length=64)] | None = None
    wifi_security: Short | None = None
    wifi_open: StrictBool | None = None


class InstalledApplication(_Strict):
    """One entry of the G8 software ledger."""

    name: Name
    version: Short | None = None
    publisher: Text | None = None


class PostureReport(_Strict):
    """What a technician's PC says about itself (G7, G8, G9, G15). None = the collector could not tell."""

    os_family: Literal["windows", "macos", "linux"]
    os_name: Text | None = None
    os_version: Short | None = None
    os_build: Short | None = None
    serial_number: Short | None = None
    hostname: Annotated[str, StringConstraints(max_length=255)] | None = None
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    last_update: date | None = None
    antimalware: list[AntimalwareProduct] = Field(default_factory=list, max_length=MAX_ANTIMALWARE)
    disk_encryption: StrictBool | None = None
    firewall_enabled: StrictBool | None = None
    bluetooth_enabled: StrictBool | None = None
    adhoc_wifi_enabled: StrictBool | None = None
    network: NetworkState = Field(default_factory=NetworkState)
    removable_media_blocked: StrictBool | None = None
    installed_applications: list[InstalledApplication] = Field(default_factory=list, max_length=MAX_APPLICATIONS)
    cloud_sync_clients: list[Name] = Field(default_factory=list, max_length=MAX_CLOUD_SYNC)
    collected_at: AwareDatetime
    collector_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]


@dataclass(frozen=True, slots=True)
class PostureFailure:
    """One failed posture rule: a stable `rule` id, a readable `message`, and the guideline `requirement`."""

    rule: str
    message: str
    requirement: str


def evaluate_posture(report: PostureReport, policy: PosturePolicy, now: datetime) -> list[PostureFailure]:
    """Every rule the report fails under `policy` at `now` (G7, G9, G15, G8); an empty list means compliant."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    checks = [
        _check_freshness(report, now),
        _check_update_age(report, policy, now),
        _check_antimalware(report) if policy.require_antimalware else None,
        _check_state(
            report.disk_encryption, True, "disk-encryption", "G15", "disk encryption state",
            "disk encryption is off; the policy requires it on",
        ) if policy.require_disk_encryption else None,
        _check_state(
            report.firewall_enabled, True, "firewall", "G7", "firewall state",
            "the firewall is off; the policy requires it on",
        ) if policy.require_firewall else None,
        _check_state(
            report.bluetooth_enabled, False, "bluetooth", "G9", "Bluetooth state",
            "Bluetooth is on; the policy requires it off",
        ) if policy.require_bluetooth_off else None,
        _check_state(
            report.adhoc_wifi_enabled, False, "adhoc-wifi", "G9", "ad-hoc / hosted Wi-Fi state",
            "ad-hoc or hosted Wi-Fi is on; the policy requires it off",
        ) if policy.require_adhoc_off else None,
        _check_open_wifi(report) if policy.forbid_open_wifi else None,
        _check_state(
            report.removable_media_blocked, True, "removable-media", "G15", "removable media policy",
            "removable storage is not blocked; the policy requires it blocked",
        ) if policy.forbid_removable_media else None,
        _check_cloud_sync(report, policy.forbidden_cloud_sync),
    ]  # fmt: skip
    return [failure for failure in checks if failure is not None]


def summarise_for_ledger(report: PostureReport) -> dict[str, Any]:
    """The G8 software-ledger fields of a report, JSON-ready, for display."""
    return {
        "serial_number": report.serial_number,
        "hostname": report.hostname,
        "user": report.user,
        "os_family": report.os_family,
        "os_name": report.os_name,
        "os_version": report.os_version,
        "os_build": report.os_build,
        "last_update": report.last_update.isoformat() if report.last_update else None,
        "applications_count": len(report.installed_applications),
        "cloud_services": list(report.cloud_sync_clients),
        "antimalware": [product.name for product in report.antimalware],
        "collected_at": report.collected_at.isoformat(),
        "collector_version": report.collector_version,
    }


def _check_freshness(report: PostureReport, now: datetime) -> PostureFailure | None:
    when = report.collected_at.isoformat()
    if report.collected_at > now + FUTURE_TOLERANCE:
        minutes = int((report.collected_at - now).total_seconds() // 60)
        return PostureFailure("stale-report", f"report collected at {when} is {minutes} minutes in the future", "G7")
    if report.collected_at < now - MAX_REPORT_AGE:
        hours = int((now - report.collected_at).total_seconds() // 3600)
        message = f"report collected at {when} is {hours} hours old; reports older than 24 hours are refused"
        return PostureFailure("stale-report", message, "G7")
    return None


def _check_update_age(report: PostureReport, policy: PosturePolicy, now: datetime) -> PostureFailure | None:
    if report.last_update is None:
        return PostureFailure("os-update-age", "the date of the last OS update was not reported", "G7")
    age = (now.date() - report.last_update).days
    if age < -1:
        return PostureFailure("os-update-age", f"last OS update {report.last_update} is in the future", "G7")
    if age > policy.max_update_age_days:
        message = (
            f"last OS update {report.last_update} is {age} days old; the policy allows {policy.max_update_age_days}"
        )
        return PostureFailure("os-update-age", message, "G7")
    return None


def _check_antimalware(report: PostureReport) -> PostureFailure | None:
    if not report.antimalware:
        return PostureFailure("antimalware", "no antimalware product was reported", "G7")
    if any(product.enabled and product.up_to_date is True for product in report.antimalware):
        return None
    seen = "; ".join(f"{product.name} ({_product_state(product)})" for product in report.antimalware)
    return PostureFailure("antimalware", f"no enabled, up-to-date antimalware product: {seen}", "G7")


def _product_state(product: AntimalwareProduct) -> str:
    signatures = {True: "signatures up to date", False: "signatures out of date", None: "signature state unknown"}
    return f"{'enabled' if product.enabled else 'disabled'}, {signatures[product.up_to_date]}"


def _check_state(
    value: bool | None, wanted: bool, rule: str, requirement: str, what: str, bad: str
) -> PostureFailure | None:
    if value is None:
        return PostureFailure(rule, f"{what} was not reported", requirement)
    return None if value == wanted else PostureFailure(rule, bad, requirement)


def _check_open_wifi(report: PostureReport) -> PostureFailure | None:
    network = report.network
    if network.kind == "unknown":
        return PostureFailure("open-wifi", "the network connection type was not reported", "G7")
    if network.kind != "wifi":
        return None
    ssid = f"'{network.wifi_ssid}'" if network.wifi_ssid else "(name not reported)"
    security = (network.wifi_security or "").lower()
    if network.wifi_open is True or security in OPEN_WIFI_SECURITY:
        message = f"connected to open Wi-Fi network {ssid} (security: {network.wifi_security or 'open'}); "
        return PostureFailure("open-wifi", message + "the policy forbids open Wi-Fi", "G7")
    if network.wifi_open is None:
        return PostureFailure("open-wifi", f"the security of Wi-Fi network {ssid} was not reported", "G7")
    return None


def _check_cloud_sync(report: PostureReport, forbidden: tuple[str, ...]) -> PostureFailure | None:
    names = [*report.cloud_sync_clients, *(app.name for app in report.installed_applications)]
    found: list[str] = []
    for name in (entry.strip() for entry in forbidden):
        pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)
        if name and any(pattern.search(candidate) for candidate in names):
            found.append(name)
    if not found:
        return None
    message = f"forbidden cloud sync client installed: {', '.join(found)}; the policy forbids {', '.join(forbidden)}"
    return PostureFailure("cloud-sync", message, "G8")
