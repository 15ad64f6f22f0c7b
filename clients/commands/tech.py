"""`dentgate tech …`: a technician's device and posture (G7–G9, G15), uploads, the export watcher and status (G11)."""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click

from clients.api import ApiError
from clients.commands.common import emit, handles_errors, json_option, logged_in
from clients.commands.session import activate, current_posture
from clients.prefill import fill_request
from clients.uploader import DesignRequest, UploadFailed, gateway_key, upload_design
from clients.watch_upload import make_sender
from clients.watcher import AfterUpload, Watcher, WatchSettings
from gateway.errors import DentGateError
from gateway.policy import default_policy

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
@click.option(
    "--case",
    "case_reference",
    help="The lab's case (instruction-form) number; optional when an exocad .constructionInfo or 3Shape order "
    "XML among the files names the case.",
)
@click.option(
    "--station", "stations", multiple=True, required=True, type=click.UUID, help="Target station id (repeatable)."
)
@click.option("--process", default="design", show_default=True, help="The process (工程) for the 歯科技工録.")
@click.option("--location", required=True, help="Where you work from (your registered remote location's label).")
@click.option("--tooth", "teeth", multiple=True, help="Tooth number (repeatable); default: the companion's teeth.")
@click.option("--tooth-system", type=click.Choice(["FDI", "Universal"]), default="FDI", show_default=True)
@click.option("--material", help="Main material, e.g. zirconia; default: the companion's materials.")
@json_option
@handles_errors
def upload(
    files: tuple[Path, ...],
    case_reference: str | None,
    stations: tuple[uuid.UUID, ...],
    process: str,
    location: str,
    teeth: tuple[str, ...],
    tooth_system: str,
    material: str | None,
    as_json: bool,
) -> None:
    """Check, encrypt on this device, sign and send a design to the lab's station(s); prints the receipt.

    Teeth, material and (without --case) the case are taken from an exocad .constructionInfo or a 3Shape order
    XML among the files when you do not give them.
    """
    client = logged_in()
    me = client.get("/api/v1/me")
    if me["device_id"] is None:
        raise click.ClickException("log in with --device from your approved device to upload")
    draft = DesignRequest(
        files=list(files),
        case_reference=case_reference,
        station_ids=list(stations),
        process=process,
        remote_location=location,
        teeth=list(teeth),
        tooth_system=tooth_system,
        material=material,
    )
    try:
        request, filled = fill_request(draft)
        if request.case_reference is None:
            raise click.ClickException(
                "no case reference: give --case (the lab's instruction-form number); none of the files is an exocad "
                ".constructionInfo or 3Shape order XML that names the case"
            )
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
    shown = {
        "design_id": str(result.design_id),
        "case_reference": request.case_reference,
        "receipt": result.signed_receipt,
        "filled_from_companions": {
            "sources": list(filled.sources),
            "case_reference": filled.case_reference,
            "teeth": [dataclasses.asdict(t) for t in filled.teeth],
            "material": filled.material,
        },
        "warnings": [*filled.warnings, *result.warnings],
    }

    def text(r: dict) -> str:
        lines = [f"Design {r['design_id']} (case {r['case_reference']}) received by the gateway (receipt verified)."]
        described = filled.describe()
        lines += [f"  filled {described}"] if described else []
        lines += [f"  warning: {w}" for w in r["warnings"]]
        return "\n".join(lines)

    emit(shown, as_json, text)


