"""`dentgate admin …`: the server-side bootstrap and the manager's account, device and station commands."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from clients.commands.common import emit, handles_errors, json_option, logged_in, table

ACCOUNT_COLUMNS = ["id", "username", "role", "status", "identity_verified", "locked_until"]
DEVICE_COLUMNS = ["id", "name", "account_id", "status", "ownership", "thumbprint"]
STATION_COLUMNS = ["id", "name", "maker", "model", "serial_number", "status", "fingerprint"]


@click.command("init")
@click.option("--lab", required=True, help="Name of the new lab.")
@click.option("--manager", required=True, help="Username of its first manager.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="TOML configuration.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Embedded data directory.")
@json_option
def init(lab: str, manager: str, config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Create a lab and its first manager on this server; prints the manager's one-time activation secret."""
    from clients.cli import load_settings
    from gateway.backends import open_backends
    from gateway.db.engine import transaction
    from gateway.db.migrate import migrate
    from gateway.errors import DentGateError
    from gateway.identity.accounts import init_lab
    from gateway.policy import default_policy

    backends = open_backends(load_settings(config_file, data_dir=data_dir))
    try:
        migrate(backends.engine)
        with transaction(backends.sessions) as session:
            issued = init_lab(session, lab, manager, default_policy().identity)
            result = {"lab": lab, "manager": issued.account.username, "activation_secret": issued.activation_secret}
    except DentGateError as error:
        raise click.ClickException(error.detail) from None
    finally:
        backends.close()
    emit(
        result,
        as_json,
        lambda r: (
            f"Lab {r['lab']!r} created. Give {r['manager']} this one-time activation secret:\n"
            f"  {r['activation_secret']}"
        ),
    )


@click.group()
def user() -> None:
    """Accounts of your lab."""


@user.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["technician", "manager", "auditor"]), required=True)
@json_option
@handles_errors
def user_add(username: str, role: str, as_json: bool) -> None:
    """Create an account; hand the printed activation secret to the person."""
    result = logged_in().post("/api/v1/accounts", {"username": username, "role": role})
    emit(
        result,
        as_json,
        lambda r: f"{r['account']['username']} ({r['account']['id']}): activation secret {r['activation_secret']}",
    )


@user.command("list")
@json_option
@handles_errors
def user_list(as_json: bool) -> None:
    rows = logged_in().get("/api/v1/accounts")
    emit(rows, as_json, lambda r: table(r, ACCOUNT_COLUMNS))


