"""`dentgate tech …`: a technician's device enrolment and posture (G7–G9, G15)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import click

from clients.commands.common import emit, handles_errors, json_option, logged_in
from clients.commands.session import activate, current_posture
from clients.uploader import DesignRequest, UploadFailed, gateway_key, upload_design
from gateway.errors import DentGateError

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


@tech.command("upload")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--case", "case_reference", required=True, help="The lab's case (instruction-form) number.")
@click.option("--station", "stations", multiple=True, required=True, help="Target station id (repeatable).")
@click.option("--process", default="design", show_default=True, help="The process (工程) for the 歯科技工録.")
@click.option("--location", required=True, help="Where you work from (your registered remote location's label).")
@click.option("--tooth", "teeth", multiple=True, help="Tooth number (repeatable).")
@click.option("--tooth-system", type=click.Choice(["FDI", "Universal"]), default="FDI", show_default=True)
@click.option("--material", help="Main material, e.g. zirconia.")
@json_option
@handles_errors
def upload(
    files: tuple[Path, ...],
    case_reference: str,
    stations: tuple[str, ...],
    process: str,
    location: str,
    teeth: tuple[str, ...],
    tooth_system: str,
    material: str | None,
    as_json: bool,
) -> None:
    """Check, encrypt on this device, sign and send a design to the lab's station(s); prints the receipt."""
    client = logged_in()
    me = client.get("/api/v1/me")
    if me["device_id"] is None:
        raise click.ClickException("log in with --device from your approved device to upload")
    request = DesignRequest(
        files=list(files),
        case_reference=case_reference,
        station_ids=[uuid.UUID(s) for s in stations],
        process=process,
        remote_location=location,
        teeth=list(teeth),
        tooth_system=tooth_system,
        material=material,
    )
    try:
        with click.progressbar(length=1, label="Uploading", file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            result = upload_design(
                client, request, uuid.UUID(me["account_id"]), uuid.UUID(me["device_id"]), gateway_key(client), progress
            )
    except DentGateError as error:
        raise click.ClickException(error.detail) from None
    except UploadFailed as error:
        raise click.ClickException(str(error)) from None
    shown = {"design_id": str(result.design_id), "receipt": result.signed_receipt, "warnings": result.warnings}
    emit(shown, as_json, lambda r: f"Design {r['design_id']} received by the gateway (receipt verified)."
         + "".join(f"\n  warning: {w}" for w in r["warnings"]))  # fmt: skip
