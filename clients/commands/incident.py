"""`dentgate tech incident …` and `dentgate admin incident …`: report an incident, read the plan (also offline),
follow an incident from report to containment and resolution (G17, G18)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from clients.api import ApiError, GatewayClient
from clients.commands.common import emit, handles_errors, json_option, logged_in, table
from clients.incident_plan import NoPlanAvailable, current_plan, render
from clients.profile import client_home, forget_login
from gateway.incidents.plan import plan_template

TYPES = click.Choice(["lost-device", "malware", "suspicious", "other"])
LIST_COLUMNS = ["id", "type", "status", "technician", "device", "reported_at", "contained_after"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def _device(incident: dict[str, Any]) -> str:
    device = incident["device"]
    return "-" if device is None else f"{device['name']} ({device['id']}, {device['status']})"


def _rows(incidents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**i, "device": i["device"]["name"] if i["device"] else "-",
             "contained_after": _seconds(i["time_to_containment_seconds"])} for i in incidents]  # fmt: skip


def _after(incident: dict[str, Any]) -> str:
    took = incident["time_to_containment_seconds"]
    return "" if took is None else f" ({_seconds(took)} after the report)"


def describe(incident: dict[str, Any]) -> str:
    """An incident for a terminal: who and what, containment, the timeline and each notification's fate."""
    lines = [
        f"Incident {incident['id']}: {incident['type']}, {incident['status']}",
        f"  technician {incident['technician']}; device {_device(incident)}",
        f"  reported {incident['reported_at']} by {incident['reported_by']} ({incident['reporter_role']})",
        f"  contained {incident['contained_at'] or 'not yet'}{_after(incident)}",
        f"  resolved {incident['resolved_at'] or 'not yet'}",
        f"  description: {incident['description']}",
        "Timeline:",
    ]
    for event in incident["timeline"]:
        details = ", ".join(f"{k}={v}" for k, v in event["details"].items() if v not in (None, [], ""))
        lines.append(f"  {event['at']}  {event['kind']:<13} {event['actor'] or 'gateway'}  {details}")
    lines.append("Notifications:" if incident["notifications"] else "Notifications: none configured in the plan")
    for sent in incident["notifications"]:
        why = f": {sent['last_error']}" if sent["last_error"] else ""
        tries = f"{sent['attempts']} attempt(s)"
        lines.append(f"  {sent['channel']} {sent['recipient']}: {sent['status']} after {tries}{why}")
    return "\n".join(lines)


def _after_report(client: GatewayClient, incident: dict[str, Any]) -> str:
    """The report's outcome; if this very session was on the revoked device, say so and forget the login."""
    text = describe(incident)
    if incident["status"] != "contained" or incident["device"] is None:
        return text
    try:
        client.get("/api/v1/me")
    except ApiError as error:
        if error.status != 401:
            raise
        forget_login(client_home())
        text += "\nThis session was on the revoked device: it has ended here. Log in again from another device."
    return text


def _report(body: dict[str, Any], as_json: bool) -> None:
    client = logged_in()
    incident = client.post("/api/v1/incidents", body)
    emit(incident, as_json, lambda r: _after_report(client, r))


@click.group("incident")
def tech_incident() -> None:
    """Report an incident and read the lab's incident response plan (G17)."""


@tech_incident.command("report")
@click.option("--type", "kind", type=TYPES, required=True, help="lost-device and malware revoke the device at once.")
@click.option("--description", required=True, help="What happened (no patient data).")
@click.option("--device", "device_id", type=click.UUID, help="The device concerned; default: the one you use now.")
@json_option
@handles_errors
def tech_report(kind: str, description: str, device_id: Any, as_json: bool) -> None:
    """Report an incident about yourself; a lost or infected device is revoked at once and the manager told."""
    _report({"type": kind, "description": description, "device_id": str(device_id) if device_id else None}, as_json)


@tech_incident.command("plan")
@json_option
@handles_errors
def tech_plan(as_json: bool) -> None:
    """Show the incident response plan, phone numbers first; works offline from the last copy fetched."""
    try:
        copy = current_plan(client_home())
    except NoPlanAvailable as error:
        raise click.ClickException(str(error)) from None
    emit(copy.as_json(), as_json, render(copy))


