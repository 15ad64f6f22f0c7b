"""All configuration in one place: `DENTGATE_*` environment variables over an optional TOML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_VARIABLE = "DENTGATE_CONFIG_FILE"


class Settings(BaseSettings):
    """The gateway's settings; with none given it runs embedded on `./dentgate-data`."""

    model_config = SettingsConfigDict(env_prefix="DENTGATE_", extra="forbid")

    config_file: Path | None = Field(default=None, description="TOML file read under the environment")
    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("dentgate-data")
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    public_url: str | None = Field(
        default=None,
        description="the gateway's URL as clients reach it; key proofs must name it (required in production)",
    )
    max_json_body_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, description="largest JSON request body")

    database_url: str | None = Field(default=None, description="default: SQLite in the data directory")
    database_connect_timeout: int = Field(default=3, ge=1, description="seconds")

    storage_url: str | None = Field(default=None, description="file:///path or s3://bucket/prefix")
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_sse: Literal["none", "AES256", "aws:kms"] = "AES256"
    s3_sse_kms_key_id: str | None = None
    s3_part_size: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    checkpoint_publish_url: str | None = Field(
        default=None,
        pattern=r"^(s3://[^/]+|file:///)",
        description="where signed audit checkpoints are published outside the database (G19): "
        "s3://bucket/prefix (Object Lock required) or file:///abs/path/checkpoints.jsonl",
    )

    key_provider: str = Field(default="local", description="local | aws-kms:<key id>")
    key_file: Path | None = Field(default=None, description="default: <data_dir>/keys/gateway-key.json")
    kms_endpoint_url: str | None = None
    kms_region: str | None = None

    # Incident notifications (G18): e-mail to the plan's contacts, and an optional webhook.
    smtp_host: str | None = Field(default=None, description="SMTP server for incident e-mail; unset: e-mail is off")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = Field(default=None, description="sender address of incident e-mail")
    smtp_starttls: bool = True
    incident_webhook_url: str | None = Field(default=None, pattern=r"^https?://", description="POSTed incident JSON")
    incident_webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key for the signature")
    notification_max_attempts: int = Field(default=10, ge=1, le=100, description="then the notification is failed")

    @model_validator(mode="after")
    def _smtp_needs_a_sender(self) -> Settings:
        if self.smtp_host and not self.smtp_from:
            raise ValueError("set DENTGATE_SMTP_FROM with DENTGATE_SMTP_HOST: incident e-mail needs a sender address")
        return self

    @model_validator(mode="after")
    def _production_needs_public_url(self) -> Settings:
        if self.environment == "production" and not self.public_url:
            raise ValueError("set DENTGATE_PUBLIC_URL in production: key proofs are checked against it")
        if self.public_url and urlsplit(self.public_url).scheme not in ("http", "https"):
            raise ValueError("public_url must be an http(s) URL")
        return self

    @field_validator("key_provider")
    @classmethod
    def _known_key_provider(cls, value: str) -> str:
        if value != "local" and not (value.startswith("aws-kms:") and len(value) > len("aws-kms:")):
            raise ValueError("key_provider must be 'local' or 'aws-kms:<key id>'")
        return value

    @field_validator("storage_url")
    @classmethod
    def _known_storage_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("file", "s3"):
            raise ValueError("storage_url must start with file:// or s3://")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        init_kwargs: dict[str, Any] = init_settings.init_kwargs if isinstance(init_settings, InitSettingsSource) else {}
        toml_file = init_kwargs.get("config_file") or os.environ.get(CONFIG_FILE_VARIABLE)
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if toml_file:
            if not Path(toml_file).is_file():
                raise ValueError(f"configuration file {toml_file} does not exist")
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=toml_file),)
        return sources

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'dentgate.db'}"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.data_dir.resolve() / "objects").as_uri()

    @property
    def effective_key_file(self) -> Path:
        return self.key_file or self.data_dir / "keys" / "gateway-key.json"
