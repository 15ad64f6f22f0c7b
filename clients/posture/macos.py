"""macOS posture (G7, G8, G9, G15): system_profiler JSON and built-in tools, and pure parsers of their output."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from clients.posture import (
    COLLECTOR_VERSION,
    Command,
    Outputs,
    as_records,
    clean_serial,
    clip,
    detect_cloud_sync,
    latest_past_date,
    load_json,
    make_applications,
    parse_mdatp_health,
    parse_timestamp,
    wifi_is_open,
)
from gateway.identity.posture import AntimalwareProduct, InstalledApplication, NetworkState, PostureReport

COMMANDS: tuple[Command, ...] = (
    Command(
        "hardware", ("system_profiler", "SPHardwareDataType", "SPSoftwareDataType", "SPBluetoothDataType", "-json"), 60
    ),
    Command("sw_vers", ("sw_vers",)),
    Command("install_history", ("system_profiler", "SPInstallHistoryDataType", "-json"), 120),
    Command("fdesetup", ("fdesetup", "status")),
    Command("firewall", ("/usr/libexec/ApplicationFirewall/socketfilterfw", "--getglobalstate")),
    Command("apps", ("system_profiler", "SPApplicationsDataType", "-json"), 180),
    Command("airport", ("system_profiler", "SPAirPortDataType", "-json"), 60),
    Command("default_route", ("route", "-n", "get", "default")),
    Command("hardware_ports", ("networksetup", "-listallhardwareports")),
    Command("mdatp", ("mdatp", "health")),
)


def _section(text: str | None, name: str) -> dict[str, Any] | None:
    """The first item of a system_profiler `-json` data type, e.g. SPHardwareDataType."""
    value = load_json(text)
    records = as_records(value.get(name)) if isinstance(value, dict) else None
    return records[0] if records else None


def parse_serial(hardware: str | None) -> str | None:
    """Serial number (G8) from SPHardwareDataType."""
    section = _section(hardware, "SPHardwareDataType")
    return clean_serial(section.get("serial_number")) if section else None


def parse_bluetooth(hardware: str | None) -> bool | None:
    """Bluetooth controller power (G9) from SPBluetoothDataType (macOS 12+ and the older layout)."""
    section = _section(hardware, "SPBluetoothDataType")
    if section is None:
        return None
    controller = section.get("controller_properties") or section.get("local_device_title")
    if not isinstance(controller, dict):
        return None
    state = controller.get("controller_state", controller.get("general_power"))
    return {"attrib_on": True, "attrib_off": False}.get(state) if isinstance(state, str) else None


def parse_os(sw_vers: str | None, hardware: str | None) -> tuple[str | None, str | None, str | None]:
    """(name, version, build) for the G8 ledger from `sw_vers`, else SPSoftwareDataType's 'macOS 14.5 (23F79)'."""
    fields: dict[str, str] = {}
    for line in (sw_vers or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    version, build = clip(fields.get("ProductVersion"), 100), clip(fields.get("BuildVersion"), 100)
    if version:
        return clip(f"{fields.get('ProductName', 'macOS')} {version}"), version, build
    section = _section(hardware, "SPSoftwareDataType")
    match = re.fullmatch(r"(.+?) (\d+(?:\.\d+)*) \((\w+)\)", str((section or {}).get("os_version", "")).strip())
    return (clip(f"{match[1]} {match[2]}"), match[2], match[3]) if match else (None, None, None)


_OS_UPDATE = re.compile(r"^(macOS|Mac OS X|OS X)\b|Security (Update|Response)|Background Security", re.IGNORECASE)


def parse_last_update(text: str | None, collected_at: datetime) -> date | None:
    """Date of the newest macOS update or security response (G7) from SPInstallHistoryDataType.

    Data-only updates (XProtect, MRT, Gatekeeper) and App Store apps do not count as OS updates.
    """
    value = load_json(text)
    records = as_records(value.get("SPInstallHistoryDataType")) if isinstance(value, dict) else None
    if records is None:
        return None
    dates = []
    for record in records:
        when = parse_timestamp(record.get("install_date"))
        if when is not None and _OS_UPDATE.search(str(record.get("_name", ""))):
            dates.append(when.date())
    return latest_past_date(dates, collected_at)


def parse_filevault(text: str | None) -> bool | None:
    """FileVault (G15) from `fdesetup status`: only a completed 'FileVault is On.' counts as encrypted."""
    if not text:
        return None
    if "in progress" in text or text.lstrip().startswith("FileVault is Off"):
        return False
    return True if text.lstrip().startswith("FileVault is On") else None


def parse_firewall(text: str | None) -> bool | None:
    """Application firewall (G7) from `socketfilterfw --getglobalstate` ('(State = 1)' or 'enabled')."""
    match = re.search(r"\(State = (\d)\)", text or "")
    if match:
        return match[1] != "0"
    if re.search(r"Firewall is (enabled|blocking)", text or ""):
        return True
    return False if "Firewall is disabled" in (text or "") else None


def parse_applications(text: str | None) -> list[InstalledApplication]:
    """Installed applications (G8) from SPApplicationsDataType; publisher from the code signature."""
    value = load_json(text)
    records = (as_records(value.get("SPApplicationsDataType")) if isinstance(value, dict) else None) or []
    return make_applications((r.get("_name"), r.get("version"), _publisher(r)) for r in records)


def _publisher(record: dict[str, Any]) -> str | None:
    """'Apple' for Apple's apps, else the developer of a Developer ID signature; App Store signatures name no one."""
    if record.get("obtained_from") == "apple":
        return "Apple"
    signed_by = record.get("signed_by")
    signer = signed_by[0] if isinstance(signed_by, list) and signed_by and isinstance(signed_by[0], str) else ""
    developer = re.fullmatch(r"Developer ID Application:\s*(.+?)(?:\s*\([A-Z0-9]{10}\))?", signer)
    return clip(developer[1]) if developer else None


def _airport_interfaces(text: str | None) -> list[dict[str, Any]] | None:
    value = load_json(text)
    records = as_records(value.get("SPAirPortDataType")) if isinstance(value, dict) else None
    if records is None:
        return None
    return [i for r in records for i in as_records(r.get("spairport_airport_interfaces")) or []]


def _current_network(interface: dict[str, Any]) -> dict[str, Any] | None:
    current = interface.get("spairport_current_network_information")
    return current if isinstance(current, dict) else None


def parse_network(airport: str | None, default_route: str | None, hardware_ports: str | None) -> NetworkState:
    """Wi-Fi network and security (G7) from SPAirPortDataType, else the kind of the default route's port."""
    for interface in _airport_interfaces(airport) or []:
        current = _current_network(interface)
        if current is None:
            continue
        raw = current.get("spairport_security_mode")
        mode = raw.removeprefix("spairport_security_mode_") if isinstance(raw, str) else ""
        security = {"none": "open", "": None}.get(mode, clip(mode.replace("_", "-"), 100))
        ssid = clip(current.get("_name"), 64)
        ssid = None if ssid == "<redacted>" else ssid  # macOS 14.4+ hides the SSID without location permission
        return NetworkState(kind="wifi", wifi_ssid=ssid, wifi_security=security, wifi_open=wifi_is_open(security))
    device = re.search(r"^\s*interface:\s*(\S+)\s*$", default_route or "", re.MULTILINE)
    if device is None:
        return NetworkState()
    ports = re.findall(r"Hardware Port:\s*(.+?)\s*\nDevice:\s*(\S+)", hardware_ports or "")
    port_of = {dev: port.strip() for port, dev in ports}
    port = port_of.get(device[1], "").lower()
    if "wi-fi" in port or "airport" in port:
        return NetworkState(kind="wifi")  # on Wi-Fi but SPAirPortDataType did not say which: security unknown
    if "iphone" in port or "ipad" in port or "wwan" in port:
        return NetworkState(kind="cellular")
    if any(word in port for word in ("ethernet", "thunderbolt", "lan")):
        return NetworkState(kind="wired")
    return NetworkState()


def parse_adhoc(airport: str | None) -> bool | None:
    """Ad-hoc (IBSS) Wi-Fi in use (G9) from SPAirPortDataType's current network type."""
    interfaces = _airport_interfaces(airport)
    if interfaces is None:
        return None
    types = [str((_current_network(i) or {}).get("spairport_network_type", "")) for i in interfaces]
    return any(kind.endswith(("_ibss", "_adhoc")) for kind in types)


def parse_antimalware(mdatp: str | None) -> list[AntimalwareProduct]:
    """Verifiable antimalware (G7): Microsoft Defender for Endpoint via `mdatp health`; XProtect is not reportable."""
    product = parse_mdatp_health(mdatp)
    return [product] if product else []


def build_report(outputs: Outputs, *, hostname: str | None, user: str | None, collected_at: datetime) -> PostureReport:
    """A PostureReport from the outputs of COMMANDS (key → stdout, None for a failed command)."""
    hardware = outputs.get("hardware")
    name, version, build = parse_os(outputs.get("sw_vers"), hardware)
    apps = parse_applications(outputs.get("apps"))
    return PostureReport(
        os_family="macos",
        os_name=name,
        os_version=version,
        os_build=build,
        serial_number=parse_serial(hardware),
        hostname=clip(hostname, 255),
        user=clip(user, 256),
        last_update=parse_last_update(outputs.get("install_history"), collected_at),
        antimalware=parse_antimalware(outputs.get("mdatp")),
        disk_encryption=parse_filevault(outputs.get("fdesetup")),
        firewall_enabled=parse_firewall(outputs.get("firewall")),
        bluetooth_enabled=parse_bluetooth(hardware),
        adhoc_wifi_enabled=parse_adhoc(outputs.get("airport")),
        network=parse_network(outputs.get("airport"), outputs.get("default_route"), outputs.get("hardware_ports")),
        removable_media_blocked=None,  # macOS has no built-in removable storage policy to read
        installed_applications=apps,
        cloud_sync_clients=detect_cloud_sync(app.name for app in apps),
        collected_at=collected_at,
        collector_version=COLLECTOR_VERSION,
    )
