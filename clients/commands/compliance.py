"""The guideline's paperwork from the command line: the lab's security policy (G16), training (G21), attestations
(G5, G8, G15), the prefecture roster (G3), and a technician's readiness to upload."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from clients.api import GatewayClient
from clients.commands.common import emit, handles_errors, json_option, logged_in, table

POLICY = "/api/v1/documents/security-policy"
date_option = click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD (default: today).")


def _account_id(client: GatewayClient, username: str) -> str:
    for account in client.get("/api/v1/accounts"):
        if account["username"] == username.strip().lower():
            return account["id"]
    raise click.ClickException(f"no account {username!r} in your lab (see `dentgate admin user list`)")


def _day(on: datetime | None) -> str | None:
    return on.date().isoformat() if on else None


def _document_text(found: dict[str, Any]) -> str:
    if not found["published"]:
        return f"{found['message']}\n(template version {found['template_version']})\n\n{found['template']}"
    document = found["document"]
    head = f"Version {document['version']}, published {document['published_at']} (SHA-256 {document['sha256']})"
    return f"{head}\n\n{document['body']}"


# --- the manager's commands ---------------------------------------------------------------------------------------


@click.group("policy")
def admin_policy() -> None:
    """The lab's security policy (G16): publish a version, see it, its history and who acknowledged it."""


@admin_policy.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@handles_errors
def policy_publish(file: Path, as_json: bool) -> None:
    """Publish FILE (TOML, like policies/default.toml with a new `version`); it is in force at once."""
    result = logged_in().post(POLICY, {"body": file.read_text(encoding="utf-8")})
    emit(result, as_json, f"Security policy version {result['version']} published and in force.")


@admin_policy.command("show")
@json_option
@handles_errors
def policy_show(as_json: bool) -> None:
    """The policy in force (or, before you publish one, the shipped template)."""
    emit(logged_in().get(POLICY), as_json, _document_text)


@admin_policy.command("history")
@json_option
@handles_errors
def policy_history(as_json: bool) -> None:
    """Every published version, newest first."""
    rows = logged_in().get(f"{POLICY}/history")
    emit(rows, as_json, lambda r: table(r, ["version", "published_at", "published_by", "sha256"]))


@admin_policy.command("acknowledgements")
@json_option
@handles_errors
def policy_acknowledgements(as_json: bool) -> None:
    """Who has and who has not acknowledged the version in force."""
    result = logged_in().get(f"{POLICY}/acknowledgements")

    def text(r: dict[str, Any]) -> str:
        columns = ["username", "role", "acknowledged_at"]
        return (
            f"Version {r['version']}\nAcknowledged:\n{table(r['acknowledged'], columns)}\n"
            f"Not yet acknowledged:\n{table(r['not_acknowledged'], ['username', 'role'])}"
        )

    emit(result, as_json, text)


@click.group("training")
def training() -> None:
    """Training of managers and technicians (G21)."""


@training.command("add")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), required=True, help="When it was held.")
@click.option("--title", required=True)
@click.option("--provider", required=True, help="Who gave it, e.g. the prefectural dental technicians' association.")
@click.option("--topic", "topics", multiple=True, required=True, help="Curriculum topic id (repeatable).")
@click.option("--duration", type=click.IntRange(1), required=True, help="Minutes.")
@click.option("--attendee", "attendees", multiple=True, required=True, help="Username (repeatable).")
@json_option
@handles_errors
def training_add(
    on: datetime, title: str, provider: str, topics: tuple[str, ...], duration: int, attendees: tuple[str, ...],
    as_json: bool,
) -> None:  # fmt: skip
    """Record a training that was held, and who attended it."""
    client = logged_in()
    body = {"held_on": on.date().isoformat(), "title": title, "provider": provider, "topics": list(topics),
            "duration_minutes": duration, "attendees": [_account_id(client, a) for a in attendees]}  # fmt: skip
    result = client.post("/api/v1/training", body)
    names = ", ".join(a["username"] for a in result["attendees"])
    emit(result, as_json, f"Training of {result['held_on']} recorded ({', '.join(result['topics'])}) for {names}.")


@training.command("list")
@json_option
@handles_errors
def training_list(as_json: bool) -> None:
    """The lab's training sessions, newest first."""
    rows = logged_in().get("/api/v1/training")
    shown = [{**r, "topics": ",".join(r["topics"]), "attendees": ",".join(a["username"] for a in r["attendees"])}
             for r in rows]  # fmt: skip
    columns = ["held_on", "title", "provider", "topics", "duration_minutes", "attendees"]
    emit(rows, as_json, lambda _: table(shown, columns))


@training.command("due")
@json_option
@handles_errors
def training_due(as_json: bool) -> None:
    """Who is current, due soon (30 days), overdue or never trained, and when each runs out."""
    rows = logged_in().get("/api/v1/training/due")
    shown = [{**r, "missing_topics": ",".join(r["missing_topics"])} for r in rows]
    columns = ["username", "role", "status", "due_on", "last_trained_on", "missing_topics"]
    emit(rows, as_json, lambda _: table(shown, columns))


