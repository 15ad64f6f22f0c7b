"""`dentgate audit …`: the auditor's tools over the lab's audit chain (G19): metadata only, never design content."""

from __future__ import annotations

import base64
import csv
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from clients.audit_export import ExportIncomplete, save_export
from clients.commands.common import emit, handles_errors, json_option, logged_in, table
from clients.profile import client_home
from gateway.audit.export import ExportInvalid, parse_trailer, verify_export
from gateway.identity.proofs import key_fingerprint

FILTERS = ("from", "to", "actor", "role", "device", "station", "design", "case", "action", "category", "outcome",
           "client_address")  # fmt: skip
COLUMNS = ["seq", "occurred_at", "category", "action", "outcome", "actor_type", "actor_id", "target",
           "client_address", "reason"]  # fmt: skip


@click.group()
def audit() -> None:
    """Query, export and verify the audit logs; show a design's custody chain."""


def _filter_options(command):  # type: ignore[no-untyped-def]
    helps = {
        "from": "Events at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00+09:00).",
        "to": "Events before this time.",
        "actor": "Account or station id.",
        "role": "manager, technician, auditor, station, gateway …",
        "device": "Device id.",
        "station": "Station id (events by that station).",
        "design": "Design id.",
        "case": "Case (instruction-form) number: every design of the case.",
        "action": "Action, exact or a prefix ending in '*' (e.g. 'design.*').",
        "category": "access, auth or operation.",
        "outcome": "success, failure, denied or error.",
        "client_address": "Client IP address.",
    }
    for name in reversed(FILTERS):
        command = click.option(f"--{name.replace('_', '-')}", name, help=helps[name])(command)
    return command


def _pages(filters: dict[str, str], after: int, limit: int, every: bool) -> Iterator[dict[str, Any]]:
    client = logged_in()
    while True:
        params = {**filters, "after": str(after), "limit": str(limit)}
        page = client.get(f"/api/v1/audit/events?{urlencode(params)}")
        yield from page["events"]
        if not every or page["next_after"] is None:
            return
        after = page["next_after"]


@audit.command("query")
@_filter_options
@click.option("--after", default=0, type=click.IntRange(0), help="Continue after this sequence number.")
@click.option("--limit", default=100, type=click.IntRange(1, 1000), show_default=True, help="Events per page.")
@click.option("--all", "every", is_flag=True, help="Follow every page to the end.")
@click.option("--format", "output", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@handles_errors
def query(after: int, limit: int, every: bool, output: str, **filters: str | None) -> None:
    """Events matching the filters, in chain order (e.g. `--design ID`: who touched this design, from where)."""
    chosen = {name: value for name, value in filters.items() if value is not None}
    events = _pages(chosen, after, limit, every)
    if output == "json":
        click.echo(json.dumps(list(events), ensure_ascii=False, indent=2))
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*COLUMNS, "device_id", "request_id", "details", "hash"])
        for event in events:
            details = json.dumps(event["details"], ensure_ascii=False, sort_keys=True)
            writer.writerow([event[c] for c in COLUMNS] + [event["device_id"], event["request_id"], details,
                                                           event["hash"]])  # fmt: skip
    else:
        rows = list(events)
        click.echo(table(rows, COLUMNS))
        if not every and len(rows) == limit:
            click.echo(f"(more: --after {rows[-1]['seq']}, or --all)")


@audit.command("export")
@click.option("--from", "since", help="First event time (RFC 3339); default: the chain's start.")
@click.option("--to", "until", help="Events before this time; default: now.")
@click.option("--format", "file_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Events file.")
@json_option
@handles_errors
def export(since: str | None, until: str | None, file_format: str, output: Path, as_json: bool) -> None:
    """Stream a run of the chain to a file, with the gateway-signed manifest beside it (FILE.manifest.json)."""
    params = {"format": file_format} | ({"from": since} if since else {}) | ({"to": until} if until else {})
    try:
        signed, manifest_path = save_export(logged_in(), params, output)
    except ExportIncomplete as error:
        raise click.ClickException(str(error)) from None
    manifest = signed["manifest"]
    emit(
        {"file": str(output), "manifest": str(manifest_path), **manifest},
        as_json,
        f"{manifest['count']} events (sequence {manifest['first_seq']}–{manifest['last_seq']}) written to {output}\n"
        f"  SHA-256 {manifest['sha256']}\n  signed manifest: {manifest_path}",
    )


