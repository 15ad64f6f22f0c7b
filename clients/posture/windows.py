"""Windows posture (G7, G8, G9, G15): PowerShell commands with JSON output, and pure parsers of that output."""

from __future__ import annotations

import re
from datetime import date, datetime

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
    parse_timestamp,
    signatures_fresh,
    to_bool,
    wifi_is_open,
)
from gateway.identity.posture import AntimalwareProduct, InstalledApplication, NetworkState, PostureReport

# UTF-8 without BOM so Japanese output (netsh, product names) survives the pipe; errors end the command (rc 1).
_PREFIX = "$ErrorActionPreference = 'Stop'; [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false; "


def _ps(key: str, script: str, *, many: bool = False, timeout: float = 60.0) -> Command:
    """A PowerShell command; `many` wraps the pipeline so that none, one or several objects all give a JSON list."""
    body = f"ConvertTo-Json -Compress -InputObject @({script})" if many else script
    argv = ("powershell.exe", "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", _PREFIX + body)
    return Command(key, argv, timeout)


def _text(name: str) -> str:
    """A Select-Object property sending an enum or GpoBoolean as its name ('On', 'True') rather than a number."""
    return f"@{{n='{name}'; e={{ [string]$_.{name} }}}}"


_UNINSTALL = "Microsoft\\Windows\\CurrentVersion\\Uninstall\\*"
COMMANDS: tuple[Command, ...] = (
    _ps("bios", "Get-CimInstance Win32_BIOS | Select-Object SerialNumber | ConvertTo-Json"),
    _ps(
        "os",
        "$os = Get-CimInstance Win32_OperatingSystem; "
        "$cv = Get-ItemProperty 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion'; "
        "[pscustomobject]@{Caption = $os.Caption; Version = $os.Version; BuildNumber = $os.BuildNumber; "
        "UBR = $cv.UBR; DisplayVersion = $cv.DisplayVersion} | ConvertTo-Json",
    ),
    _ps(
        "hotfix",
        "Get-HotFix | Sort-Object InstalledOn | Select-Object HotFixID, Description, "
        "@{n='InstalledOn'; e={ if ($_.InstalledOn) { $_.InstalledOn.ToString('yyyy-MM-dd') } }}",
        many=True,
    ),
    _ps(
        "defender",
        "Get-MpComputerStatus | Select-Object AMServiceEnabled, AntivirusEnabled, RealTimeProtectionEnabled, "
        "AntivirusSignatureAge, "
        "@{n='AntivirusSignatureLastUpdated'; e={ $_.AntivirusSignatureLastUpdated.ToString('o') }} | ConvertTo-Json",
    ),
    _ps(
        "av_products",
        "Get-CimInstance -Namespace root/SecurityCenter2 -ClassName AntiVirusProduct | Select displayName,productState",
        many=True,
    ),
    _ps(
        "bitlocker",
        f"Get-BitLockerVolume -MountPoint $env:SystemDrive | Select-Object MountPoint, {_text('VolumeStatus')}, "
        f"{_text('ProtectionStatus')}, EncryptionPercentage | ConvertTo-Json",
    ),
    _ps("firewall", f"Get-NetFirewallProfile | Select-Object Name, {_text('Enabled')}", many=True),
    _ps(
        "bluetooth",
        "Get-PnpDevice -Class Bluetooth -PresentOnly -ErrorAction SilentlyContinue | Select FriendlyName, Status",
        many=True,
    ),
    _ps(
        "adapters",
        f"Get-NetAdapter -IncludeHidden | Select-Object Name, InterfaceDescription, {_text('Status')}, "
        f"{_text('PhysicalMediaType')}, HardwareInterface",
        many=True,
    ),
    _ps("wlan", "netsh.exe wlan show interfaces", timeout=30.0),
    _ps("hostednetwork", "netsh.exe wlan show hostednetwork", timeout=30.0),
    _ps(
        "apps",
        f"Get-ItemProperty 'HKLM:\\Software\\{_UNINSTALL}', 'HKLM:\\Software\\WOW6432Node\\{_UNINSTALL}', "
        f"'HKCU:\\Software\\{_UNINSTALL}' -ErrorAction SilentlyContinue "
        "| Where-Object DisplayName | Select-Object DisplayName, DisplayVersion, Publisher",
        many=True,
        timeout=120.0,
    ),
    _ps(
        "removable",
        "$k = 'HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices'; "
        "$v = if (Test-Path $k) { (Get-ItemProperty $k).Deny_All } else { $null }; "
        "ConvertTo-Json -InputObject @{Deny_All = $v}",
    ),
)


def parse_serial(text: str | None) -> str | None:
    """BIOS serial number (G8) from `Win32_BIOS`."""
    records = as_records(load_json(text))
    return clean_serial(records[0].get("SerialNumber")) if records else None