@tech_incident.command("list")
@json_option
@handles_errors
def tech_list(as_json: bool) -> None:
    """Your incidents and where each stands."""
    incidents = logged_in().get("/api/v1/incidents")
    emit(incidents, as_json, lambda _: table(_rows(incidents), LIST_COLUMNS))


@click.group("incident")
def admin_incident() -> None:
    """The lab's incidents: file one for a technician, contain, resolve (G17, G18)."""


@admin_incident.command("report")
@click.option("--for", "technician", required=True, help="Username of the technician who phoned in.")
@click.option("--type", "kind", type=TYPES, required=True, help="lost-device and malware revoke the device at once.")
@click.option("--description", required=True, help="What happened (no patient data).")
@click.option("--device", "device_id", type=click.UUID, help="The device concerned; default: their only active one.")
@json_option
@handles_errors
def admin_report(technician: str, kind: str, description: str, device_id: Any, as_json: bool) -> None:
    """File an incident for a technician who reported it by phone."""
    body = {"type": kind, "description": description, "technician": technician,
            "device_id": str(device_id) if device_id else None}  # fmt: skip
    _report(body, as_json)


@admin_incident.command("list")
@click.option("--status", type=click.Choice(["reported", "contained", "resolved"]), help="Only those in this state.")
@json_option
@handles_errors
def admin_list(status: str | None, as_json: bool) -> None:
    """The lab's incidents, newest first, with the time each took to contain."""
    incidents = logged_in().get("/api/v1/incidents" + (f"?status={status}" if status else ""))
    emit(incidents, as_json, lambda _: table(_rows(incidents), LIST_COLUMNS))


@admin_incident.command("show")
@click.argument("incident_id", type=click.UUID)
@json_option
@handles_errors
def admin_show(incident_id: Any, as_json: bool) -> None:
    """One incident with its timeline and notifications."""
    emit(logged_in().get(f"/api/v1/incidents/{incident_id}"), as_json, describe)


@admin_incident.command("contain")
@click.argument("incident_id", type=click.UUID)
@click.option("--device", "device_id", type=click.UUID, help="Revoke this device of the technician.")
@click.option("--note", help="What you did to contain it.")
@json_option
@handles_errors
def admin_contain(incident_id: Any, device_id: Any, note: str | None, as_json: bool) -> None:
    """Mark the incident contained, revoking a device (its sessions end, its uploads are aborted) if named."""
    body = {"device_id": str(device_id) if device_id else None, "note": note}
    emit(logged_in().post(f"/api/v1/incidents/{incident_id}/contain", body), as_json, describe)


@admin_incident.command("resolve")
@click.argument("incident_id", type=click.UUID)
@click.option("--note", required=True, help="What was found and done.")
@json_option
@handles_errors
def admin_resolve(incident_id: Any, note: str, as_json: bool) -> None:
    """Close the incident with what was found and done."""
    emit(logged_in().post(f"/api/v1/incidents/{incident_id}/resolve", {"note": note}), as_json, describe)


@admin_incident.command("note")
@click.argument("incident_id", type=click.UUID)
@click.argument("text")
@json_option
@handles_errors
def admin_note(incident_id: Any, text: str, as_json: bool) -> None:
    """Add a note to the incident's timeline."""
    emit(logged_in().post(f"/api/v1/incidents/{incident_id}/notes", {"text": text}), as_json, describe)


@admin_incident.command("plan-template")
def admin_plan_template() -> None:
    """Print the shipped plan template (TOML) to fill in with your lab's contacts and phone numbers."""
    click.echo(plan_template(), nl=False)


@admin_incident.command("plan-publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@handles_errors
def admin_plan_publish(file: Path, as_json: bool) -> None:
    """Publish FILE (TOML, like `plan-template` prints, with a new `version`) as the plan in force (G17)."""
    result = logged_in().post("/api/v1/documents/incident-plan", {"body": file.read_text(encoding="utf-8")})
    emit(result, as_json, f"Incident plan version {result['version']} published; technicians see it at once.")
