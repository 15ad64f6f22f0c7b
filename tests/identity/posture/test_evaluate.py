"""evaluate_posture: every failing rule is reported with a readable reason and its guideline id (G7, G8, G9, G15)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from gateway.identity.posture import evaluate_posture, summarise_for_ledger
from gateway.policy import PosturePolicy
from tests.identity.posture.samples import COLLECTED_AT, NOW, compliant_report


def _rules(policy: PosturePolicy, **changes: Any) -> list[str]:
    return [failure.rule for failure in evaluate_posture(compliant_report(**changes), policy, NOW)]


def _strict(policy: PosturePolicy, **settings: Any) -> PosturePolicy:
    return policy.model_copy(update=settings)


def test_compliant_report_has_no_failures(policy: PosturePolicy) -> None:
    assert evaluate_posture(compliant_report(), policy, NOW) == []


@pytest.mark.parametrize(
    ("changes", "rule", "requirement"),
    [
        ({"last_update": date(2026, 9, 1)}, "os-update-age", "G7"),
        ({"antimalware": [{"name": "Windows Defender", "enabled": False, "up_to_date": True}]}, "antimalware", "G7"),
        ({"antimalware": [{"name": "Windows Defender", "enabled": True, "up_to_date": False}]}, "antimalware", "G7"),
        ({"antimalware": []}, "antimalware", "G7"),
        ({"disk_encryption": False}, "disk-encryption", "G15"),
        ({"firewall_enabled": False}, "firewall", "G7"),
        ({"bluetooth_enabled": True}, "bluetooth", "G9"),
        ({"adhoc_wifi_enabled": True}, "adhoc-wifi", "G9"),
        ({"network": {"kind": "wifi", "wifi_ssid": "FREE_Wi-Fi", "wifi_security": "open", "wifi_open": True}},
         "open-wifi", "G7"),
        ({"collected_at": NOW - timedelta(hours=25)}, "stale-report", "G7"),
    ],
)  # fmt: skip
def test_each_rule_fails_on_its_own(
    policy: PosturePolicy, changes: dict[str, Any], rule: str, requirement: str
) -> None:
    failures = evaluate_posture(compliant_report(**changes), policy, NOW)
    assert [(failure.rule, failure.requirement) for failure in failures] == [(rule, requirement)]
    assert failures[0].message


def test_removable_media_fails_only_when_the_policy_forbids_it(policy: PosturePolicy) -> None:
    assert _rules(policy, removable_media_blocked=False) == []
    strict = _strict(policy, forbid_removable_media=True)
    failures = evaluate_posture(compliant_report(removable_media_blocked=False), strict, NOW)
    assert [(f.rule, f.requirement) for f in failures] == [("removable-media", "G15")]
    assert "removable storage is not blocked" in failures[0].message


@pytest.mark.parametrize(
    ("field", "rule", "what"),
    [
        ("last_update", "os-update-age", "last OS update"),
        ("disk_encryption", "disk-encryption", "disk encryption state"),
        ("firewall_enabled", "firewall", "firewall state"),
        ("bluetooth_enabled", "bluetooth", "Bluetooth state"),
        ("adhoc_wifi_enabled", "adhoc-wifi", "ad-hoc / hosted Wi-Fi state"),
    ],
)
def test_unknown_value_fails_a_required_check(policy: PosturePolicy, field: str, rule: str, what: str) -> None:
    failures = evaluate_posture(compliant_report(**{field: None}), policy, NOW)
    assert [failure.rule for failure in failures] == [rule]
    assert what in failures[0].message
    assert "not reported" in failures[0].message


def test_unknown_removable_media_fails_when_required(policy: PosturePolicy) -> None:
    strict = _strict(policy, forbid_removable_media=True)
    failures = evaluate_posture(compliant_report(removable_media_blocked=None), strict, NOW)
    assert [(f.rule, f.message) for f in failures] == [("removable-media", "removable media policy was not reported")]


def test_unknown_values_pass_when_the_check_is_not_required(policy: PosturePolicy) -> None:
    relaxed = _strict(policy, require_bluetooth_off=False, require_disk_encryption=False, forbid_open_wifi=False)
    report = compliant_report(bluetooth_enabled=None, disk_encryption=None, network={"kind": "unknown"})
    assert evaluate_posture(report, relaxed, NOW) == []


def test_update_age_message_names_the_date_the_age_and_the_allowance(policy: PosturePolicy) -> None:
    assert _rules(policy, last_update=date(2026, 10, 26)) == []  # exactly 30 days old
    [failure] = evaluate_posture(compliant_report(last_update=date(2026, 10, 25)), policy, NOW)
    assert failure.message == "last OS update 2026-10-25 is 31 days old; the policy allows 30"


def test_update_dated_in_the_future_fails(policy: PosturePolicy) -> None:
    [failure] = evaluate_posture(compliant_report(last_update=date(2027, 1, 1)), policy, NOW)
    assert failure.rule == "os-update-age"
    assert "in the future" in failure.message


def test_open_wifi_fails_and_names_the_network(policy: PosturePolicy) -> None:
    network = {"kind": "wifi", "wifi_ssid": "Cafe_Free_WiFi", "wifi_security": "open", "wifi_open": True}
    [failure] = evaluate_posture(compliant_report(network=network), policy, NOW)
    assert failure.rule == "open-wifi"
    assert "'Cafe_Free_WiFi'" in failure.message
    assert "forbids open Wi-Fi" in failure.message


def test_open_security_label_fails_even_if_the_client_claims_the_network_is_not_open(policy: PosturePolicy) -> None:
    network = {"kind": "wifi", "wifi_ssid": "Airport-Free", "wifi_security": "owe", "wifi_open": False}
    assert _rules(policy, network=network) == ["open-wifi"]


def test_wifi_with_unknown_security_fails(policy: PosturePolicy) -> None:
    [failure] = evaluate_posture(compliant_report(network={"kind": "wifi", "wifi_ssid": "LabNet"}), policy, NOW)
    assert failure.message == "the security of Wi-Fi network 'LabNet' was not reported"


def test_unknown_connection_type_fails_the_open_wifi_check(policy: PosturePolicy) -> None:
    [failure] = evaluate_posture(compliant_report(network={"kind": "unknown"}), policy, NOW)
    assert (failure.rule, failure.message) == ("open-wifi", "the network connection type was not reported")


@pytest.mark.parametrize(
    "network",
    [
        {"kind": "wired"},
        {"kind": "cellular"},
        {"kind": "wifi", "wifi_ssid": "LabNet-5G", "wifi_security": "wpa2-personal", "wifi_open": False},
        {"kind": "wifi", "wifi_ssid": "LabNet-5G", "wifi_security": "wpa3-enterprise", "wifi_open": False},
    ],
)
def test_protected_or_wired_networks_pass(policy: PosturePolicy, network: dict[str, Any]) -> None:
    assert _rules(policy, network=network) == []


def test_one_enabled_up_to_date_product_is_enough(policy: PosturePolicy) -> None:
    products = [
        {"name": "Windows Defender", "enabled": False, "up_to_date": True},
        {"name": "ESET Endpoint Security", "enabled": True, "up_to_date": True},
    ]
    assert _rules(policy, antimalware=products) == []


def test_antimalware_with_unknown_signatures_fails_and_says_so(policy: PosturePolicy) -> None:
    products = [{"name": "ClamAV 1.4.3", "enabled": True, "up_to_date": None}]
    [failure] = evaluate_posture(compliant_report(antimalware=products), policy, NOW)
    assert failure.message == (
        "no enabled, up-to-date antimalware product: ClamAV 1.4.3 (enabled, signature state unknown)"
    )


def test_no_antimalware_product_fails(policy: PosturePolicy) -> None:
    [failure] = evaluate_posture(compliant_report(antimalware=[]), policy, NOW)
    assert failure.message == "no antimalware product was reported"


def test_forbidden_cloud_sync_client_fails_when_configured(policy: PosturePolicy) -> None:
    report = compliant_report(cloud_sync_clients=["Dropbox", "OneDrive"])
    assert evaluate_posture(report, policy, NOW) == []  # the default policy forbids none
    [failure] = evaluate_posture(report, _strict(policy, forbidden_cloud_sync=("Dropbox",)), NOW)
    assert (failure.rule, failure.requirement) == ("cloud-sync", "G8")
    assert "Dropbox" in failure.message
    assert "OneDrive" not in failure.message


def test_forbidden_cloud_sync_is_also_found_among_installed_applications(policy: PosturePolicy) -> None:
    apps = [{"name": "Dropbox", "version": "212.4.5767"}, {"name": "Oracle VM VirtualBox 7.0.20"}]
    strict = _strict(policy, forbidden_cloud_sync=("dropbox",))
    assert [f.rule for f in evaluate_posture(compliant_report(installed_applications=apps), strict, NOW)] == [
        "cloud-sync"
    ]


def test_forbidden_cloud_sync_matches_whole_words_only(policy: PosturePolicy) -> None:
    apps = [{"name": "Oracle VM VirtualBox 7.0.20"}, {"name": "Xbox"}]
    strict = _strict(policy, forbidden_cloud_sync=("Box",))
    assert evaluate_posture(compliant_report(installed_applications=apps), strict, NOW) == []
    assert [f.rule for f in evaluate_posture(compliant_report(cloud_sync_clients=["Box"]), strict, NOW)] == [
        "cloud-sync"
    ]


@pytest.mark.parametrize(
    ("collected_at", "stale"),
    [
        (NOW + timedelta(minutes=4), False),
        (NOW + timedelta(minutes=6), True),
        (NOW - timedelta(hours=23), False),
        (NOW - timedelta(hours=25), True),
    ],
)
def test_report_from_the_future_or_older_than_a_day_is_stale(
    policy: PosturePolicy, collected_at: datetime, stale: bool
) -> None:
    assert _rules(policy, collected_at=collected_at) == (["stale-report"] if stale else [])


def test_stale_report_messages_say_how_far_off_it_is(policy: PosturePolicy) -> None:
    [future] = evaluate_posture(compliant_report(collected_at=NOW + timedelta(minutes=30)), policy, NOW)
    assert "30 minutes in the future" in future.message
    [old] = evaluate_posture(compliant_report(collected_at=NOW - timedelta(hours=26)), policy, NOW)
    assert "26 hours old" in old.message


def test_every_failing_rule_is_reported_together(policy: PosturePolicy) -> None:
    report = compliant_report(
        last_update=None, disk_encryption=False, firewall_enabled=None, bluetooth_enabled=True, antimalware=[]
    )
    assert [f.rule for f in evaluate_posture(report, policy, NOW)] == [
        "os-update-age",
        "antimalware",
        "disk-encryption",
        "firewall",
        "bluetooth",
    ]


def test_naive_now_is_refused(policy: PosturePolicy) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_posture(compliant_report(), policy, datetime(2026, 11, 25, 10, 0))


def test_ledger_summary_has_the_g8_fields() -> None:
    report = compliant_report(
        cloud_sync_clients=["OneDrive"],
        installed_applications=[{"name": "exocad DentalCAD"}, {"name": "Microsoft OneDrive"}],
    )
    assert summarise_for_ledger(report) == {
        "serial_number": "5CD2417XQ8",
        "hostname": "CAD-PC-07",
        "user": "sato",
        "os_family": "windows",
        "os_name": "Microsoft Windows 11 Pro 23H2",
        "os_version": "10.0.22631",
        "os_build": "22631.4460",
        "last_update": "2026-11-11",
        "applications_count": 2,
        "cloud_services": ["OneDrive"],
        "antimalware": ["Windows Defender"],
        "collected_at": COLLECTED_AT.isoformat(),
        "collector_version": "test",
    }


def test_ledger_summary_of_an_unknown_update_date_is_none() -> None:
    assert summarise_for_ledger(compliant_report(last_update=None))["last_update"] is None
