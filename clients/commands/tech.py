"""`dentgate tech …`: a technician's device enrolment and posture (G7–G9, G15)."""

from __future__ import annotations

from pathlib import Path

import click

from clients.commands.common import emit, handles_errors, json_option, logged_in
from clients.commands.session import activate, current_posture

posture_file_option = click.option(
    "--posture-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Posture report JSON."
)


@click.group()
def tech() -> None:
    """Technician commands."""


tech.add_command(activate)


@tech.command("enroll-device")
@click.option("--name", required=True, help="A name for this device, e.g. 'CAD PC at home'.")
@posture_file_option
@json_option
@handles_errors
def enroll_device(name: str, posture_file: Path | None, as_json: bool) -> None:
    """Enrol this device (log in with --device first); it waits for your manager's approval."""
    result = logged_in().post("/api/v1/devices", {"name": name, "posture": current_posture(posture_file)})

    def text(r: dict) -> str:
        lines = [f"Device {r['device']['id']} enrolled; waiting for approval. Key {r['device']['thumbprint']}"]
        lines += [f"  posture: {f['message']} ({f['requirement']})" for f in r["posture_failures"]]
        return "\n".join(lines)

    emit(result, as_json, text)


@tech.command("posture")
@posture_file_option
@click.option("--send/--no-send", default=True, show_default=True, help="Send the report to the gateway's ledger.")
@json_option
@handles_errors
def posture(posture_file: Path | None, send: bool, as_json: bool) -> None:
    """Show this device's security posture and what the lab's policy says of it."""
    report = current_posture(posture_file)
    if not send:
        emit(report, as_json, lambda r: "\n".join(f"{k}: {v}" for k, v in r.items() if k != "installed_applications"))
        return
    result = logged_in().post("/api/v1/devices/posture", {"posture": report})
    emit(
        result,
        as_json,
        lambda r: (
            "Compliant." if r["compliant"] else "\n".join(f"{f['message']} ({f['requirement']})" for f in r["failures"])
        ),
    )
