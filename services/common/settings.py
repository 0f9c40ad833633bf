"""Configuration from the environment (pydantic-settings); invalid config fails fast."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.jwt_config import JwtConfig, parse_jwt_secret

REPO_ROOT = Path(__file__).resolve().parents[2]
ANOMALY_PORT = 3842
ONCALL_PORT = 3840
DEFAULT_MIGRATIONS_DIR = REPO_ROOT / "migrations" / "default"


class ConfigError(Exception):
    """Configuration that cannot work; the message is one line for the operator."""


class Settings(BaseSettings):
    """Every setting of both services, read from the environment (and `.env`)."""

    # empty variables count as unset: compose can pass "" but not "absent"
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    database_url: str | None = Field(
        default=None, description="Postgres URL; unset means the embedded server (local mode)"
    )
    host: str = Field(default="127.0.0.1", description="address to bind; never 0.0.0.0 by default")
    port: int | None = Field(default=None, ge=1, le=65535, description="port of `serve`")
    anomaly_port: int = Field(default=ANOMALY_PORT, ge=1, le=65535)
    oncall_port: int = Field(default=ONCALL_PORT, ge=1, le=65535)
    plugin_secret: SecretStr | None = None
    hasura_graphql_jwt_secret: str | None = None
    oncall_url: str = f"http://127.0.0.1:{ONCALL_PORT}"
    nself_plugin_license_key: SecretStr | None = None
    nself_license_skip_verify: bool = False
    nsentry_local_mode: bool = False
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    db_pool_min: int = Field(default=2, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    anomaly_retention_days: int = Field(default=30, ge=1)
    migrations_dir: Path = DEFAULT_MIGRATIONS_DIR
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "nsentry@localhost"
    smtp_starttls: bool = False
    webhook_signing_secret: SecretStr | None = None
    oncall_allowed_destinations: str = Field(
        default="", description="comma-separated hosts or CIDRs webhooks may reach"
    )
    log_level: str = "info"
    # GraphQL limits (docs/oncall-api.md, "GraphQL limits"; services/oncall/graphql/limits.py)
    graphql_max_tokens: int = Field(default=10_000, ge=100)
    graphql_max_cost: int = Field(default=10_000, ge=100)
    graphql_max_depth: int = Field(default=8, ge=2)
    graphql_max_aliases: int = Field(default=200, ge=0)
    graphql_statement_timeout_ms: int = Field(default=5_000, ge=1)

    @field_validator("hasura_graphql_jwt_secret")
    @classmethod
    def _jwt_secret_parses(cls, value: str | None) -> str | None:
        if value:
            parse_jwt_secret(value)  # raises ValueError with a one-line reason
        return value

    @field_validator("oncall_allowed_destinations")
    @classmethod
    def _destinations_parse(cls, value: str) -> str:
        for item in _split(value):
            if "/" in item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError as exc:
                    raise ValueError(f"not a CIDR: {item!r}") from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level_known(cls, value: str) -> str:
        if value.lower() not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError("must be one of critical, error, warning, info, debug")
        return value.lower()

    @cached_property
    def jwt(self) -> JwtConfig | None:
        return (
            parse_jwt_secret(self.hasura_graphql_jwt_secret)
            if self.hasura_graphql_jwt_secret
            else None
        )

    @property
    def allowed_destinations(self) -> list[str]:
        return _split(self.oncall_allowed_destinations)

    def secret_bytes(self) -> bytes | None:
        return self.plugin_secret.get_secret_value().encode() if self.plugin_secret else None


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Read settings; any invalid value becomes one ConfigError line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first.get("loc", ())).upper() or "configuration"
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise ConfigError(f"invalid configuration: {name}: {message}") from None