def _trusted_key(trust_key: str | None) -> bytes | None:
    if trust_key:
        return base64.b64decode(trust_key, validate=True)
    pinned = client_home() / "gateway-key.json"
    if pinned.exists():
        return base64.b64decode(json.loads(pinned.read_text(encoding="utf-8"))["public_key"])
    return None


@audit.command("verify-export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Default: FILE.manifest.json"
)
@click.option("--trust-key", help="The gateway's public key (base64) to require; default: the key pinned here, if any.")
@json_option
def verify_export_command(file: Path, manifest: Path | None, trust_key: str | None, as_json: bool) -> None:
    """Verify an export offline: signature, SHA-256, count, every event's hash and link. Exit 1 if it fails."""
    manifest = manifest or file.with_name(file.name + ".manifest.json")
    signed = parse_trailer(manifest.read_bytes())
    trusted = _trusted_key(trust_key)
    try:
        with file.open("rb") as lines:
            verified = verify_export(lines, signed, trusted)
    except ExportInvalid as error:
        emit({"ok": False, "reason": error.detail}, as_json, f"NOT VERIFIED: {error.detail}")
        raise SystemExit(1) from None
    fingerprint = key_fingerprint(verified.public_key)
    trust = "the trusted gateway key" if trusted else "its own key (compare the fingerprint with the gateway's)"
    emit(
        {"ok": True, "count": verified.count, "first_seq": verified.first_seq, "last_seq": verified.last_seq,
         "key_id": verified.key_id, "key_fingerprint": fingerprint, "trusted_key": trusted is not None},
        as_json,
        f"Verified: {verified.count} events, sequence {verified.first_seq}–{verified.last_seq}, unaltered, "
        f"signed by {trust}: {fingerprint}",
    )  # fmt: skip


@audit.command("verify")
@click.option("--lab", type=click.UUID, help="On the server: verify this lab's chain straight from the database.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="TOML configuration.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Embedded data directory.")
@json_option
@handles_errors
def verify_command(lab: uuid.UUID | None, config_file: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Recompute the lab's whole chain against its signed and published checkpoints. Exit 1 if it fails.

    Without --lab, through the gateway for the lab you are logged in to; with --lab, on the server itself.
    """
    result = _verify_on_server(lab, config_file, data_dir) if lab else logged_in().get("/api/v1/audit/verify")
    if result["ok"]:
        text = f"Chain verified: {result['count']} events up to sequence {result['head_seq']}; {result['published']}."
        emit(result, as_json, text)
        return
    emit(result, as_json, f"CHAIN BROKEN at sequence {result['first_bad_seq']}: {result['reason']}")
    raise SystemExit(1)


def _verify_on_server(lab: uuid.UUID, config_file: Path | None, data_dir: Path | None) -> dict[str, Any]:
    from clients.cli import load_settings
    from gateway.audit.chain import ChainBroken
    from gateway.audit.publication import open_publisher
    from gateway.audit.publication import verify_against_published as check
    from gateway.backends import open_backends
    from gateway.db.scoping import bind_to_lab

    settings = load_settings(config_file, data_dir=data_dir)
    backends = open_backends(settings)
    try:
        with backends.sessions() as session:
            bind_to_lab(session, lab)
            checked = check(session, lab, backends.keys.public_key(), open_publisher(settings))
    except ChainBroken as broken:
        return {"ok": False, "first_bad_seq": broken.seq, "reason": broken.reason}
    finally:
        backends.close()
    chain = checked.chain
    return {"ok": True, "count": chain.count, "head_seq": chain.head_seq, "published": checked.note}
