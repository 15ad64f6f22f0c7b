"""The `dentgate` command: a thin layer over the gateway and client libraries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from gateway.settings import Settings


def given_flags(config_file: Path | None, **overrides: Any) -> dict[str, Any]:
    """The flags the user gave (None: not given), as keyword arguments of `Settings`."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if config_file is not None:
        given["config_file"] = config_file
    return given


def load_settings(config_file: Path | None, **overrides: Any) -> Settings:
    """Settings from flags over `DENTGATE_*` variables over the TOML file; errors end the command."""
    try:
        return Settings(**given_flags(config_file, **overrides))
    except ValidationError as error:
        # Name the setting and the rule, never the value: a database URL may carry a password.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        raise click.ClickException(f"invalid configuration: {problems}") from None
    except ValueError as error:
        raise click.ClickException(f"invalid configuration: {error}") from None


config_option = click.option(
    "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), help="TOML configuration file."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dentgate")
def main() -> None:
    """DentGate: the secure channel from remote dental technicians to the lab's milling stations."""


@main.command()
@config_option
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8765).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Embedded data directory.")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Migrate the database at start.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes serving the one port; more than one needs PostgreSQL.",
)
def serve(
    config_file: Path | None, host: str | None, port: int | None, data_dir: Path | None, migrate: bool, workers: int
) -> None:
    """Run the gateway (SQLite and ./dentgate-data unless configured otherwise).

    With --workers N (PostgreSQL only) the database is migrated once, then N worker processes share the port;
    each builds the app from the same flags, environment and configuration file. Ctrl-C stops them all.
    """
    from gateway.server import WorkersRefused, check_workers
    from gateway.server import serve as run_server

    flags = given_flags(config_file, host=host, port=port, data_dir=data_dir)
    settings = load_settings(config_file, host=host, port=port, data_dir=data_dir)
    try:
        check_workers(settings, workers)
    except WorkersRefused as refused:
        raise click.BadParameter(str(refused), param_hint="'--workers'") from None
    run_server(settings, migrate_at_start=migrate, workers=workers, flags=flags)


@main.group()
def admin() -> None:
    """Server-side administration."""


@admin.command("migrate")
@config_option
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), help="Embedded data directory.")
def admin_migrate(config_file: Path | None, data_dir: Path | None) -> None:
    """Bring the database schema to the newest revision."""
    from gateway.db.engine import create_db_engine
    from gateway.db.migrate import migrate

    settings = load_settings(config_file, data_dir=data_dir)
    engine = create_db_engine(settings.effective_database_url, settings.database_connect_timeout)
    try:
        revision = migrate(engine)
    finally:
        engine.dispose()
    click.echo(f"database at revision {revision}: {engine.url.render_as_string(hide_password=True)}")


@main.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to run (default: a new temporary folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end instead of the narration.")
def demo(workdir: Path | None, as_json: bool) -> None:
    """Run the whole job on this PC: a gateway, a lab, a technician's crown delivered to a station, audited."""
    import json
    import tempfile

    from clients.demo import run_demo
    from gateway.logs import configure_logging

    configure_logging("warning", stream=sys.stderr)  # stdout is for the narration or the JSON
    folder = workdir or Path(tempfile.mkdtemp(prefix="dentgate-demo-"))
    say = (lambda _: None) if as_json else (lambda line: click.echo(f"- {line}"))
    result = run_demo(folder.resolve(), say)
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        same = result.original_file.read_bytes() == result.delivered_file.read_bytes()
        verdict = "byte-identical to" if same else "DIFFERENT from"
        click.echo(f"Done: {result.delivered_file} is {verdict} {result.original_file}")


def _register_commands() -> None:
    from clients.commands import admin as admin_commands
    from clients.commands import (
        audit,
        audit_custody,  # noqa: F401 (adds `audit custody` to the audit group)
        session,
        station,
        tech,
    )
    from clients.commands import compliance as compliance_commands
    from clients.commands import incident as incident_commands
    from clients.commands import records as records_commands

    main.add_command(session.activate)
    main.add_command(session.login)
    main.add_command(session.logout)
    main.add_command(tech.tech)
    main.add_command(station.station)
    main.add_command(audit.audit)
    main.add_command(records_commands.record)
    admin.add_command(admin_commands.init)
    admin.add_command(admin_commands.user)
    admin.add_command(admin_commands.device)
    admin.add_command(admin_commands.station)
    admin.add_command(__import__("clients.commands.audit_admin", fromlist=["_"]).audit_purge)
    admin.add_command(incident_commands.admin_incident)
    tech.tech.add_command(incident_commands.tech_incident)
    admin.add_command(compliance_commands.admin_policy)
    admin.add_command(compliance_commands.training)
    admin.add_command(compliance_commands.admin_attest)
    admin.add_command(compliance_commands.attestations)
    admin.add_command(compliance_commands.roster)
    admin.add_command(__import__("clients.commands.compliance_report", fromlist=["_"]).compliance_report)
    tech.tech.add_command(compliance_commands.tech_policy)
    tech.tech.add_command(compliance_commands.tech_attest)
    tech.tech.add_command(compliance_commands.readiness)


_register_commands()

if __name__ == "__main__":
    sys.exit(main())
