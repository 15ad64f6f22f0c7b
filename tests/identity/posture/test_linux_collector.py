"""Linux collector: recorded tool output parsed into a PostureReport (G7, G8, G9, G15)."""

from __future__ import annotations

import json
from datetime import date

import pytest

from clients.posture import linux
from gateway.identity.posture import NetworkState, PostureReport, evaluate_posture
from gateway.policy import PosturePolicy
from tests.identity.posture.samples import COLLECTED_AT, NOW, recorded, recorded_outputs


def _report(**overrides: str | None) -> PostureReport:
    outputs = recorded_outputs("linux/workstation", **overrides)
    return linux.build_report(outputs, hostname="kenji-thinkpad", user="kenji", collected_at=COLLECTED_AT)


def test_recorded_workstation_is_parsed_into_every_field() -> None:
    report = _report()
    assert report.os_family == "linux"
    assert (report.os_name, report.os_version, report.os_build) == ("Ubuntu 24.04.3 LTS", "24.04", "6.8.0-88-generic")
    assert report.serial_number is None  # /sys/class/dmi/id/product_serial is readable by root only
    assert report.last_update == date(2026, 11, 19)  # the unattended upgrade, not the later plain install
    assert [(p.name, p.enabled, p.up_to_date) for p in report.antimalware] == [("ClamAV 1.4.3", True, True)]
    assert report.disk_encryption is True  # / is on LVM inside LUKS
    assert report.firewall_enabled is True
    assert report.bluetooth_enabled is False  # soft-blocked by rfkill
    assert report.adhoc_wifi_enabled is False
    assert report.network == NetworkState(
        kind="wifi", wifi_ssid="LabNet-5G", wifi_security="wpa2-personal", wifi_open=False
    )
    assert report.removable_media_blocked is True
    assert report.cloud_sync_clients == ["Dropbox"]
    assert len(report.installed_applications) == 8
    assert report.installed_applications[0].publisher == "Ubuntu Core Developers"


def test_recorded_workstation_passes_the_default_policy(policy: PosturePolicy) -> None:
    assert evaluate_posture(_report(), policy, NOW) == []


def test_active_open_network_in_nmcli_fails(policy: PosturePolicy) -> None:
    wifi = "no:LabNet-5G:WPA2\nyes:FREE_Wi-Fi_Kyoto:\n"
    report = _report(nmcli_wifi=wifi)
    assert report.network == NetworkState(
        kind="wifi", wifi_ssid="FREE_Wi-Fi_Kyoto", wifi_security="open", wifi_open=True
    )
    assert [f.rule for f in evaluate_posture(report, policy, NOW)] == ["open-wifi"]


def test_escaped_colons_in_nmcli_ssids_are_kept() -> None:
    network = linux.parse_network("yes:DIRECT-7C-Brother MFC\\:L2750:WPA2 802.1X\n", None)
    assert (network.wifi_ssid, network.wifi_security, network.wifi_open) == (
        "DIRECT-7C-Brother MFC:L2750",
        "wpa2-enterprise",
        False,
    )


@pytest.mark.parametrize(("devices", "kind"), [("ethernet:connected\nwifi:disconnected\n", "wired"),
                                               ("gsm:connected\n", "cellular"), ("", "unknown")])  # fmt: skip
def test_connection_kind_without_an_active_wifi_network(devices: str, kind: str) -> None:
    assert linux.parse_network("", devices).kind == kind


def test_dnf_history_upgrades_give_the_last_update() -> None:
    assert linux.parse_last_update(None, recorded("linux/dnf_history.txt"), COLLECTED_AT) == date(2026, 11, 9)


def test_apt_history_without_upgrades_gives_unknown() -> None:
    installs_only = "Start-Date: 2026-11-23  07:02:17\nInstall: vlc:amd64 (3.0.20-3build6)\nEnd-Date: 2026-11-23\n"
    assert linux.parse_last_update(installs_only, None, COLLECTED_AT) is None


def test_unencrypted_root_filesystem_is_reported() -> None:
    lsblk = {"blockdevices": [{"name": "sda", "type": "disk", "fstype": None, "mountpoint": None, "children": [
        {"name": "sda1", "type": "part", "fstype": "vfat", "mountpoint": "/boot/efi"},
        {"name": "sda2", "type": "part", "fstype": "ext4", "mountpoint": "/"}]}]}  # fmt: skip
    assert linux.parse_disk_encryption(json.dumps(lsblk)) is False


def test_root_filesystem_not_found_in_lsblk_is_unknown() -> None:
    lsblk = {"blockdevices": [{"name": "sda", "type": "disk", "mountpoints": ["/data"]}]}
    assert linux.parse_disk_encryption(json.dumps(lsblk)) is None


