"""`dentgate station …`: the milling station agent's enrolment, and pulling designs into the CAM import folder."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click

from clients.api import GatewayClient
from clients.commands.common import emit, handles_errors, json_option
from clients.identities import create_station_identity, load_station_identity
from clients.profile import client_home, key_store
from clients.station_agent import (
    StationAgent,
    StationAgentError,
    load_pinned_gateway_key,
    load_station_record,
    pin_gateway_key,
    save_station_record,
)

import_dir_option = click.option(
    "--import-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The CAM software's import folder.",
)


@click.group()
def station() -> None:
    """Milling station agent commands."""


@station.command("enroll")
@click.option("--gateway", required=True, help="Gateway URL.")
@click.option("--code", required=True, help="The enrolment code a manager issued for this station.")
@json_option
@handles_errors
def enroll(gateway: str, code: str, as_json: bool) -> None:
    """Make this station's keys, enrol them with the code, and show the fingerprint for the manager to compare."""
    home = client_home()
    try:
        pin_gateway_key(home, gateway)  # first: a gateway with another key than the pinned one gets nothing
    except StationAgentError as error:
        raise click.ClickException(str(error)) from None
    identity = create_station_identity(key_store(home))
    result = GatewayClient(gateway, identity.signing_key).post(
        "/api/v1/stations/enrol", {"enrolment_code": code, "age_recipient": identity.age_recipient}, authenticated=False
    )
    save_station_record(home, gateway, result["id"])
    emit(
        result,
        as_json,
        lambda r: (
            f"Enrolled as station {r['id']}; waiting for approval.\n"
            f"  Fingerprint (read this to the manager): {r['fingerprint']}\n  age recipient: {r['age_recipient']}"
        ),
    )


def _agent(import_dir: Path) -> StationAgent:
    home = client_home()
    try:
        record = load_station_record(home)
        pinned = load_pinned_gateway_key(home)
    except StationAgentError as error:
        raise click.ClickException(str(error)) from None
    identity = load_station_identity(key_store(home))
    return StationAgent(record.gateway, identity, record.station_id, import_dir, pinned, home / "work")


def _describe(delivery) -> str:
    if delivery is None:
        return "No job waiting."
    if delivery.rejected_reason is not None:
        return f"Rejected design {delivery.design_id}: {delivery.rejected_reason}"
    files = "\n".join(f"  {path}" for path in delivery.written)
    state = "acknowledged" if delivery.acknowledged else "NOT acknowledged (will be delivered again)"
    return f"Imported design {delivery.design_id} ({state}):\n{files}"


@station.command("once")
@import_dir_option
@click.option("--wait", default=0.0, type=click.FloatRange(0, 30), show_default=True, help="Seconds to wait for a job.")
@json_option
@handles_errors
def once(import_dir: Path, wait: float, as_json: bool) -> None:
    """Claim, verify and import at most one design; exit status 1 if it was rejected."""
    agent = _agent(import_dir)
    agent.sweep_leftovers()
    agent.session()
    try:
        delivery = agent.run_once(wait)
    except StationAgentError as error:
        raise click.ClickException(str(error)) from None
    emit(None if delivery is None else delivery.as_dict(), as_json, lambda _: _describe(delivery))
    if delivery is not None and delivery.rejected_reason is not None:
        raise SystemExit(1)


@station.command("run")
@import_dir_option
@click.option("--wait", default=25.0, type=click.FloatRange(0, 30), show_default=True, help="Long-poll seconds.")
@handles_errors
def run(import_dir: Path, wait: float) -> None:
    """Pull designs until stopped (SIGTERM or Ctrl-C), reconnecting with back-off."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    agent = _agent(import_dir)
    stop = threading.Event()

    def stop_on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    click.echo(f"Station {agent.station_id} pulling from {agent.gateway_url} into {import_dir}.")
    agent.run_forever(stop, wait=wait)
    click.echo("Stopped.")
