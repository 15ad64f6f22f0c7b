"""Saving an audit export from the gateway: the events file, and the gateway-signed manifest beside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clients.api import GatewayClient
from gateway.audit.export import TRAILER, parse_trailer

READ_BYTES = 1024 * 1024


class ExportIncomplete(Exception):
    """The stream ended before the signed manifest: nothing is kept."""


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def save_export(client: GatewayClient, params: dict[str, str], output: Path) -> tuple[dict[str, Any], Path]:
    """Stream `/api/v1/audit/export` into `output` (via a `.part` file) in constant memory; write the signed
    manifest to `output.manifest.json`. Returns the signed manifest and its path."""
    manifest_path = output.with_name(output.name + ".manifest.json")
    partial = output.with_name(output.name + ".part")
    trailer = b""
    try:
        with client.stream("/api/v1/audit/export", params) as response, partial.open("wb") as out:
            for line in _lines(response.iter_bytes(READ_BYTES)):
                if line.startswith(TRAILER):
                    trailer = line
                else:
                    out.write(line)
        if not trailer:
            raise ExportIncomplete("the export ended without its signed manifest (connection cut?); run it again")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    signed = parse_trailer(trailer.rstrip(b"\n"))
    partial.replace(output)
    manifest_path.write_text(json.dumps(signed, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return signed, manifest_path