@click.command("attest")
@click.argument("username")
@click.argument("kind")
@date_option
@click.option("--device", "device_id", help="The personal device's id (personal-device-administration).")
@click.option("--statement", help="What was confirmed (default: the standard text of KIND).")
@json_option
@handles_errors
def admin_attest(
    username: str, kind: str, on: datetime | None, device_id: str | None, statement: str | None, as_json: bool
) -> None:
    """Confirm a technician's measure KIND (privacy-filter, screen-lock, removable-media,
    personal-device-administration) as of --date (G5: the manager confirms)."""
    client = logged_in()
    body = {"kind": kind, "attested_on": _day(on), "device_id": device_id, "statement": statement}
    result = client.post(f"/api/v1/accounts/{_account_id(client, username)}/attestations", body)
    emit(result, as_json, f"{kind} of {username} confirmed as of {result['attested_on']}.")


ATTESTATION_COLUMNS = ["username", "kind", "requirement", "status", "attested_on", "valid_until", "device_id"]


@click.command("attestations")
@json_option
@handles_errors
def attestations(as_json: bool) -> None:
    """Every technician's required attestations: current, expired or missing."""
    rows = logged_in().get("/api/v1/attestations")
    emit(rows, as_json, lambda r: table(r, ATTESTATION_COLUMNS))


@click.group("roster")
def roster() -> None:
    """The roster of remote workers filed with the prefecture (G3)."""


@roster.command("show")
@json_option
@handles_errors
def roster_show(as_json: bool) -> None:
    """The roster as it stands; `unfiled` marks a change the prefecture has not been sent yet."""
    result = logged_in().get("/api/v1/roster")

    def text(r: dict[str, Any]) -> str:
        columns = ["username", "full_name", "phone", "location", "licence_number", "unfiled"]
        last = r["last_export"]
        lines = [r["lab"], table(r["rows"], columns)]
        lines.append(f"Last export: {last['exported_at']} ({last['format']})" if last else "Never exported.")
        if r["unfiled_changes"] or r["no_longer_listed"]:
            gone = ", ".join(p["username"] for p in r["no_longer_listed"]) or "none"
            lines.append(f"To file: {r['unfiled_changes']} changed, no longer listed: {gone}. Run `roster export`.")
        return "\n".join(lines)

    emit(result, as_json, text)


@roster.command("export")
@click.option("--format", "file_format", type=click.Choice(["pdf", "csv"]), default="pdf", show_default=True)
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
@click.option("--out", "output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@json_option
@handles_errors
def roster_export(file_format: str, lang: str, output: Path, as_json: bool) -> None:
    """Write the roster to --out as the filing's attachment; from now on it counts as filed."""
    data, headers = logged_in().download("POST", "/api/v1/roster/exports", {"format": file_format, "lang": lang})
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != headers.get("x-dentgate-sha256"):
        raise click.ClickException("the roster arrived damaged (its SHA-256 differs from the gateway's); run it again")
    output.write_bytes(data)
    result = {"file": str(output), "sha256": sha256, "export_id": headers.get("x-dentgate-roster-export")}
    emit(result, as_json, f"Roster written to {output} (SHA-256 {sha256}).")


# --- the technician's commands ------------------------------------------------------------------------------------


@click.group("policy")
def tech_policy() -> None:
    """The lab's security policy (G16): read it, then acknowledge it."""


@tech_policy.command("show")
@json_option
@handles_errors
def tech_policy_show(as_json: bool) -> None:
    """The security policy in force."""
    emit(logged_in().get(POLICY), as_json, _document_text)


@tech_policy.command("acknowledge")
@click.option("--version", help="The version you read (default: the one in force).")
@json_option
@handles_errors
def tech_policy_acknowledge(version: str | None, as_json: bool) -> None:
    """Confirm you have read the policy in force."""
    client = logged_in()
    if version is None:
        found = client.get(POLICY)
        if not found["published"]:
            raise click.ClickException(found["message"].split(";")[0])
        version = found["document"]["version"]
    result = client.post(f"{POLICY}/acknowledgements", {"version": version})
    emit(result, as_json, f"Security policy version {result['version']} acknowledged.")


@click.command("attest")
@click.argument("kind")
@date_option
@click.option("--device", "device_id", help="Your personal device's id (personal-device-administration).")
@click.option("--statement", help="What you attest (default: the standard text of KIND).")
@json_option
@handles_errors
def tech_attest(kind: str, on: datetime | None, device_id: str | None, statement: str | None, as_json: bool) -> None:
    """Attest that measure KIND is in place (privacy-filter, screen-lock, removable-media,
    personal-device-administration)."""
    body = {"kind": kind, "attested_on": _day(on), "device_id": device_id, "statement": statement}
    result = logged_in().post("/api/v1/me/attestations", body)
    emit(result, as_json, f"{kind} attested as of {result['attested_on']}:\n{result['statement']}")


@click.command("readiness")
@json_option
@handles_errors
def readiness(as_json: bool) -> None:
    """What stands between you and an upload, and when your training and attestations run out."""
    result = logged_in().get("/api/v1/me/readiness")

    def text(r: dict[str, Any]) -> str:
        lines = ["Ready to upload." if r["ready"] else "Uploading is refused until these are settled:"]
        lines += [f"  {f['message']} ({f['requirement']})" for f in r["failures"]]
        due = r["training_due_on"]
        lines.append(f"Training runs out on {due}." if due else "No current training.")
        lines.append(table(r["attestations"], ["kind", "status", "attested_on", "valid_until"]))
        return "\n".join(lines)

    emit(result, as_json, text)
