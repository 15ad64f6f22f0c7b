"""Missing, garbled or type-confused command output leaves fields unknown (None): never a crash, never a guess."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from clients.posture import linux, macos, windows
from gateway.identity.posture import PostureReport, evaluate_posture
from gateway.policy import PosturePolicy
from tests.identity.posture.samples import COLLECTED_AT, NOW, recorded_outputs

COLLECTORS = [pytest.param(windows, id="windows"), pytest.param(macos, id="macos"), pytest.param(linux, id="linux")]
SCENARIOS = {windows: "windows/compliant", macos: "macos/compliant", linux: "linux/workstation"}
STATE_FIELDS = (
    "disk_encryption",
    "firewall_enabled",
    "bluetooth_enabled",
    "adhoc_wifi_enabled",
    "removable_media_blocked",
    "last_update",
    "serial_number",
    "os_name",
    "os_version",
    "os_build",
)
TEXT_GARBAGE = [
    "garbage \x00\ufffd\ufffd output",
    "Access is denied.\r\n",
    "The term 'Get-MpComputerStatus' is not recognized as the name of a cmdlet",
    "{",
    '{"unterminated": [1, 2',
    "[" * 5000 + "]" * 5000,
]
JSON_GARBAGE = ["{}", "[]", "null", "42", "true", '"text"', "[1, 2, 3]", '[{"a": {"b": [null]}}]']
WEIRD_VALUES: list[Any] = [None, 5, -1.5, True, "x", [], {}, [None], {"a": None}, "9" * 400]
KNOWN_KEYS = [
    "SerialNumber", "Caption", "Version", "BuildNumber", "UBR", "DisplayVersion", "InstalledOn", "AntivirusEnabled",
    "RealTimeProtectionEnabled", "AntivirusSignatureLastUpdated", "displayName", "productState", "ProtectionStatus",
    "Enabled", "Status", "InterfaceDescription", "PhysicalMediaType", "HardwareInterface", "DisplayName",
    "DisplayVersion", "Publisher", "Deny_All", "serial_number", "controller_properties", "local_device_title",
    "controller_state", "os_version", "_name", "install_date", "version", "signed_by", "obtained_from",
    "spairport_airport_interfaces", "spairport_current_network_information", "spairport_security_mode",
    "spairport_network_type", "blockdevices", "children", "type", "fstype", "mountpoint", "mountpoints",
    "rfkilldevices", "", "soft", "hard", "nftables", "chain", "rule", "hook", "policy", "expr", "family", "table",
]  # fmt: skip
SECTIONS = ["SPHardwareDataType", "SPSoftwareDataType", "SPBluetoothDataType", "SPInstallHistoryDataType",
            "SPApplicationsDataType", "SPAirPortDataType"]  # fmt: skip


def _build(collector: ModuleType, outputs: dict[str, str | None]) -> PostureReport:
    return collector.build_report(outputs, hostname=None, user=None, collected_at=COLLECTED_AT)


def _all(collector: ModuleType, output: str | None) -> dict[str, str | None]:
    return {command.key: output for command in collector.COMMANDS}


def _assert_all_unknown(report: PostureReport) -> None:
    for field in STATE_FIELDS:
        assert getattr(report, field) is None, field
    assert report.antimalware == []
    assert report.installed_applications == []
    assert report.cloud_sync_clients == []
    assert report.network.kind == "unknown"


@pytest.mark.parametrize("collector", COLLECTORS)
def test_every_command_failing_gives_a_report_of_unknowns(collector: ModuleType) -> None:
    report = _build(collector, _all(collector, None))
    _assert_all_unknown(report)
    assert report.hostname is None
    assert report.collected_at == COLLECTED_AT


@pytest.mark.parametrize("collector", COLLECTORS)
def test_missing_outputs_count_as_failed_commands(collector: ModuleType) -> None:
    _assert_all_unknown(_build(collector, {}))


@pytest.mark.parametrize("collector", COLLECTORS)
def test_a_report_of_unknowns_fails_every_required_check(collector: ModuleType, policy: PosturePolicy) -> None:
    failures = evaluate_posture(_build(collector, {}), policy, NOW)
    assert {f.rule for f in failures} == {
        "os-update-age", "antimalware", "disk-encryption", "firewall", "bluetooth", "adhoc-wifi", "open-wifi",
    }  # fmt: skip
    messages = {f.rule: f.message for f in failures}
    assert messages.pop("antimalware") == "no antimalware product was reported"
    assert all(message.endswith("was not reported") for message in messages.values()), messages


@pytest.mark.parametrize("collector", COLLECTORS)
@pytest.mark.parametrize("garbage", TEXT_GARBAGE, ids=lambda text: repr(text[:12]))
def test_garbled_text_output_gives_unknowns(collector: ModuleType, garbage: str) -> None:
    report = _build(collector, _all(collector, garbage))
    if collector is linux and report.serial_number == garbage.strip():
        # product_serial is a file read with `cat`: one plain line is the serial, whatever it says
        report = report.model_copy(update={"serial_number": None})
    _assert_all_unknown(report)


@pytest.mark.parametrize("collector", COLLECTORS)
@pytest.mark.parametrize("empty", ["", "  \r\n"], ids=["empty", "blank"])
def test_empty_output_is_unknown_unless_empty_is_a_definite_answer(collector: ModuleType, empty: str) -> None:
    report = _build(collector, _all(collector, empty))
    if collector is linux:  # `iw dev` prints nothing when there is no wireless interface, hence no ad-hoc mode
        assert report.adhoc_wifi_enabled is False
        report = report.model_copy(update={"adhoc_wifi_enabled": None})
    _assert_all_unknown(report)


@pytest.mark.parametrize("collector", COLLECTORS)
@pytest.mark.parametrize("garbage", JSON_GARBAGE)
def test_json_of_the_wrong_shape_gives_no_positive_finding(collector: ModuleType, garbage: str) -> None:
    report = _build(collector, _all(collector, garbage))
    for field in ("disk_encryption", "firewall_enabled", "bluetooth_enabled", "adhoc_wifi_enabled"):
        assert getattr(report, field) is not True, field
    assert report.removable_media_blocked is not True
    assert report.last_update is None
    assert report.antimalware == []


@pytest.mark.parametrize("collector", COLLECTORS)
@pytest.mark.parametrize("weird", WEIRD_VALUES, ids=lambda value: repr(value)[:12])
def test_type_confused_json_never_crashes_a_collector(collector: ModuleType, weird: Any) -> None:
    record = dict.fromkeys(KNOWN_KEYS, weird)
    shapes = [
        json.dumps(record),
        json.dumps([record, weird]),
        json.dumps({section: [record] for section in SECTIONS}),
        json.dumps(dict.fromkeys(SECTIONS, weird)),
        json.dumps({"blockdevices": [{**record, "children": [record]}], "nftables": [{"chain": record}, record]}),
    ]
    for shape in shapes:
        assert isinstance(_build(collector, _all(collector, shape)), PostureReport)


@pytest.mark.parametrize("collector", COLLECTORS)
def test_truncated_recorded_output_never_crashes_a_collector(collector: ModuleType) -> None:
    outputs = recorded_outputs(SCENARIOS[collector])
    for cut in (1, 2, 3, 5):
        truncated = {key: text[: len(text) // cut] if text else text for key, text in outputs.items()}
        assert isinstance(_build(collector, truncated), PostureReport)


@pytest.mark.parametrize("collector", COLLECTORS)
def test_one_failed_command_only_makes_its_own_field_unknown(collector: ModuleType) -> None:
    complete = _build(collector, recorded_outputs(SCENARIOS[collector]))
    firewall_keys = {"windows": ["firewall"], "macos": ["firewall"], "linux": ["ufw", "firewalld", "nft"]}
    failed = dict.fromkeys(firewall_keys[collector.__name__.rsplit(".", 1)[-1]])
    partial = _build(collector, recorded_outputs(SCENARIOS[collector], **failed))
    assert complete.firewall_enabled is True
    assert partial.firewall_enabled is None
    assert partial.model_dump(exclude={"firewall_enabled"}) == complete.model_dump(exclude={"firewall_enabled"})


def test_oversized_application_lists_are_cut_to_the_report_limit() -> None:
    apps = json.dumps(
        [{"DisplayName": f"Plugin {i}", "DisplayVersion": "1", "Publisher": "x" * 1000} for i in range(6000)]
    )
    parsed = windows.parse_applications(apps)
    assert len(parsed) == 5000
    assert len(parsed[0].publisher or "") == 300
