"""Configuration from the environment (pydantic-settings); invalid config fails fast."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.jwt_config import JwtConfig, parse_jwt_secret

REPO_ROOT = Path(__file__).resolve().parents[2]
ANOMALY_PORT = 3842
ONCALL_PORT = 3840
DEFAULT_MIGRATIONS_DIR = REPO_ROOT / "migrations" / "default"
# the login roles of the first migrations (services.common.db.APP_ROLE, WORKER_ROLE)
APP_LOGIN = "nsentry_app"
WORKER_LOGIN = "nsentry_worker"


class ConfigError(Exception):
    """Configuration that cannot work; the message is one line for the operator."""


class Settings(BaseSettings):
    """Every setting of both services, read from the environment (and `.env`)."""

    # empty variables count as unset: compose can pass "" but not "absent"
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    database_url: str | None = Field(
        default=None,
        description="Postgres URL of the schema owner, which only migrates; "
        "unset means the embedded server (local mode)",
    )
    app_database_url: str | None = Field(
        default=None,
        description="login of the services' requests (nsentry_app: RLS-bound, not the owner); "
        "unset: derived from DATABASE_URL",
    )
    worker_database_url: str | None = Field(
        default=None,
        description="login of the background workers (nsentry_worker); "
        "unset: derived from DATABASE_URL",
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
    # live models kept in memory per app, one per series (an `auto` model: about 50 KB);
    # at least the series this process ingests, else each batch rebuilds models from
    # the database (docs/deployment.md). The default holds 10 detectors at the default
    # max_series; it fills only as series are seen
    anomaly_model_cache: int = Field(default=10_000, ge=1)
    # remote-write samples accepted and waiting to be scored, per account: past it,
    # POST /api/v1/write answers 503 (Prometheus retries, queueing on its side)
    anomaly_remote_write_backlog: int = Field(default=1_000_000, ge=1)
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
    anomaly_allowed_sources: str = Field(
        default="",
        description="comma-separated hosts or CIDRs Prometheus pull sources may reach",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the on-call service's address as clients reach it (integration URLs, "
        "links); unset: the address a request came to",
    )
    # email-to-alert (aiosmtpd in the worker or `nsentry inbound-email`): off while the
    # port is unset; mail to <integration token>@<domain> opens an alert
    inbound_email_host: str = "127.0.0.1"
    inbound_email_port: int | None = Field(default=None, ge=1, le=65535)
    inbound_email_domain: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$")
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

    @field_validator("oncall_allowed_destinations", "anomaly_allowed_sources")
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

    @property
    def app_dsn(self) -> str:
        """Where the services' request pools log in: as nsentry_app, never as the owner."""
        return self.app_database_url or _login_dsn(self._owner_dsn(), APP_LOGIN)

    @property
    def worker_dsn(self) -> str:
        """Where the background workers' pools log in (nsentry_worker)."""
        return self.worker_database_url or _login_dsn(self._owner_dsn(), WORKER_LOGIN)

    def managed_logins(self) -> dict[str, str | None]:
        """The login roles whose login the services manage, each with its password.

        Those whose URL is derived from DATABASE_URL: the migration step gives them
        LOGIN and the derived password (None when DATABASE_URL carries no password,
        as with the embedded server's trust over a Unix socket: no password is set).
        A login given by its own URL is the operator's to create and keep.
        """
        owner = self._owner_dsn()
        managed: dict[str, str | None] = {}
        given = {APP_LOGIN: self.app_database_url, WORKER_LOGIN: self.worker_database_url}
        for role, url in given.items():
            if not url:
                managed[role] = _derived_password(owner, role)
        return managed

    def _owner_dsn(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set")
        return self.database_url

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

    @property
    def allowed_sources(self) -> list[str]:
        return _split(self.anomaly_allowed_sources)

    def secret_bytes(self) -> bytes | None:
        return self.plugin_secret.get_secret_value().encode() if self.plugin_secret else None


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _url_password(dsn: str) -> str | None:
    parts = urlsplit(dsn)
    userinfo, at, _hosts = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        return unquote(userinfo.split(":", 1)[1]) or None
    return dict(parse_qsl(parts.query)).get("password") or None


def _derived_password(owner_dsn: str, role: str) -> str | None:
    """The password of a derived login: a keyed hash of the owner's password (the owner
    can set it anyway), so that no further secret is needed; None without one."""
    secret = _url_password(owner_dsn)
    if secret is None:
        return None
    return hmac.new(secret.encode(), f"nsentry-login:{role}".encode(), hashlib.sha256).hexdigest()


def _login_dsn(owner_dsn: str, role: str) -> str:
    """DATABASE_URL with the login (user and password) of `role` instead of the owner's."""
    parts = urlsplit(owner_dsn)
    _userinfo, _at, hosts = parts.netloc.rpartition("@")
    password = _derived_password(owner_dsn, role)
    userinfo = quote(role, safe="") + (":" + quote(password, safe="") if password else "")
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query) if k not in ("user", "password")], safe="/"
    )
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{hosts}", query=query))


def load_settings(**overrides: Any) -> Settings:
    """Read settings; any invalid value becomes one ConfigError line naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first.get("loc", ())).upper() or "configuration"
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise ConfigError(f"invalid configuration: {name}: {message}") from None
