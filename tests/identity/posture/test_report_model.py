"""The posture report schema bounds what a (possibly hostile) client can send (G8 ledger input)."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from gateway.identity.posture import MAX_APPLICATIONS, PostureReport
from tests.identity.posture.samples import compliant_report


def _apps(count: int) -> list[dict[str, str]]:
    return [{"name": f"App {index}", "version": "1.0"} for index in range(count)]


def test_report_with_10001_applications_is_rejected() -> None:
    with pytest.raises(ValidationError) as error:
        compliant_report(installed_applications=_apps(10_001))
    assert error.value.errors()[0]["loc"] == ("installed_applications",)
    assert error.value.errors()[0]["type"] == "too_long"


def test_report_with_the_maximum_number_of_applications_is_accepted() -> None:
    report = compliant_report(installed_applications=_apps(MAX_APPLICATIONS))
    assert len(report.installed_applications) == MAX_APPLICATIONS


def test_overlong_application_name_is_rejected() -> None:
    with pytest.raises(ValidationError) as error:
        compliant_report(installed_applications=[{"name": "x" * 301}])
    assert error.value.errors()[0]["loc"] == ("installed_applications", 0, "name")


def test_overlong_hostname_is_rejected() -> None:
    with pytest.raises(ValidationError):
        compliant_report(hostname="h" * 256)


def test_unknown_fields_are_rejected_at_every_level() -> None:
    with pytest.raises(ValidationError) as top:
        compliant_report(jailbroken=False)
    assert [(e["type"], e["loc"]) for e in top.value.errors()] == [("extra_forbidden", ("jailbroken",))]
    with pytest.raises(ValidationError) as nested:
        compliant_report(network={"kind": "wired", "vpn": True})
    assert [(e["type"], e["loc"]) for e in nested.value.errors()] == [("extra_forbidden", ("network", "vpn"))]


def test_collected_at_without_a_timezone_is_rejected() -> None:
    with pytest.raises(ValidationError) as error:
        compliant_report(collected_at=datetime(2026, 11, 25, 10, 0))
    assert error.value.errors()[0]["type"] == "timezone_aware"


def test_state_flags_must_be_real_booleans_not_words() -> None:
    with pytest.raises(ValidationError):
        compliant_report(disk_encryption="yes")
    with pytest.raises(ValidationError):
        compliant_report(antimalware=[{"name": "Windows Defender", "enabled": 1, "up_to_date": True}])


def test_unknown_os_family_and_network_kind_are_rejected() -> None:
    with pytest.raises(ValidationError):
        compliant_report(os_family="android")
    with pytest.raises(ValidationError):
        compliant_report(network={"kind": "satellite"})


def test_report_survives_a_json_round_trip() -> None:
    report = compliant_report(network={"kind": "wifi", "wifi_ssid": "LabNet-5G", "wifi_security": "wpa2-personal"})
    assert PostureReport.model_validate_json(report.model_dump_json()) == report


def test_fields_a_collector_could_not_read_may_be_omitted_and_are_unknown() -> None:
    report = PostureReport.model_validate(
        {"os_family": "linux", "collected_at": "2026-11-25T10:00:00+09:00", "collector_version": "dentgate-posture/1.0"}
    )
    assert report.disk_encryption is None
    assert report.last_update is None
    assert report.network.kind == "unknown"
    assert report.installed_applications == []
