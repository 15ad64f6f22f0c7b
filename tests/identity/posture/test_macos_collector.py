"""macOS collector: recorded system_profiler and tool output parsed into a PostureReport (G7, G8, G9, G15)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from clients.posture import macos
from gateway.identity.posture import NetworkState, PostureReport, evaluate_posture
from gateway.policy import PosturePolicy
from tests.identity.posture.samples import COLLECTED_AT, NOW, recorded, recorded_outputs


def _report(**overrides: str | None) -> PostureReport:
    outputs = recorded_outputs("macos/compliant", **overrides)
    return macos.build_report(outputs, hostname="lab-mac-studio", user="yuki", collected_at=COLLECTED_AT)


def test_recorded_mac_is_parsed_into_every_field() -> None:
    report = _report()
    assert report.os_family == "macos"
    assert (report.os_name, report.os_version, report.os_build) == ("macOS 26.1", "26.1", "25B78")
    assert report.serial_number == "V4K2QX7JWD"
    assert report.last_update == date(2026, 11, 6)  # the macOS update, not the later XProtect/MRT data or an app
    assert [(p.name, p.enabled, p.up_to_date) for p in report.antimalware] == [
        ("Microsoft Defender for Endpoint", True, True)
    ]
    assert report.disk_encryption is True
    assert report.firewall_enabled is True
    assert report.bluetooth_enabled is False
    assert report.adhoc_wifi_enabled is False
    assert report.network == NetworkState(kind="wired")  # default route on en0, the Ethernet port
    assert report.removable_media_blocked is None  # macOS has no built-in policy to read
    assert report.cloud_sync_clients == ["Google Drive"]


def test_mac_applications_carry_the_signing_developer_as_publisher() -> None:
    apps = {app.name: app for app in _report().installed_applications}
    assert len(apps) == 5
    assert (apps["exocad DentalCAD"].version, apps["exocad DentalCAD"].publisher) == ("3.2.9158", "exocad GmbH")
    assert apps["Safari"].publisher == "Apple"


def test_recorded_mac_passes_the_default_policy(policy: PosturePolicy) -> None:
    assert evaluate_posture(_report(), policy, NOW) == []


def test_mac_on_open_wifi_with_a_redacted_ssid_fails(policy: PosturePolicy) -> None:
    report = _report(airport=recorded("macos/airport_open.json"))
    assert report.network == NetworkState(kind="wifi", wifi_ssid=None, wifi_security="open", wifi_open=True)
    assert [f.rule for f in evaluate_posture(report, policy, NOW)] == ["open-wifi"]


def test_mac_on_wpa2_wifi_is_not_open() -> None:
    network = macos.parse_network(recorded("macos/airport_wpa2.json"), None, None)
    assert network == NetworkState(kind="wifi", wifi_ssid="LabNet-5G", wifi_security="wpa2-personal", wifi_open=False)


def test_mac_in_an_ibss_network_has_adhoc_wifi_on() -> None:
    assert macos.parse_adhoc(recorded("macos/airport_ibss.json")) is True


def test_default_route_over_wifi_without_airport_details_leaves_security_unknown() -> None:
    route = recorded("macos/compliant/default_route.txt").replace("interface: en0", "interface: en1")
    network = macos.parse_network(None, route, recorded("macos/compliant/hardware_ports.txt"))
    assert network == NetworkState(kind="wifi")


def test_bluetooth_on_is_read_from_the_controller_state() -> None:
    hardware = recorded("macos/compliant/hardware.json").replace(
        '"controller_state" : "attrib_off"', '"controller_state" : "attrib_on"'
    )
    assert macos.parse_bluetooth(hardware) is True


def test_bluetooth_state_in_the_pre_monterey_layout_is_read() -> None:
    old = json.dumps({"SPBluetoothDataType": [{"local_device_title": {"general_power": "attrib_on"}}]})
    assert macos.parse_bluetooth(old) is True


def test_os_version_falls_back_to_system_profiler_when_sw_vers_fails() -> None:
    assert macos.parse_os(None, recorded("macos/compliant/hardware.json")) == ("macOS 26.1", "26.1", "25B78")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("FileVault is On.\n", True),
        ("FileVault is Off.\n", False),
        ("FileVault is Off, but will be enabled after the next restart.\n", False),
        ("FileVault is On.\nEncryption in progress: Percent completed = 42.7\n", False),
        ("Error: fdesetup must be run as root\n", None),
        ("", None),
    ],
)
def test_filevault_status(output: str, expected: bool | None) -> None:
    assert macos.parse_filevault(output) is expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Firewall is enabled. (State = 1)\n", True),
        ("Firewall is blocking all non-essential incoming connections. (State = 2)\n", True),
        ("Firewall is disabled. (State = 0)\n", False),
        ("Firewall is enabled.\n", True),
        ("zsh: permission denied\n", None),
    ],
)
def test_application_firewall_state(output: str, expected: bool | None) -> None:
    assert macos.parse_firewall(output) is expected


def test_install_history_with_only_security_data_updates_gives_unknown() -> None:
    history = json.dumps(
        {"SPInstallHistoryDataType": [{"_name": "XProtectPlistConfigData", "install_date": "2026-11-20T18:03:10Z"}]}
    )
    assert macos.parse_last_update(history, COLLECTED_AT) is None


def test_every_command_has_a_timeout_and_a_unique_key() -> None:
    keys = [command.key for command in macos.COMMANDS]
    assert len(keys) == len(set(keys))
    assert all(command.timeout > 0 for command in macos.COMMANDS)
