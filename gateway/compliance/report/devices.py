"""Report rows about technicians' devices (G7, G8, G9, G15), from each approved device's latest posture report.
Which row a failing check belongs to is the `requirement` the posture evaluation gave it, nothing else."""

from __future__ import annotations

from typing import Any

from gateway.compliance.report.facts import DeviceFacts, LabFacts
from gateway.compliance.report.model import Count, Row, Subject, device_subject, row
from gateway.compliance.report.people import attestation_gaps


def posture_subjects(facts: LabFacts, requirement: str) -> list[Subject]:
    """Each approved device's failing checks serving `requirement` in its latest report."""
    return [
        device_subject(d.device, d.owner, failure.rule, failure.message)
        for d in facts.devices
        for failure in d.failures_for(requirement)
    ]


def _in_order(facts: LabFacts, requirement: str) -> Count:
    good = sum(1 for d in facts.devices if d.posture is not None and not d.failures_for(requirement))
    return Count(good, len(facts.devices))


def _reported(facts: LabFacts, field: str, wanted: object) -> Count:
    good = sum(1 for d in facts.devices if d.posture is not None and d.posture.report.get(field) is wanted)
    return Count(good, len(facts.devices))


def g7_device_security(facts: LabFacts) -> Row:
    """G7: no open Wi-Fi, recent OS updates, working security software, fresh report — at each device's last report."""
    subjects = posture_subjects(facts, "G7")
    subjects += [device_subject(d.device, d.owner, "posture-missing", "the device never sent a posture report")
                 for d in facts.devices if d.posture is None]  # fmt: skip
    reports = [d.posture.received_at for d in facts.devices if d.posture is not None]
    evidence = {
        "devices_in_order": _in_order(facts, "G7"),
        "max_update_age_days": facts.policy.posture.max_update_age_days,
        "last_posture_report": max(reports, default=None),
    }
    return row("G7", evidence, subjects)


def _ledger_entry(d: DeviceFacts) -> dict[str, Any]:
    report = d.posture.report if d.posture else {}
    os_name = " ".join(str(part) for part in (report.get("os_name"), report.get("os_version")) if part)
    return {
        "device": d.device.name,
        "owner": d.owner.label,
        "ownership": d.device.ownership,
        "administrable": d.device.manager_can_administer,
        "serial_number": report.get("serial_number"),
        "os": os_name or report.get("os_family"),
        "last_update": report.get("last_update"),
        "applications": len(report.get("installed_applications") or []),
        "device_user": report.get("user"),
        "reported_at": d.posture.received_at.isoformat() if d.posture else None,
    }


def g8_device_ledger(facts: LabFacts) -> Row:
    """G8: the device ledger; a personal device only when the manager can administer it (and says so, dated)."""
    subjects = posture_subjects(facts, "G8")
    personal = [d for d in facts.devices if d.device.ownership == "personal"]
    subjects += [
        device_subject(d.device, d.owner, "personal-not-administrable",
                       "a personal device the manager cannot administer")
        for d in personal
        if not d.device.manager_can_administer
    ]  # fmt: skip
    subjects += attestation_gaps(facts, "G8")[0]
    evidence = {
        "devices": len(facts.devices),
        "personal_administrable": Count(sum(1 for d in personal if d.device.manager_can_administer), len(personal)),
        "ledger": [_ledger_entry(d) for d in facts.devices],
    }
    return row("G8", evidence, subjects)


def g9_wireless(facts: LabFacts) -> Row:
    """G9: Bluetooth and ad-hoc Wi-Fi off at each device's last report."""
    evidence = {
        "devices_in_order": _in_order(facts, "G9"),
        "bluetooth_off": _reported(facts, "bluetooth_enabled", False),
        "adhoc_wifi_off": _reported(facts, "adhoc_wifi_enabled", False),
    }
    return row("G9", evidence, posture_subjects(facts, "G9"))


def g15_media_and_encryption(facts: LabFacts) -> Row:
    """G15: disk encryption on (and removable storage blocked where the policy says) at the last report, and a
    current removable-media attestation from every remote worker."""
    attested_subjects, attested, _ = attestation_gaps(facts, "G15")
    evidence = {
        "disk_encryption": _reported(facts, "disk_encryption", True),
        "removable_media_blocking_required": facts.policy.posture.forbid_removable_media,
        "removable_media_attestations": attested,
    }
    return row("G15", evidence, posture_subjects(facts, "G15") + attested_subjects)
