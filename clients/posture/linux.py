"""Linux posture (G7, G8, G9, G15): standard tools and files, and pure parsers of their output."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
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
    signatures_fresh,
    wifi_is_open,
)
from gateway.identity.posture import AntimalwareProduct, InstalledApplication, NetworkState, PostureReport

COMMANDS: tuple[Command, ...] = (
    Command("os_release", ("cat", "/etc/os-release")),
    Command("uname", ("uname", "-r")),
    Command("serial", ("cat", "/sys/class/dmi/id/product_serial")),  # readable by root only on most distributions
    Command("apt_history", ("cat", "/var/log/apt/history.log", "/var/log/apt/history.log.1"), 30, frozenset({0, 1})),
    Command("dnf_history", ("dnf", "history", "list"), 60),
    Command("lsblk", ("lsblk", "-J", "-o", "NAME,TYPE,FSTYPE,MOUNTPOINT")),
    Command("nmcli_wifi", ("nmcli", "-t", "-f", "ACTIVE,SSID,SECURITY", "device", "wifi", "list", "--rescan", "no")),
    Command("nmcli_devices", ("nmcli", "-t", "-f", "TYPE,STATE", "device")),
    Command("iw", ("iw", "dev")),
    Command("rfkill", ("rfkill", "-J")),
    Command("bluetoothctl", ("bluetoothctl", "show"), 15),
    Command("ufw", ("ufw", "status")),
    Command("firewalld", ("firewall-cmd", "--state"), 15, frozenset({0, 252})),
    Command("nft", ("nft", "-j", "list", "ruleset")),
    Command("clamscan", ("clamscan", "--version")),
    Command("clamd", ("systemctl", "is-active", "clamav-daemon"), 15, frozenset({0, 3, 4})),
    Command("mdatp", ("mdatp", "health")),
    Command("dpkg", ("dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Maintainer}\n"), 60),
    Command("rpm", ("rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{VENDOR}\n"), 60),
    Command("modprobe", ("modprobe", "-c"), 30),
)


def parse_os_release(text: str | None, uname: str | None) -> tuple[str | None, str | None, str | None]:
    """(name, version, build) for the G8 ledger: PRETTY_NAME, VERSION_ID and the running kernel release."""
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Z_]+", key.strip()):
            fields[key.strip()] = value.strip().strip("\"'")
    release = re.fullmatch(r"\s*(\d+\.\d+[\w.+~-]*)\s*", uname or "")
    kernel = clip(release[1], 100) if release else None
    return clip(fields.get("PRETTY_NAME") or fields.get("NAME")), clip(fields.get("VERSION_ID"), 100), kernel


def parse_last_update(apt_history: str | None, dnf_history: str | None, collected_at: datetime) -> date | None:
    """Newest package upgrade (G7): apt history entries with an 'Upgrade:' line, or dnf transactions with U/Upgrade."""
    dates: list[date | None] = []
    for entry in re.split(r"\n\s*\n", apt_history or ""):
        start = re.search(r"^Start-Date:\s*(\d{4}-\d{2}-\d{2})", entry, re.MULTILINE)
        if start and re.search(r"^Upgrade:", entry, re.MULTILINE):
            dates.append(_iso_date(start[1]))
    for line in (dnf_history or "").splitlines():
        columns = [column.strip() for column in line.split("|")]
        if len(columns) >= 4 and re.search(r"\bU\b|Upgrade", columns[3]):
            dates.append(_iso_date(columns[2][:10]))
    return latest_past_date(dates, collected_at)


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_disk_encryption(text: str | None) -> bool | None:
    """Whether the root filesystem sits on a LUKS / dm-crypt device (G15) from `lsblk -J`."""
    value = load_json(text)
    devices = as_records(value.get("blockdevices")) if isinstance(value, dict) else None
    if devices is None:
        return None
    return _root_encrypted(devices, encrypted=False)


def _root_encrypted(devices: list[dict[str, Any]], *, encrypted: bool) -> bool | None:
    for device in devices:
        here = encrypted or device.get("type") == "crypt" or device.get("fstype") == "crypto_LUKS"
        mounts = (
            device.get("mountpoints") if isinstance(device.get("mountpoints"), list) else [device.get("mountpoint")]
        )
        if "/" in mounts:
            return here
        found = _root_encrypted(as_records(device.get("children")) or [], encrypted=here)
        if found is not None:
            return found
    return None


def _nmcli_fields(line: str) -> list[str]:
    """nmcli terse fields: ':' separates, '\\:' and '\\\\' are escapes."""
    return [field.replace("\\:", ":").replace("\\\\", "\\") for field in re.split(r"(?<!\\):", line)]


def normalise_security(value: str) -> str:
    """nmcli SECURITY ('WPA2', 'WPA2 802.1X', '' for none) → 'wpa2-personal', 'wpa2-enterprise', 'open'."""
    words = value.upper().split()
    if not words or words == ["--"]:
        return "open"
    kind = "enterprise" if "802.1X" in words else "personal"
    for version in ("WPA3", "WPA2", "WPA1"):
        if version in words:
            return f"{version.lower().replace('wpa1', 'wpa')}-{kind}"
    return "owe" if "OWE" in words else "-".join(words).lower()


def parse_network(nmcli_wifi: str | None, nmcli_devices: str | None) -> NetworkState:
    """Active Wi-Fi network and security (G7) from nmcli, else the kind of a connected device."""
    for line in (nmcli_wifi or "").splitlines():
        fields = _nmcli_fields(line)
        if len(fields) == 3 and fields[0] == "yes":
            security = clip(normalise_security(fields[2]), 100)
            return NetworkState(
                kind="wifi", wifi_ssid=clip(fields[1], 64), wifi_security=security, wifi_open=wifi_is_open(security)
            )
    connected = {
        fields[0] for fields in map(_nmcli_fields, (nmcli_devices or "").splitlines()) if fields[-1] == "connected"
    }
    if "wifi" in connected:
        return NetworkState(kind="wifi")  # connected to Wi-Fi but the network list did not say which: unknown
    if "ethernet" in connected:
        return NetworkState(kind="wired")
    if "gsm" in connected or "cdma" in connected:
        return NetworkState(kind="cellular")
    return NetworkState()


def parse_adhoc(iw: str | None) -> bool | None:
    """Ad-hoc, access-point or Wi-Fi Direct mode on any interface (G9) from `iw dev`; no interface means off."""
    if iw is None or (iw.strip() and not re.search(r"^\s*Interface\s", iw, re.MULTILINE)):
        return None  # empty output means no wireless interface; anything else must list interfaces
    modes = re.findall(r"^\s*type\s+(.+?)\s*$", iw, re.MULTILINE)
    return any(mode.lower() in ("ibss", "ap", "p2p-go", "mesh point") for mode in modes)


def parse_bluetooth(rfkill: str | None, bluetoothctl: str | None) -> bool | None:
    """Bluetooth on (G9): not rfkill-blocked and the controller powered; no Bluetooth radio means off."""
    value = load_json(rfkill)
    radios = None
    if isinstance(value, dict):  # util-linux names the list "" (older) or "rfkilldevices"
        lists = [as_records(items) or [] for items in value.values() if isinstance(items, list)]
        radios = [radio for found in lists for radio in found if radio.get("type") == "bluetooth"] if lists else None
    if radios is not None and not any(r.get("soft") == "unblocked" and r.get("hard") == "unblocked" for r in radios):
        return False
    powered = re.search(r"^\s*Powered:\s*(yes|no)\s*$", bluetoothctl or "", re.MULTILINE)
    if powered:
        return powered[1] == "yes"
    if bluetoothctl and "No default controller available" in bluetoothctl:
        return False
    return None if radios is None else True


def parse_firewall(ufw: str | None, firewalld: str | None, nft: str | None) -> bool | None:
    """Host firewall on (G7): ufw active, firewalld running, or an nftables input chain that drops or rejects."""
    ufw_status = re.search(r"^Status:\s*(\w+)", ufw or "", re.MULTILINE)
    states = [
        {"active": True, "inactive": False}.get(ufw_status[1]) if ufw_status else None,
        {"running": True, "not running": False}.get((firewalld or "").strip()),
        _nft_filters_input(nft),
    ]
    if True in states:
        return True
    return False if False in states else None


def _nft_filters_input(text: str | None) -> bool | None:
    """True if an input-hook chain drops by policy or has a drop/reject rule; None for an empty or unreadable set."""
    value = load_json(text)
    items = as_records(value.get("nftables")) if isinstance(value, dict) else None
    chains = [c for item in items or [] if isinstance(c := item.get("chain"), dict) and c.get("hook") == "input"]
    if not chains:
        return None
    if any(chain.get("policy") == "drop" for chain in chains):
        return True
    names = {(c.get("family"), c.get("table"), c.get("name")) for c in chains}
    rules = [r for item in items or [] if isinstance(r := item.get("rule"), dict)]
    return any(
        (rule.get("family"), rule.get("table"), rule.get("chain")) in names
        and any(isinstance(e, dict) and ("drop" in e or "reject" in e) for e in rule.get("expr") or [])
        for rule in rules
    )


def parse_antimalware(
    clamscan: str | None, clamd: str | None, mdatp: str | None, collected_at: datetime
) -> list[AntimalwareProduct]:
    """ClamAV (daemon running = enabled; signature date from `clamscan --version`) and Defender for Endpoint (G7)."""
    products = []
    match = re.match(r"ClamAV ([\w.\-]+)(?:/(\d+)/(.+))?", (clamscan or "").strip())
    if match:
        enabled = (clamd or "").strip() == "active"  # an unknown daemon state counts as not enabled
        fresh = signatures_fresh(_clamav_signed(match[3]), collected_at)
        products.append(AntimalwareProduct(name=f"ClamAV {match[1]}", enabled=enabled, up_to_date=fresh))
    defender = parse_mdatp_health(mdatp)
    return [*products, defender] if defender else products


def _clamav_signed(text: str | None) -> datetime | None:
    """The signature database date ClamAV prints in C `ctime` form, e.g. 'Tue Nov 24 09:41:07 2026' (taken as UTC)."""
    try:
        return datetime.strptime(text.strip(), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC) if text else None
    except ValueError:
        return None


def parse_removable(modprobe: str | None) -> bool | None:
    """USB storage blocked (G15): `usb_storage` blacklisted or installed as /bin/true|false in the modprobe config."""
    if not modprobe or not re.search(r"^(alias|options|blacklist|install|softdep)\s", modprobe, re.MULTILINE):
        return None  # not a modprobe configuration dump
    blocked = r"^\s*(blacklist\s+usb[_-]storage|install\s+usb[_-]storage\s+\S*/(true|false))\b"
    return re.search(blocked, modprobe, re.MULTILINE) is not None


def parse_applications(dpkg: str | None, rpm: str | None) -> list[InstalledApplication]:
    """Installed packages (G8) from dpkg or rpm: name, version and maintainer/vendor (e-mail dropped)."""
    rows = [line.split("\t") for text in (dpkg, rpm) for line in (text or "").splitlines()]
    return make_applications(
        (row[0], row[1], re.sub(r"\s*<[^>]*>", "", row[2]) if row[2] != "(none)" else None)
        for row in rows
        if len(row) == 3
    )


def build_report(outputs: Outputs, *, hostname: str | None, user: str | None, collected_at: datetime) -> PostureReport:
    """A PostureReport from the outputs of COMMANDS (key → stdout, None for a failed command)."""
    name, version, build = parse_os_release(outputs.get("os_release"), outputs.get("uname"))
    apps = parse_applications(outputs.get("dpkg"), outputs.get("rpm"))
    return PostureReport(
        os_family="linux",
        os_name=name,
        os_version=version,
        os_build=build,
        serial_number=clean_serial(outputs.get("serial")),
        hostname=clip(hostname, 255),
        user=clip(user, 256),
        last_update=parse_last_update(outputs.get("apt_history"), outputs.get("dnf_history"), collected_at),
        antimalware=parse_antimalware(
            outputs.get("clamscan"), outputs.get("clamd"), outputs.get("mdatp"), collected_at
        ),
        disk_encryption=parse_disk_encryption(outputs.get("lsblk")),
        firewall_enabled=parse_firewall(outputs.get("ufw"), outputs.get("firewalld"), outputs.get("nft")),
        bluetooth_enabled=parse_bluetooth(outputs.get("rfkill"), outputs.get("bluetoothctl")),
        adhoc_wifi_enabled=parse_adhoc(outputs.get("iw")),
        network=parse_network(outputs.get("nmcli_wifi"), outputs.get("nmcli_devices")),
        removable_media_blocked=parse_removable(outputs.get("modprobe")),
        installed_applications=apps,
        cloud_sync_clients=detect_cloud_sync(app.name for app in apps),
        collected_at=collected_at,
        collector_version=COLLECTOR_VERSION,
    )
