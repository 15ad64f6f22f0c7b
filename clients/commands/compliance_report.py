"""`dentgate admin compliance-report`: the lab's compliance report (G1–G21) as JSON, HTML or PDF, for a manager or
an auditor; Japanese unless `--lang en`."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlencode

import click

from clients.commands.common import handles_errors, logged_in


@click.command("compliance-report")
@click.option("--format", "file_format", type=click.Choice(["json", "html", "pdf"]), default="json", show_default=True)
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True, help="Language of the text.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file (needed for PDF "
              "on a terminal).")  # fmt: skip
@handles_errors
def compliance_report(file_format: str, lang: str, out: Path | None) -> None:
    """Each requirement G1–G21 met, not met or needing attention, with its evidence and who is behind each gap."""
    if out is None and file_format == "pdf" and sys.stdout.isatty():
        raise click.ClickException("a PDF does not belong on a terminal: give --out FILE (or redirect the output)")
    query = urlencode({"format": file_format, "lang": lang})
    body, _ = logged_in().download("GET", f"/api/v1/compliance/report?{query}")
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    partial = out.with_name(out.name + ".part")
    partial.write_bytes(body)
    partial.replace(out)
    click.echo(f"compliance report ({file_format}, {lang}) written to {out}", err=True)
