"""`dentgate admin audit-purge`: remove audit segments past their retention, on the server (G19)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import click

from clients.commands.common import emit, json_option


def _describe(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        if row["through_seq"] is None:
            lines.append(f"lab {row['lab']}: nothing past its retention in a closed segment")
        else:
            verb = "would purge" if row["dry_run"] else "purged"
            lines.append(f"lab {row['lab']}: {verb} {row['count']} events, {row['first_seq']}..{row['through_seq']}")
    return "\n".join(lines) or "no audit chains"


@click.command("audit-purge")
@click.option("--lab", "labs", multiple=True, type=click.UUID, help="Lab id (repeatable); default: every lab.")
@click.option("--through", type=int, help="Purge exactly up to this checkpoint's sequence number (one --lab).")
@click.option("--dry-run", is_flag=True, help="Only say what would be purged.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="TOML configuration.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Embedded data directory.")
@json_option
def audit_purge(
    labs: tuple[uuid.UUID, ...],
    through: int | None,
    dry_run: bool,
    config_file: Path | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Remove whole closed audit segments whose events are all past their retention; the purge is audited."""
    import sqlalchemy as sa

    import gateway.db.models  # noqa: F401 (every table, so lab ids resolve to their UUID type)
    from clients.cli import load_settings
    from gateway.audit.checkpoints import publish_pending
    from gateway.audit.models import AuditChainHead
    from gateway.audit.publication import open_publisher
    from gateway.audit.retention import plan_purge, purge_expired
    from gateway.backends import open_backends
    from gateway.db.engine import transaction
    from gateway.errors import DentGateError
    from gateway.policy import default_policy

    if through is not None and len(labs) != 1:
        raise click.UsageError("--through needs exactly one --lab")
    settings = load_settings(config_file, data_dir=data_dir)
    backends = open_backends(settings)
    policy, now, rows = default_policy().audit, backends.clock(), []
    try:
        publisher = open_publisher(settings)
        if not labs:
            with backends.sessions() as session:
                labs = tuple(session.scalars(sa.select(AuditChainHead.lab_id).order_by(AuditChainHead.lab_id)))
        for lab_id in labs:
            with transaction(backends.sessions) as session:
                if dry_run:
                    plan = plan_purge(session, lab_id, policy, now, through)
                else:
                    plan = purge_expired(session, lab_id, policy, now, backends.keys, through_seq=through,
                                         publisher=publisher, actor_type="operator")  # fmt: skip
            rows.append({"lab": str(lab_id), "dry_run": dry_run, "first_seq": plan and plan.first_seq,
                         "through_seq": plan and plan.through_seq, "count": plan.count if plan else 0})  # fmt: skip
        if publisher is not None and not dry_run:
            publish_pending(backends.sessions, publisher)
    except DentGateError as error:
        raise click.ClickException(error.detail) from None
    finally:
        backends.close()
    emit(rows, as_json, _describe)
