"""Windows collector: recorded PowerShell / netsh output parsed into a PostureReport (G7, G8, G9, G15)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from clients.posture import COLLECTOR_VERSION, windows
from gateway.identity.posture import NetworkState, PostureReport, evaluate_posture
from gateway.policy import PosturePolicy
from tests.identity.posture.samples import COLLECTED_AT, NOW, recorded, recorded_outputs


def _report(scenario: str, **overrides: str | None) -> PostureReport:
    outputs = recorded_outputs(f"windows/{scenario}", **overrides)
    return windows.build_report(outputs, hostname="CAD-PC-07", user="sato", collected_at=COLLECTED_AT)


def test_recorded_compliant_pc_is_parsed_into_every_field() -> None:
    report = _report("compliant")
    assert report.os_family == "windows"
    assert (report.os_name, report.os_version, report.os_build) == (
        "Microsoft Windows 11 Pro 23H2",
        "10.0.22631",
        "22631.4460",
    )
    assert report.serial_number == "5CD2417XQ8"
    assert (report.hostname, report.user) == ("CAD-PC-07", "sato")
    assert report.last_update == date(2026, 11, 11)
    assert [(p.name, p.enabled, p.up_to_date) for p in report.antimalware] == [("Windows Defender", True, True)]
    assert report.disk_encryption is True
    assert report.firewall_enabled is True
    assert report.bluetooth_enabled is False  # the adapter is present but disabled (Status Error)
    assert report.adhoc_wifi_enabled is False
    assert report.network == NetworkState(kind="wired")
    assert report.removable_media_blocked is True
    assert report.cloud_sync_clients == ["OneDrive"]
    assert report.collected_at == COLLECTED_AT
    assert report.collector_version == COLLECTOR_VERSION


def test_installed_applications_are_deduplicated_with_version_and_publisher() -> None:
    apps = _report("compliant").installed_applications
    assert len(apps) == 9  # the Visual C++ runtime is listed twice in the registry
    exocad = next(app for app in apps if app.name.startswith("exocad"))
    assert (exocad.version, exocad.publisher) == ("3.2.9158", "exocad GmbH")


def test_recorded_compliant_pc_passes_the_default_policy(policy: PosturePolicy) -> None:
    assert evaluate_posture(_report("compliant"), policy, NOW) == []


def test_recorded_pc_with_bluetooth_on_and_a_90_day_old_update_is_refused_for_both(policy: PosturePolicy) -> None:
    report = _report("bluetooth_stale")
    assert report.last_update == date(2026, 8, 27)
    assert report.bluetooth_enabled is True

    failures = {failure.rule: failure for failure in evaluate_posture(report, policy, NOW)}

    assert set(failures) == {"os-update-age", "bluetooth"}
    assert failures["os-update-age"].message == "last OS update 2026-08-27 is 90 days old; the policy allows 30"
    assert "90 days" in failures["os-update-age"].message
    assert failures["os-update-age"].requirement == "G7"
    assert "Bluetooth is on" in failures["bluetooth"].message
    assert failures["bluetooth"].requirement == "G9"


def test_dropbox_on_the_recorded_pc_fails_a_policy_that_forbids_it(policy: PosturePolicy) -> None:
    report = _report("bluetooth_stale")
    assert report.cloud_sync_clients == ["Dropbox"]  # VirtualBox is not mistaken for Box
    strict = policy.model_copy(update={"forbidden_cloud_sync": ("Dropbox",)})
    assert {f.rule for f in evaluate_posture(report, strict, NOW)} == {"os-update-age", "bluetooth", "cloud-sync"}


def test_japanese_netsh_output_on_open_wifi_is_understood(policy: PosturePolicy) -> None:
    report = _report("compliant", wlan=recorded("windows/wlan_open_ja.txt"))
    assert report.network == NetworkState(kind="wifi", wifi_ssid="Cafe_Free_WiFi", wifi_security="open", wifi_open=True)
    [failure] = evaluate_posture(report, policy, NOW)
    assert failure.rule == "open-wifi"
    assert "Cafe_Free_WiFi" in failure.message


def test_english_netsh_output_on_open_wifi_is_understood() -> None:
    network = windows.parse_network(None, recorded("windows/wlan_open_en.txt"))
    assert network == NetworkState(kind="wifi", wifi_ssid="Station-Free-WiFi", wifi_security="open", wifi_open=True)


def test_wpa2_personal_wifi_is_not_open() -> None:
    network = windows.parse_network(None, recorded("windows/wlan_wpa2_en.txt"))
    assert network == NetworkState(kind="wifi", wifi_ssid="LabNet-5G", wifi_security="wpa2-personal", wifi_open=False)


def test_wifi_adapter_up_but_netsh_denied_by_location_privacy_leaves_security_unknown() -> None:
    adapters = json.dumps(
        [{"InterfaceDescription": "Intel(R) Wi-Fi 6E AX211", "Status": "Up", "PhysicalMediaType": "Native 802.11",
          "HardwareInterface": True}]
    )  # fmt: skip
    network = windows.parse_network(adapters, recorded("windows/wlan_location_denied.txt"))
    assert network == NetworkState(kind="wifi", wifi_ssid=None, wifi_security=None, wifi_open=None)


def test_started_hosted_network_is_adhoc_wifi() -> None:
    report = _report("compliant", hostednetwork=recorded("windows/hostednetwork_started.txt"))
    assert report.adhoc_wifi_enabled is True


def test_mobile_hotspot_wifi_direct_adapter_up_is_adhoc_wifi() -> None:
    adapters = json.loads(recorded("windows/compliant/adapters.json"))
    adapters[2]["Status"] = "Up"
    assert windows.parse_adhoc(json.dumps(adapters), None, None) is True


@pytest.mark.parametrize(
    ("state", "enabled", "up_to_date"),
    [(397568, True, True), (393472, False, True), (397584, True, False), (266240, True, True), (262144, False, True)],
)
def test_security_center_product_state_is_decoded(state: int, enabled: bool, up_to_date: bool) -> None:
    assert windows.decode_product_state(state) == (enabled, up_to_date)


def test_third_party_antivirus_is_listed_beside_passive_defender() -> None:
    products = json.dumps([
        {"displayName": "Windows Defender", "productState": 393472},
        {"displayName": "ESET Security", "productState": 266240},
    ])  # fmt: skip
    defender = json.dumps({"AntivirusEnabled": False, "RealTimeProtectionEnabled": False,
                           "AntivirusSignatureLastUpdated": "2026-11-20T01:00:00.0000000+09:00"})  # fmt: skip
    parsed = windows.parse_antimalware(defender, products, COLLECTED_AT)
    assert [(p.name, p.enabled, p.up_to_date) for p in parsed] == [
        ("Windows Defender", False, True),
        ("ESET Security", True, True),
    ]


def test_defender_signatures_older_than_a_week_are_out_of_date() -> None:
    defender = json.dumps({"AntivirusEnabled": True, "RealTimeProtectionEnabled": True,
                           "AntivirusSignatureLastUpdated": "2026-11-10T09:00:00.0000000+09:00"})  # fmt: skip
    [product] = windows.parse_antimalware(defender, None, COLLECTED_AT)  # no Security Center (Windows Server)
    assert (product.name, product.enabled, product.up_to_date) == ("Microsoft Defender Antivirus", True, False)


def test_defender_with_powershell5_date_format_is_read() -> None:
    defender = json.dumps({"AntivirusEnabled": True, "RealTimeProtectionEnabled": True,
                           "AntivirusSignatureLastUpdated": "/Date(1795512000000)/"})  # 2026-11-24T09:20Z # fmt: skip
    [product] = windows.parse_antimalware(defender, "[]", COLLECTED_AT)
    assert product.up_to_date is True
    stale = defender.replace("1795512000000", "1794302400000")  # 2026-11-10T09:20Z
    assert windows.parse_antimalware(stale, "[]", COLLECTED_AT)[0].up_to_date is False


def test_hotfix_dates_after_the_collection_are_ignored_as_misparsed() -> None:
    hotfixes = json.dumps(
        [{"HotFixID": "KB1", "InstalledOn": "2026-11-03"}, {"HotFixID": "KB2", "InstalledOn": "2027-03-11"}]
    )
    assert windows.parse_last_hotfix(hotfixes, COLLECTED_AT) == date(2026, 11, 3)


def test_hotfix_list_without_any_date_gives_unknown() -> None:
    assert windows.parse_last_hotfix('[{"HotFixID": "KB1", "InstalledOn": null}]', COLLECTED_AT) is None


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        ([{"Name": "Domain", "Enabled": "True"}, {"Name": "Public", "Enabled": "False"}], False),
        ({"Name": "Public", "Enabled": "True"}, True),  # ConvertTo-Json sends a single object bare
        ([{"Name": "Domain", "Enabled": "NotConfigured"}, {"Name": "Public", "Enabled": "True"}], None),
    ],
)
def test_firewall_is_on_only_when_every_profile_is(profiles: object, expected: bool | None) -> None:
    assert windows.parse_firewall(json.dumps(profiles)) is expected


@pytest.mark.parametrize(
    ("status", "expected"), [("On", True), ("Off", False), (1, True), (0, False), ("Unknown", None)]
)
def test_bitlocker_protection_status(status: object, expected: bool | None) -> None:
    output = json.dumps({"MountPoint": "C:", "VolumeStatus": "FullyEncrypted", "ProtectionStatus": status})
    assert windows.parse_bitlocker(output) is expected


def test_no_bluetooth_hardware_means_bluetooth_off() -> None:
    assert windows.parse_bluetooth("[]") is False


@pytest.mark.parametrize(("output", "expected"), [('{"Deny_All": 1}', True), ('{"Deny_All": 0}', False),
                                                   ('{"Deny_All": null}', False), ("", None)])  # fmt: skip
def test_removable_storage_policy(output: str, expected: bool | None) -> None:
    assert windows.parse_removable(output) is expected


@pytest.mark.parametrize(
    "placeholder", ["To be filled by O.E.M.", "Default string", "0", "   ", "System Serial Number"]
)
def test_firmware_placeholder_serial_numbers_are_unknown(placeholder: str) -> None:
    assert windows.parse_serial(json.dumps({"SerialNumber": placeholder})) is None


def test_every_command_runs_powershell_with_a_timeout_and_a_unique_key() -> None:
    keys = [command.key for command in windows.COMMANDS]
    assert len(keys) == len(set(keys))
    for command in windows.COMMANDS:
        assert command.argv[0] == "powershell.exe"
        assert command.timeout > 0
    assert any("Get-HotFix" in command.argv[-1] for command in windows.COMMANDS)
