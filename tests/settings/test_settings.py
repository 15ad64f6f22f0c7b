"""Configuration: embedded defaults, `DENTGATE_*` variables over a TOML file, clear refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from clients.cli import main
from gateway.settings import Settings


@pytest.fixture(autouse=True)
def no_dentgate_environment(monkeypatch):
    for key in [k for k in os.environ if k.startswith("DENTGATE_")]:
        monkeypatch.delenv(key)


def test_defaults_are_the_embedded_sqlite_and_local_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    data = tmp_path / "dentgate-data"
    assert settings.effective_database_url == f"sqlite:///{data / 'dentgate.db'}"
    assert settings.effective_storage_url == (data / "objects").as_uri()
    assert settings.key_provider == "local"
    assert settings.effective_key_file == Path("dentgate-data/keys/gateway-key.json")


def test_environment_overrides_the_toml_file(tmp_path, monkeypatch):
    config = tmp_path / "dentgate.toml"
    config.write_text('port = 9000\nstorage_url = "s3://lab-bucket/designs"\ns3_region = "ap-northeast-1"\n')
    monkeypatch.setenv("DENTGATE_CONFIG_FILE", str(config))
    monkeypatch.setenv("DENTGATE_PORT", "9100")
    settings = Settings()
    assert (settings.port, settings.storage_url, settings.s3_region) == (
        9100,
        "s3://lab-bucket/designs",
        "ap-northeast-1",
    )


def test_postgresql_and_kms_are_selected_by_variables(monkeypatch):
    monkeypatch.setenv("DENTGATE_DATABASE_URL", "postgresql+psycopg://gw@db.internal/dentgate")
    monkeypatch.setenv("DENTGATE_KEY_PROVIDER", "aws-kms:alias/dentgate")
    settings = Settings()
    assert settings.effective_database_url.startswith("postgresql+psycopg://")
    assert settings.key_provider == "aws-kms:alias/dentgate"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DENTGATE_KEY_PROVIDER", "vault"),
        ("DENTGATE_KEY_PROVIDER", "aws-kms:"),
        ("DENTGATE_STORAGE_URL", "ftp://example/x"),
        ("DENTGATE_DATABASE_URL", "mysql://root@localhost/x"),
        ("DENTGATE_PORT", "0"),
        ("DENTGATE_S3_SSE", "rot13"),
    ],
)
def test_invalid_settings_are_refused(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        Settings()


def test_unknown_key_in_the_toml_file_is_refused(tmp_path):
    config = tmp_path / "dentgate.toml"
    config.write_text("prot = 9000\n")
    with pytest.raises(ValidationError):
        Settings(config_file=config)


def test_missing_configuration_file_is_a_clear_cli_error(tmp_path):
    result = CliRunner().invoke(main, ["admin", "migrate", "--config", str(tmp_path / "absent.toml")])
    assert result.exit_code != 0
    assert "absent.toml does not exist" in result.output


def test_admin_migrate_creates_the_embedded_database(tmp_path):
    result = CliRunner().invoke(main, ["admin", "migrate", "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert "database at revision" in result.output
    assert (tmp_path / "data" / "dentgate.db").is_file()


def test_every_command_has_help():
    for args in (["--help"], ["serve", "--help"], ["admin", "--help"], ["admin", "migrate", "--help"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "Usage:" in result.output


def test_invalid_configuration_error_names_the_setting_but_not_its_value(monkeypatch, tmp_path):
    monkeypatch.setenv("DENTGATE_DATABASE_URL", "mysql://gw:S3cretPw@db/dentgate")
    result = CliRunner().invoke(main, ["admin", "migrate", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "database_url" in result.output
    assert "S3cretPw" not in result.output
