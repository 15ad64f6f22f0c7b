"""Activation, login and logout for people (G6): password + TOTP, the token bound to a key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.api import GatewayClient
from clients.commands.common import emit, handles_errors, json_option, logged_in, password_stdin_option, read_password
from clients.profile import Login, client_home, device_key, forget_login, keep_session_key, save_login

gateway_option = click.option("--gateway", required=True, help="Gateway URL, e.g. https://gateway.example-lab.jp")
lab_option = click.option("--lab", required=True, help="The lab's name as registered on the gateway.")
username_option = click.option("--username", required=True, help="Your username.")


@click.command()
@gateway_option
@lab_option
@username_option
@click.option("--activation-secret", required=True, help="The one-time secret your manager gave you.")
@password_stdin_option
@click.option("--totp", help="Confirm the authenticator with this code (second step).")
@json_option
@handles_errors
def activate(
    gateway: str, lab: str, username: str, activation_secret: str, password_stdin: bool, totp: str | None, as_json: bool
) -> None:
    """Activate a new account: set the password, enrol an authenticator app, keep the recovery codes.

    Without --totp: sets the password and shows the authenticator QR code, then asks for a code
    (or, with --json, prints the secret and stops; run again with --totp CODE to finish).
    """
    client = GatewayClient(gateway, Ed25519PrivateKey.generate())
    body: dict[str, Any] = {"lab": lab, "username": username, "activation_secret": activation_secret}
    if totp is None:
        enrolment = client.post(
            "/api/v1/auth/activate",
            {**body, "password": read_password(password_stdin, "New password")},
            authenticated=False,
        )
        if as_json:
            emit(enrolment, True, "")
            return
        click.echo("Scan this with your authenticator app (or enter the secret by hand):")
        segno.make(enrolment["totp_uri"]).terminal(compact=True)
        click.echo(f"secret: {enrolment['totp_secret']}")
        totp = click.prompt("Code from the app")
    codes = client.post("/api/v1/auth/activate/confirm", {**body, "totp": totp}, authenticated=False)
    emit(
        codes,
        as_json,
        lambda r: (
            "Account active. Keep these recovery codes somewhere safe; each works once:\n"
            + "\n".join(f"  {c}" for c in r["recovery_codes"])
        ),
    )


@click.command()
@gateway_option
@lab_option
@username_option
@password_stdin_option
@click.option("--totp", help="The current code from your authenticator app.")
@click.option("--recovery-code", help="A recovery code instead of the TOTP code.")
@click.option("--device", is_flag=True, help="Log in from this enrolled device (technicians); sends its posture.")
@click.option(
    "--posture-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Posture report JSON."
)
@json_option
@handles_errors
def login(
    gateway: str,
    lab: str,
    username: str,
    password_stdin: bool,
    totp: str | None,
    recovery_code: str | None,
    device: bool,
    posture_file: Path | None,
    as_json: bool,
) -> None:
    """Log in with password and TOTP; the session is bound to this device's key (or a key made for it)."""
    home = client_home()
    password = read_password(password_stdin)
    if not totp and not recovery_code:
        totp = click.prompt("Code from the authenticator app")
    key = device_key(home, create=True) if device else Ed25519PrivateKey.generate()
    body: dict[str, Any] = {"lab": lab, "username": username, "password": password}
    body.update({"totp": totp} if totp else {"recovery_code": recovery_code})
    if device:
        body["posture"] = current_posture(posture_file)
    result = GatewayClient(gateway, key).post("/api/v1/auth/login", body, authenticated=False)
    if not device:
        keep_session_key(home, key)
    save_login(home, Login(gateway, lab, username, result["token"], result["role"], result["scope"], device))
    shown = {k: result[k] for k in ("role", "scope", "expires_at", "device_id")}
    emit(
        shown,
        as_json,
        lambda r: f"Logged in as {username} ({r['role']}, {r['scope']} session until {r['expires_at']}).",
    )


def current_posture(posture_file: Path | None) -> dict[str, Any]:
    """A recorded posture report, or one collected from this machine now (G7–G9)."""
    if posture_file is not None:
        return json.loads(posture_file.read_text(encoding="utf-8"))
    from clients.posture.collect import collect_posture

    return collect_posture().model_dump(mode="json")


@click.command()
@handles_errors
def logout() -> None:
    """End the session on the gateway and forget it here."""
    logged_in().post("/api/v1/auth/logout")
    forget_login(client_home())
    click.echo("Logged out.")