@user.command("verify-identity")
@click.argument("account_id")
@click.option("--method", type=click.Choice(["in-person", "video-call", "document-copy"]), required=True)
@click.option("--document-type", required=True, help="e.g. driver-licence, my-number-card, passport")
@click.option("--date", "verified_on", type=click.DateTime(["%Y-%m-%d"]), default=str(date.today()), show_default=True)
@json_option
@handles_errors
def user_verify_identity(account_id: str, method: str, document_type: str, verified_on, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Record how you verified the person's identity (G6); until then they can only enrol a device."""
    body = {"method": method, "document_type": document_type, "verified_on": verified_on.date().isoformat()}
    result = logged_in().post(f"/api/v1/accounts/{account_id}/identity-verification", body)
    emit(result, as_json, f"Identity of {result['username']} recorded as verified.")


@user.command("profile")
@click.argument("account_id")
@click.option("--full-name", required=True, help="As on the licence, e.g. 田中 花子.")
@click.option("--licence", "licence_number", required=True, help="歯科技工士免許 number.")
@click.option("--phone", required=True, help="A number the lab and the prefecture can reach them on.")
@click.option("--location-label", required=True, help="Main remote location: 自宅 (home) or a name, e.g. サテライト.")
@click.option("--address", "location_address", required=True, help="Its address in Japan.")
@click.option("--prefecture", required=True, help="One of the 47, written as 東京都, 大阪府, 京都府, 北海道 …")
@click.option("--not-employed", is_flag=True, help="The person does not (or no longer) work for this lab (G1).")
@json_option
@handles_errors
def user_profile(account_id: str, not_employed: bool, as_json: bool, **fields: str) -> None:
    """Record a technician's licence, contact and main remote location (G1, G3); each change is kept as history
    and shows on the prefecture roster as unfiled until the next roster export."""
    body = {**fields, "employed_by_lab": not not_employed}
    result = logged_in().request("PUT", f"/api/v1/accounts/{account_id}/profile", body)
    emit(result, as_json, f"Profile of {result['full_name']} recorded; file the roster again (admin roster export).")


@user.command("profile-history")
@click.argument("account_id")
@json_option
@handles_errors
def user_profile_history(account_id: str, as_json: bool) -> None:
    """Every version of the technician's profile, newest first, with who changed it and when (G3)."""
    versions = logged_in().get(f"/api/v1/accounts/{account_id}/profile/history")
    columns = ["changed_at", "full_name", "licence_number", "phone", "location_label", "location_address"]
    emit(versions, as_json, table(versions, columns))


@user.command("reset")
@click.argument("account_id")
@json_option
@handles_errors
def user_reset(account_id: str, as_json: bool) -> None:
    """Start the account over: a new activation secret, a new password and authenticator."""
    result = logged_in().post(f"/api/v1/accounts/{account_id}/reset")
    emit(result, as_json, lambda r: f"New activation secret for {r['account']['username']}: {r['activation_secret']}")


@user.command("disable")
@click.argument("account_id")
@json_option
@handles_errors
def user_disable(account_id: str, as_json: bool) -> None:
    """Disable the account; its sessions stop working at their next request."""
    result = logged_in().post(f"/api/v1/accounts/{account_id}/disable")
    emit(result, as_json, f"{result['username']} disabled.")


@click.group()
def device() -> None:
    """Technicians' devices."""


@device.command("list")
@json_option
@handles_errors
def device_list(as_json: bool) -> None:
    rows = logged_in().get("/api/v1/devices")
    emit(rows, as_json, lambda r: table(r, DEVICE_COLUMNS))


@device.command("approve")
@click.argument("device_id")
@click.option("--ownership", type=click.Choice(["lab-lent", "personal"]), required=True)
@click.option("--administrable", is_flag=True, help="You can administer this personal device's settings (G8).")
@json_option
@handles_errors
def device_approve(device_id: str, ownership: str, administrable: bool, as_json: bool) -> None:
    body = {"ownership": ownership, "manager_can_administer": administrable}
    result = logged_in().post(f"/api/v1/devices/{device_id}/approve", body)
    emit(result, as_json, f"Device {result['name']} approved ({ownership}).")


@device.command("revoke")
@click.argument("device_id")
@click.option("--reason", required=True)
@json_option
@handles_errors
def device_revoke(device_id: str, reason: str, as_json: bool) -> None:
    """Revoke a device at once; its open sessions end."""
    result = logged_in().post(f"/api/v1/devices/{device_id}/revoke", {"reason": reason})
    emit(result, as_json, f"Device {result['name']} revoked.")


@click.group()
def station() -> None:
    """Milling stations."""


@station.command("invite")
@click.option("--name", required=True)
@click.option("--maker", required=True)
@click.option("--model", required=True)
@click.option("--serial", "serial_number", required=True)
@click.option("--location", required=True, help="Where the machine stands in the lab.")
@json_option
@handles_errors
def station_invite(name: str, maker: str, model: str, serial_number: str, location: str, as_json: bool) -> None:
    """Issue a one-time enrolment code for a station; enter it on the station with `dentgate station enroll`."""
    body = {"name": name, "maker": maker, "model": model, "serial_number": serial_number, "location": location}
    result = logged_in().post("/api/v1/stations/invitations", body)
    emit(result, as_json, lambda r: f"Station {r['station']['id']}: enrolment code {r['enrolment_code']}")


@station.command("list")
@json_option
@handles_errors
def station_list(as_json: bool) -> None:
    rows = logged_in().get("/api/v1/stations")
    emit(rows, as_json, lambda r: table(r, STATION_COLUMNS))


@station.command("approve")
@click.argument("station_id")
@click.option("--fingerprint", required=True, help="The fingerprint the station showed when it enrolled.")
@json_option
@handles_errors
def station_approve(station_id: str, fingerprint: str, as_json: bool) -> None:
    """Approve a station after comparing the fingerprint it shows with the one enrolled."""
    result = logged_in().post(f"/api/v1/stations/{station_id}/approve", {"fingerprint": fingerprint})
    emit(result, as_json, f"Station {result['name']} approved.")


@station.command("revoke")
@click.argument("station_id")
@click.option("--reason", required=True)
@json_option
@handles_errors
def station_revoke(station_id: str, reason: str, as_json: bool) -> None:
    result = logged_in().post(f"/api/v1/stations/{station_id}/revoke", {"reason": reason})
    emit(result, as_json, f"Station {result['name']} revoked.")