def parse_os(text: str | None) -> tuple[str | None, str | None, str | None]:
    """(name, version, build) for the G8 ledger; the build carries the update revision, e.g. '22631.4460'."""
    records = as_records(load_json(text))
    if not records:
        return None, None, None
    info = records[0]
    name, build, ubr = clip(info.get("Caption")), clip(info.get("BuildNumber"), 100), clip(info.get("UBR"), 20)
    if name and clip(info.get("DisplayVersion"), 20):
        name = clip(f"{name} {clip(info.get('DisplayVersion'), 20)}")
    if build and ubr and ubr.isdigit():
        build = clip(f"{build}.{ubr}", 100)
    return name, clip(info.get("Version"), 100), build


def parse_last_hotfix(text: str | None, collected_at: datetime) -> date | None:
    """Date of the newest installed update (G7) from `Get-HotFix`; undated or future-dated entries are ignored."""
    records = as_records(load_json(text))
    if records is None:
        return None
    dates = [parse_timestamp(record.get("InstalledOn")) for record in records]
    return latest_past_date((when.date() if when else None for when in dates), collected_at)


def decode_product_state(state: int) -> tuple[bool, bool]:
    """(enabled, up_to_date) from a SecurityCenter2 `productState`, e.g. 397568 = 0x061100 = on and up to date."""
    return (state >> 12) & 0xF == 1, (state >> 4) & 0xF == 0


def parse_antimalware(defender: str | None, products: str | None, collected_at: datetime) -> list[AntimalwareProduct]:
    """Antivirus products (G7) from SecurityCenter2, with Defender's own state from `Get-MpComputerStatus`."""
    mp = as_records(load_json(defender))
    mp_product = _defender_product(mp[0], collected_at) if mp else None
    result: list[AntimalwareProduct] = []
    for record in as_records(load_json(products)) or []:
        name, state = clip(record.get("displayName")), record.get("productState")
        if name is None:
            continue
        if mp_product is not None and "defender" in name.lower():
            result.append(mp_product.model_copy(update={"name": name}))
            mp_product = None
        elif isinstance(state, int) and not isinstance(state, bool):
            enabled, up_to_date = decode_product_state(state)
            result.append(AntimalwareProduct(name=name, enabled=enabled, up_to_date=up_to_date))
    if mp_product is not None:  # no Security Center (Windows Server) or Defender not listed there
        result.append(mp_product)
    return result


def _defender_product(status: dict[str, object], collected_at: datetime) -> AntimalwareProduct | None:
    av, realtime = to_bool(status.get("AntivirusEnabled")), to_bool(status.get("RealTimeProtectionEnabled"))
    if av is None or realtime is None:
        return None
    fresh = signatures_fresh(parse_timestamp(status.get("AntivirusSignatureLastUpdated")), collected_at)
    return AntimalwareProduct(name="Microsoft Defender Antivirus", enabled=av and realtime, up_to_date=fresh)


def parse_bitlocker(text: str | None) -> bool | None:
    """Whether BitLocker protects the system drive (G15); suspended protection ('Off') counts as not encrypted."""
    records = as_records(load_json(text))
    if not records:
        return None
    status = records[0].get("ProtectionStatus")
    return {"on": True, "1": True, "off": False, "0": False}.get(str(status).strip().lower())


def parse_firewall(text: str | None) -> bool | None:
    """True only when every firewall profile (Domain, Private, Public) is enabled (G7)."""
    records = as_records(load_json(text))
    if not records:
        return None
    states = [to_bool(record.get("Enabled")) for record in records]
    if False in states:
        return False
    return None if None in states else True


def parse_bluetooth(text: str | None) -> bool | None:
    """Bluetooth on (G9): a present Bluetooth device with Status OK; no Bluetooth device at all means off."""
    records = as_records(load_json(text))
    statuses = [str(record["Status"]).strip().upper() for record in records or [] if "Status" in record]
    if records is None or (records and not statuses):
        return None
    return "OK" in statuses


_WLAN_LINE = re.compile(r"^\s*(?P<label>[^:]+?)\s+:\s?(?P<value>.*)$")
_LABELS = {
    "ssid": "ssid",
    "authentication": "auth",
    "認証": "auth",
    "network type": "type",
    "ネットワークの種類": "type",
}
_AUTH_WORDS = {"オープン": "open", "パーソナル": "personal", "エンタープライズ": "enterprise"}


def parse_wlan_interfaces(text: str | None) -> list[dict[str, str]] | None:
    """Per interface: ssid, auth, type from `netsh wlan show interfaces` (English or Japanese); None if unreadable."""
    if not text or ":" not in text:
        return None
    interfaces: list[dict[str, str]] = []
    for line in text.splitlines():
        match = _WLAN_LINE.match(line)
        if not match:
            continue
        label, value = match["label"].strip().lower(), match["value"].strip()
        if label in ("name", "名前"):
            interfaces.append({})
        elif interfaces and label in _LABELS:
            interfaces[-1].setdefault(_LABELS[label], value)
    return interfaces


