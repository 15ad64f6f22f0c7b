"""`dentgate station …`: the milling station agent's enrolment."""

from __future__ import annotations

import click

from clients.api import GatewayClient
from clients.commands.common import emit, handles_errors, json_option
from clients.identities import create_station_identity
from clients.profile import client_home, key_store


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
    identity = create_station_identity(key_store(client_home()))
    result = GatewayClient(gateway, identity.signing_key).post(
        "/api/v1/stations/enrol", {"enrolment_code": code, "age_recipient": identity.age_recipient}, authenticated=False
    )
    emit(
        result,
        as_json,
        lambda r: (
            f"Enrolled as station {r['id']}; waiting for approval.\n"
            f"  Fingerprint (read this to the manager): {r['fingerprint']}\n  age recipient: {r['age_recipient']}"
        ),
    )