@pytest.mark.parametrize(
    ("ufw", "firewalld", "nft", "expected"),
    [
        (None, "running\n", None, True),
        (None, "not running\n", None, False),
        ("Status: inactive\n", None, None, False),
        ("ERROR: You need to be root to run this script\n", None, None, None),
        (None, None, "nft_drop.json", True),
        (None, None, "nft_docker_only.json", False),
        ("Status: inactive\n", None, "nft_drop.json", True),
        (None, None, '{"nftables": [{"metainfo": {"version": "1.0.9"}}]}', None),
    ],
)
def test_firewall_state_from_ufw_firewalld_or_nftables(
    ufw: str | None, firewalld: str | None, nft: str | None, expected: bool | None
) -> None:
    nft_output = recorded(f"linux/{nft}") if nft and nft.endswith(".json") else nft
    assert linux.parse_firewall(ufw, firewalld, nft_output) is expected


def test_unblocked_bluetooth_radio_in_legacy_rfkill_output_is_on() -> None:
    assert linux.parse_bluetooth(recorded("linux/rfkill_legacy_on.json"), None) is True


def test_unblocked_radio_with_the_controller_powered_off_is_off() -> None:
    assert linux.parse_bluetooth(recorded("linux/rfkill_legacy_on.json"), "Controller 00:11\n\tPowered: no\n") is False


def test_no_bluetooth_radio_means_bluetooth_off() -> None:
    assert linux.parse_bluetooth('{"rfkilldevices": [{"type": "wlan", "soft": "unblocked"}]}', None) is False
    assert linux.parse_bluetooth(None, "No default controller available\n") is False


@pytest.mark.parametrize(
    ("iw", "expected"),
    [("", False), ("phy#0\n\tInterface wlan0\n\t\ttype AP\n", True),
     ("phy#0\n\tInterface wlan0\n\t\ttype IBSS\n", True), ("command failed: No such device (-19)\n", None),
     (None, None)],
)  # fmt: skip
def test_adhoc_or_access_point_mode_from_iw(iw: str | None, expected: bool | None) -> None:
    assert linux.parse_adhoc(iw) is expected


def test_clamav_with_old_signatures_and_a_stopped_daemon() -> None:
    [clamav] = linux.parse_antimalware(
        "ClamAV 1.0.5/27345/Wed Jul 24 10:24:35 2026\n", "inactive\n", None, COLLECTED_AT
    )
    assert (clamav.name, clamav.enabled, clamav.up_to_date) == ("ClamAV 1.0.5", False, False)


def test_clamav_without_a_signature_database_has_unknown_signatures() -> None:
    [clamav] = linux.parse_antimalware("ClamAV 1.4.3\n", "active\n", None, COLLECTED_AT)
    assert clamav.up_to_date is None


def test_defender_for_endpoint_is_read_from_mdatp_health() -> None:
    [defender] = linux.parse_antimalware(None, None, recorded("macos/compliant/mdatp.txt"), COLLECTED_AT)
    assert (defender.name, defender.enabled, defender.up_to_date) == ("Microsoft Defender for Endpoint", True, True)


def test_modprobe_config_without_a_usb_storage_block_is_not_blocked() -> None:
    assert linux.parse_removable("blacklist pcspkr\nalias usb:v0BDAp8153* r8152\n") is False


def test_every_command_has_a_timeout_and_a_unique_key() -> None:
    keys = [command.key for command in linux.COMMANDS]
    assert len(keys) == len(set(keys))
    assert all(command.timeout > 0 for command in linux.COMMANDS)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("PF3KX9ZB\n", "PF3KX9ZB"),
        (
            "VMware-56 4d 2a 1c 7e 90 3b 11-8f 02 6a 5c 0d 44 19 e2\n",
            "VMware-56 4d 2a 1c 7e 90 3b 11-8f 02 6a 5c 0d 44 19 e2",
        ),
        ("To Be Filled By O.E.M.\n", None),
        ("Not Specified\n", None),
        ("PF3K\nX9ZB\n", None),
        ('{"serial": 1}', None),
        ("\x00\x00\x00\n", None),
    ],
)
def test_dmi_serial_must_be_one_plain_line(content: str, expected: str | None) -> None:
    report = _report(serial=content)
    assert report.serial_number == expected


@pytest.mark.parametrize("uname", ["uname: illegal option\n", "", "{", "6\n"])
def test_kernel_release_that_is_not_a_version_is_unknown(uname: str) -> None:
    assert linux.parse_os_release(None, uname)[2] is None