def normalise_auth(value: str | None) -> str | None:
    """'WPA2-Personal' → 'wpa2-personal', 'オープン' → 'open'; None when absent."""
    if not value:
        return None
    for word, english in _AUTH_WORDS.items():
        value = value.replace(word, english)
    return clip(value.strip().lower().replace(" ", "-"), 100)


def parse_network(adapters: str | None, wlan: str | None) -> NetworkState:
    """Connection kind and Wi-Fi security (G7) from `Get-NetAdapter` and `netsh wlan show interfaces`."""
    interfaces = parse_wlan_interfaces(wlan) or []
    connected = next((interface for interface in interfaces if interface.get("ssid")), None)
    if connected is not None:
        security = normalise_auth(connected.get("auth"))
        ssid = clip(connected["ssid"], 64)
        return NetworkState(kind="wifi", wifi_ssid=ssid, wifi_security=security, wifi_open=wifi_is_open(security))
    records = as_records(load_json(adapters))
    if records is None:
        return NetworkState()
    media = {
        str(record.get("PhysicalMediaType", "")).lower()
        for record in records
        if str(record.get("Status", "")).lower() == "up" and record.get("HardwareInterface") is True
    }
    if media & {"native 802.11", "wireless lan"}:
        return NetworkState(kind="wifi")  # connected to Wi-Fi but netsh did not say to which network: unknown
    if "802.3" in media:
        return NetworkState(kind="wired")
    if "wireless wan" in media:
        return NetworkState(kind="cellular")
    return NetworkState()


_HOSTED = re.compile(r"hosted network virtual adapter|wi-fi direct virtual adapter", re.IGNORECASE)


def parse_adhoc(adapters: str | None, hostednetwork: str | None, wlan: str | None) -> bool | None:
    """Ad-hoc / hosted Wi-Fi or Mobile Hotspot on (G9): an 'Up' hosted or Wi-Fi Direct adapter, or an ad-hoc link."""
    if hostednetwork and re.search(r"^\s*Status\s+:\s*Started\s*$", hostednetwork, re.IGNORECASE | re.MULTILINE):
        return True
    link_types = {interface.get("type", "").lower() for interface in parse_wlan_interfaces(wlan) or []}
    if link_types & {"adhoc", "ad hoc", "アドホック"}:
        return True
    records = as_records(load_json(adapters))
    described = [record for record in records or [] if isinstance(record.get("InterfaceDescription"), str)]
    if records is None or (records and not described):
        return None
    return any(
        _HOSTED.search(record["InterfaceDescription"]) and str(record.get("Status", "")).lower() == "up"
        for record in described
    )


def parse_applications(text: str | None) -> list[InstalledApplication]:
    """Installed programs (G8) from the Uninstall registry keys (machine, 32-bit and user)."""
    records = as_records(load_json(text)) or []
    return make_applications((r.get("DisplayName"), r.get("DisplayVersion"), r.get("Publisher")) for r in records)


def parse_removable(text: str | None) -> bool | None:
    """Whether Group Policy denies all removable storage (G15); no policy key means not blocked."""
    records = as_records(load_json(text))
    if not records or "Deny_All" not in records[0]:
        return None
    value = records[0]["Deny_All"]
    return False if value is None else to_bool(value)


def build_report(outputs: Outputs, *, hostname: str | None, user: str | None, collected_at: datetime) -> PostureReport:
    """A PostureReport from the outputs of COMMANDS (key → stdout, None for a failed command)."""
    name, version, build = parse_os(outputs.get("os"))
    apps = parse_applications(outputs.get("apps"))
    return PostureReport(
        os_family="windows",
        os_name=name,
        os_version=version,
        os_build=build,
        serial_number=parse_serial(outputs.get("bios")),
        hostname=clip(hostname, 255),
        user=clip(user, 256),
        last_update=parse_last_hotfix(outputs.get("hotfix"), collected_at),
        antimalware=parse_antimalware(outputs.get("defender"), outputs.get("av_products"), collected_at),
        disk_encryption=parse_bitlocker(outputs.get("bitlocker")),
        firewall_enabled=parse_firewall(outputs.get("firewall")),
        bluetooth_enabled=parse_bluetooth(outputs.get("bluetooth")),
        adhoc_wifi_enabled=parse_adhoc(outputs.get("adapters"), outputs.get("hostednetwork"), outputs.get("wlan")),
        network=parse_network(outputs.get("adapters"), outputs.get("wlan")),
        removable_media_blocked=parse_removable(outputs.get("removable")),
        installed_applications=apps,
        cloud_sync_clients=detect_cloud_sync(app.name for app in apps),
        collected_at=collected_at,
        collector_version=COLLECTOR_VERSION,
    )
