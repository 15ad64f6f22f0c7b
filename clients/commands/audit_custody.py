"""`dentgate audit custody DESIGN_ID`: a design's custody chain, every signature checked on this machine (G19).

The gateway sends what it holds (`GET /api/v1/audit/custody/{id}`); nothing it says about validity is
taken on trust. The receipt is checked with the gateway key pinned in `DENTGATE_HOME` (pinned on first
use, as a station pins it at enrolment; a gateway that later shows another key is refused), the
manifest with the device key and the receipt's link to it, each acknowledgement with its station's key
and its link to the receipt. The checks are `gateway.transfer.custody`'s, the ones the gateway and the
station agent run.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from clients.commands.audit import audit
from clients.commands.common import emit, handles_errors, json_option, logged_in
from clients.profile import client_home
from clients.station_agent import GATEWAY_KEY_FILE, StationAgentError, pin_gateway_key
from gateway.errors import DentGateError
from gateway.identity.proofs import key_fingerprint
from gateway.transfer.custody import (
    CustodyBroken,
    CustodySignatureInvalid,
    SignedAcknowledgement,
    SignedReceipt,
    parse_signed_acknowledgement,
    parse_signed_receipt,
    verify_acknowledgement,
    verify_custody,
    verify_receipt,
)
from gateway.transfer.manifest import (
    Manifest,
    ManifestSignatureInvalid,
    SignedManifest,
    parse_signed_manifest,
    verify_manifest,
)

OK, FAILED, UNCHECKED = "✔", "✘", "–"


@dataclass(frozen=True)
class Check:
    """One signature or link: `ok` is None when it could not be checked (what it rests on failed)."""

    step: str  # manifest | receipt | acknowledgement
    kind: str  # signature | link
    subject: str
    ok: bool | None
    detail: str
    time: str | None = None  # when the signer says it signed (device, gateway or station clock)


def _key(text: Any) -> bytes | None:
    """A raw 32-byte Ed25519 key from base64, or None."""
    try:
        raw = base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _parse_manifest(document: Any) -> tuple[SignedManifest | None, str]:
    try:
        return parse_signed_manifest(json.dumps(document).encode()), ""
    except (DentGateError, TypeError, ValueError) as error:
        return None, f"not a valid signed manifest: {getattr(error, 'detail', error)}"


def _parse_receipt(document: Any) -> tuple[SignedReceipt | None, str]:
    try:
        return parse_signed_receipt(json.dumps(document).encode()), ""
    except (DentGateError, TypeError, ValueError) as error:
        return None, f"not a valid signed receipt: {getattr(error, 'detail', error)}"


def _parse_acknowledgement(document: Any) -> tuple[SignedAcknowledgement | None, str]:
    try:
        return parse_signed_acknowledgement(json.dumps(document).encode()), ""
    except (DentGateError, TypeError, ValueError) as error:
        return None, f"not a valid signed acknowledgement: {getattr(error, 'detail', error)}"


def _short(value: Any) -> str:
    return str(value)[:8] if value else "?"


def _station_label(job: dict[str, Any]) -> str:
    name = job.get("station_name")
    return f"station {_short(job.get('station_id'))} ({name})" if name else f"station {_short(job.get('station_id'))}"


def _manifest_checks(
    report: dict[str, Any], signed: SignedManifest | None, parse_error: str, device_key: bytes | None
) -> tuple[list[Check], Manifest | None]:
    device = f"device {_short(report.get('device_id'))}" + (
        f" ({report['device_name']})" if report.get("device_name") else ""
    )
    if signed is None:
        return [Check("manifest", "signature", device, False, parse_error)], None
    when = signed.manifest.model_dump(mode="json")["created_at"]
    if device_key is None:
        return [Check("manifest", "signature", device, False, "the gateway gave no valid device key", when)], None
    try:
        manifest = verify_manifest(signed, device_key)
    except (ManifestSignatureInvalid, ValueError) as error:
        return [Check("manifest", "signature", device, False, getattr(error, "detail", str(error)), when)], None
    files = ", ".join(file.name for file in manifest.files)
    checks = [Check("manifest", "signature", device, True, f"signed by the device's key; files: {files}", when)]
    names = []
    if str(manifest.design_id) != str(report.get("design_id")):
        names.append(f"the manifest is for design {manifest.design_id}")
    if str(manifest.device_id) != str(report.get("device_id")):
        names.append(f"the manifest names device {manifest.device_id}, not the one whose key was given")
    if str(manifest.lab_id) != str(report.get("lab_id")):
        names.append(f"the manifest names lab {manifest.lab_id}")
    detail = "; ".join(names) or "names this design, its lab and the device whose key the gateway vouches for"
    checks.append(Check("manifest", "link", f"technician {_short(manifest.technician_id)}", not names, detail))
    return checks, manifest


def _receipt_checks(
    signed_manifest: SignedManifest | None,
    device_key: bytes | None,
    manifest: Manifest | None,
    signed_receipt: SignedReceipt | None,
    parse_error: str,
    gateway_key: bytes,
) -> list[Check]:
    subject = "gateway (pinned key)"
    if signed_receipt is None:
        return [Check("receipt", "signature", subject, False, parse_error)]
    when = signed_receipt.receipt.model_dump(mode="json")["received_at"]
    try:
        verify_receipt(signed_receipt, gateway_key)
    except CustodySignatureInvalid as error:
        return [
            Check("receipt", "signature", subject, False, error.detail, when),
            Check("receipt", "link", "receipt → manifest", None, "the receipt signature does not verify"),
        ]
    checks = [Check("receipt", "signature", subject, True, "signed by the pinned gateway key", when)]
    if manifest is None or signed_manifest is None or device_key is None:
        checks.append(Check("receipt", "link", "receipt → manifest", None, "the manifest does not verify"))
        return checks
    try:
        verify_custody(signed_manifest, device_key, signed_receipt, gateway_key)
    except CustodyBroken as error:
        ok = None if error.step == "manifest" else False
        checks.append(Check("receipt", "link", "receipt → manifest", ok, error.reason))
        return checks
    detail = "names the manifest's hash, the device's signature and the ciphertext it measured"
    checks.append(Check("receipt", "link", "receipt → manifest", True, detail))
    return checks


def _acknowledgement_checks(
    job: dict[str, Any],
    signed_manifest: SignedManifest | None,
    device_key: bytes | None,
    signed_receipt: SignedReceipt | None,
    gateway_key: bytes,
) -> list[Check]:
    subject = _station_label(job)
    document = job.get("signed_acknowledgement")
    if document is None:
        if job.get("state") == "acknowledged":
            return [Check("acknowledgement", "signature", subject, False, "acknowledged, but no acknowledgement kept")]
        return []
    signed, parse_error = _parse_acknowledgement(document)
    if signed is None:
        return [Check("acknowledgement", "signature", subject, False, parse_error)]
    when = signed.acknowledgement.model_dump(mode="json")["written_at"]
    station_key = _key(job.get("station_public_key"))
    if station_key is None:
        return [Check("acknowledgement", "signature", subject, False, "the gateway gave no valid station key", when)]
    try:
        verify_acknowledgement(signed, station_key)
    except CustodySignatureInvalid as error:
        return [
            Check("acknowledgement", "signature", subject, False, error.detail, when),
            Check("acknowledgement", "link", "acknowledgement → receipt", None, "the signature does not verify"),
        ]
    signed_by = f"signed by the station's key; {len(signed.acknowledgement.files)} file(s)"
    checks = [Check("acknowledgement", "signature", subject, True, signed_by, when)]
    if signed_manifest is None or signed_receipt is None or device_key is None:
        checks.append(Check("acknowledgement", "link", "acknowledgement → receipt", None, "the receipt is unchecked"))
        return checks
    if str(signed.acknowledgement.station_id) != str(job.get("station_id")):
        reason = f"signed for station {signed.acknowledgement.station_id}, kept on another station's job"
        checks.append(Check("acknowledgement", "link", "acknowledgement → receipt", False, reason))
        return checks
    try:
        verify_custody(signed_manifest, device_key, signed_receipt, gateway_key, signed, station_key)
    except CustodyBroken as error:
        ok = False if error.step == "acknowledgement" else None
        checks.append(Check("acknowledgement", "link", "acknowledgement → receipt", ok, error.reason))
        return checks
    folder = signed.acknowledgement.import_name
    detail = f"names the receipt; every file's hash matches the manifest; written into {folder!r}"
    checks.append(Check("acknowledgement", "link", "acknowledgement → receipt", True, detail))
    return checks


def check_custody(report: dict[str, Any], gateway_key: bytes) -> dict[str, Any]:
    """Check every signature and link of a custody report with `gateway_key` (the pinned one).

    Returns the report's facts with `checks` (one per signature and per link) and `verified`: true only
    when every check passed.
    """
    device_key = _key(report.get("device_public_key"))
    signed_manifest, manifest_error = _parse_manifest(report.get("signed_manifest"))
    signed_receipt, receipt_error = _parse_receipt(report.get("signed_receipt"))
    checks, manifest = _manifest_checks(report, signed_manifest, manifest_error, device_key)
    checks += _receipt_checks(signed_manifest, device_key, manifest, signed_receipt, receipt_error, gateway_key)
    target_ids = {str(station) for station in manifest.target_stations} if manifest else set()
    for job in report.get("jobs", []):
        if manifest is not None and str(job.get("station_id")) not in target_ids:
            checks.append(Check("acknowledgement", "link", _station_label(job), False, "not a target of the design"))
        checks += _acknowledgement_checks(job, signed_manifest, device_key, signed_receipt, gateway_key)
    return {
        "design_id": report.get("design_id"),
        "case_reference": report.get("case_reference"),
        "status": report.get("status"),
        "verified": all(check.ok is True for check in checks),
        "gateway_key_fingerprint": key_fingerprint(gateway_key),
        "checks": [asdict(check) for check in checks],
        "jobs": [
            {key: job.get(key) for key in ("job_id", "station_id", "station_name", "state", "attempts", "reason")}
            for job in report.get("jobs", [])
        ],
        "events": report.get("events", []),
        "events_truncated": bool(report.get("events_truncated")),
    }


def _mark(ok: bool | None) -> str:
    return OK if ok is True else FAILED if ok is False else UNCHECKED


def render(result: dict[str, Any], pinned_at: Path | None = None) -> str:
    """The custody chain as a timeline: the signed steps with ✔/✘, the deliveries, then the audit history."""
    lines = [
        f"Custody of design {result['design_id']} (case {result['case_reference']}, {result['status']})",
        f"Gateway key {result['gateway_key_fingerprint']}" + (f", pinned in {pinned_at}" if pinned_at else ""),
        "",
        "Signatures and links (times as each signer's clock gave them):",
    ]
    for check in result["checks"]:
        when = check["time"] or ""
        label = f"{check['step']} {check['kind']}"
        lines.append(f"  {when:<28} {_mark(check['ok'])} {label:<26} {check['subject']}: {check['detail']}")
    lines += ["", "Deliveries:"]
    for job in result["jobs"] or []:
        reason = f" ({job['reason']})" if job.get("reason") else ""
        name = f" {job['station_name']}" if job.get("station_name") else ""
        lines.append(f"  station {job['station_id']}{name}: {job['state']}, {job['attempts']} attempt(s){reason}")
    if not result["jobs"]:
        lines.append("  (none)")
    lines += ["", "History (audit chain order, gateway time, UTC):"]
    for event in result["events"]:
        actor = f"{event.get('actor_type')} {_short(event.get('actor_id'))}"
        extra = ", ".join(f"{k}={v}" for k, v in sorted((event.get("details") or {}).items()))
        reason = f" — {event['reason']}" if event.get("reason") else ""
        lines.append(
            f"  #{event['seq']:<6} {event['time']}  {event['action']:<22} {actor:<22} {event['outcome']}{reason}"
            + (f"  [{extra}]" if extra else "")
        )
    if result["events_truncated"]:
        lines.append("  … more events than one answer carries; export the chain for the rest")
    failed = sum(1 for check in result["checks"] if check["ok"] is not True)
    lines.append("")
    if result["verified"]:
        lines.append(f"{OK} Custody verified: every signature and link checks out on this machine.")
    else:
        lines.append(f"{FAILED} Custody NOT verified: {failed} check(s) failed or could not be made.")
    return "\n".join(lines)


def pinned_gateway_key(home: Path, gateway_url: str, transport: Any = None) -> bytes:
    """The gateway key pinned in `home` (pinned now if none is); refuses a gateway that shows another key."""
    try:
        return pin_gateway_key(home, gateway_url, transport)
    except StationAgentError as error:
        raise click.ClickException(str(error)) from None


@audit.command("custody")
@click.argument("design_id", type=click.UUID)
@json_option
@handles_errors
def custody(design_id: uuid.UUID, as_json: bool) -> None:
    """Show a design's custody chain and check every signature here; exit status 1 if any check fails."""
    client = logged_in()
    home = client_home()
    gateway_key = pinned_gateway_key(home, client.base_url, client.transport)
    report = client.get(f"/api/v1/audit/custody/{design_id}")
    result = check_custody(report, gateway_key)
    emit(result, as_json, lambda r: render(r, home / GATEWAY_KEY_FILE))
    if not result["verified"]:
        raise SystemExit(1)