@tech.command("watch")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--station", "stations", multiple=True, required=True, type=click.UUID, help="Target station id (repeatable)."
)
@click.option("--location", required=True, help="Where you work from (your registered remote location's label).")
@click.option("--process", default="design", show_default=True, help="The process (工程) for the 歯科技工録.")
@click.option("--once", is_flag=True, help="Handle what is finished now (after one settling time) and exit.")
@click.option(
    "--settle-seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="How long a file must stay unchanged to count as finished (default: the policy's).",
)
@click.option(
    "--ignore", "extra_ignore", multiple=True, help="Another name pattern never to send (adds to the policy's)."
)
@click.option(
    "--after-upload",
    type=click.Choice(["archive", "delete"]),
    help="What to do with sent files (default: the policy's): move to FOLDER/.dentgate-sent/<date>/, or delete.",
)
@handles_errors
def watch(
    folder: Path,
    stations: tuple[uuid.UUID, ...],
    location: str,
    process: str,
    once: bool,
    settle_seconds: float | None,
    extra_ignore: tuple[str, ...],
    after_upload: AfterUpload | None,
) -> None:
    """Send the CAD exports saved into FOLDER: one sub-folder (or one file stem) per case.

    A bundle goes once its files stop changing; sent files are archived or deleted as the policy says, refused
    ones are moved to FOLDER/.dentgate-failed/ with the reason beside them. Runs until Ctrl-C or SIGTERM.
    """
    try:
        send = make_sender(logged_in, list(stations), process, location)
    except (UploadFailed, DentGateError) as error:
        raise click.ClickException(getattr(error, "detail", None) or str(error)) from None
    settings = WatchSettings.from_policy(default_policy().watch, settle_seconds, extra_ignore, after_upload)
    watcher = Watcher(folder, settings, send, say=lambda line: click.echo(f"{datetime.now():%H:%M:%S} {line}"))
    if once:
        outcomes = watcher.run_once()
        if not outcomes:
            click.echo("Nothing finished to send.", err=True)
        if any(outcome.state != "sent" for outcome in outcomes):
            click.get_current_context().exit(1)
        return
    click.echo(
        f"Watching {folder} (finished after {settings.settle_seconds:g} s unchanged; sent files are "
        f"{'archived' if settings.after_upload == 'archive' else 'deleted'}). Ctrl-C to stop.",
        err=True,
    )
    stop = threading.Event()
    with stop_on_signals(stop):
        watcher.run(stop)
    click.echo("Stopped.", err=True)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM sets `stop` (a bundle being sent is finished first); a second one interrupts at once."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler_before in previous.items():
            signal.signal(number, handler_before)


JOB_STATES = {
    "available": "waiting for the station to fetch it",
    "claimed": "the station is fetching it",
    "acknowledged": "delivered: in the station's import folder",
    "rejected": "the station refused it",
    "declined": "the station cannot mill it now; the lab may requeue it",
    "cancelled": "cancelled",
}


@tech.command("status")
@click.argument("design_id", required=False, type=click.UUID)
@json_option
@handles_errors
def status(design_id: uuid.UUID | None, as_json: bool) -> None:
    """Your designs (newest first), or the one DESIGN_ID, and where each delivery to a station stands."""
    client = logged_in()
    result = client.get(f"/api/v1/designs/{design_id}") if design_id else client.get("/api/v1/designs")
    if as_json:
        emit(result, True, "")
        return
    try:
        names = {s["id"]: s["name"] for s in client.get("/api/v1/lab/recipients")["stations"]}
    except ApiError:
        names = {}  # station names are a nicety; ids do
    designs = [result] if design_id else result
    click.echo("\n".join(design_lines(d, names) for d in designs) if designs else "You have sent no designs yet.")


def design_lines(design: dict, station_names: dict[str, str]) -> str:
    """A design's line and one line per delivery job, for `tech status`."""
    lines = [
        f"{design['case_reference']}  design {design['id']}  {design['status']}, sent {_when(design['committed_at'])}"
        f", {_size(design['ciphertext_size'])}"
    ]
    jobs = design.get("jobs")
    if jobs is None:
        lines.append("  (this gateway does not report deliveries yet)")
    elif not jobs:
        lines.append("  (no deliveries)")
    for job in jobs or []:
        station = station_names.get(job["station_id"], f"station {job['station_id']}")
        meaning = JOB_STATES.get(job["state"], job["state"])
        reason = f": {job['reason']}" if job.get("reason") else ""
        lines.append(
            f"  {station}: {job['state']} ({meaning}{reason}); attempts {job['attempts']}, "
            f"updated {_when(job['updated_at'])}"
        )
    return "\n".join(lines)


def _when(text: str | None) -> str:
    if not text:
        return "-"
    try:
        return f"{datetime.fromisoformat(text).astimezone():%Y-%m-%d %H:%M}"
    except ValueError:
        return text


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
