"""The console's own settings (env `CONSOLE_*`); the shared ones come from Settings."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.settings import ANOMALY_PORT, ONCALL_PORT, ConfigError, Settings

CONSOLE_PORT = 3841


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONSOLE_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    port: int = Field(default=CONSOLE_PORT, ge=1, le=65535)
    anomaly_url: str = f"http://127.0.0.1:{ANOMALY_PORT}"
    oncall_url: str = f"http://127.0.0.1:{ONCALL_PORT}"
    session_secret: SecretStr | None = Field(
        default=None,
        description="signs session cookies and encrypts stored credentials "
        "(default: derived from PLUGIN_SECRET)",
    )
    session_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 86400)
    cookie_secure: bool = Field(default=False, description="Secure cookies (behind https)")
    root_path: str = Field(default="", description="path prefix behind a gateway: /console")
    local_sign_in: bool = Field(
        default=True, description="allow signing in with the plugin secret and an account"
    )

    def key_material(self, settings: Settings) -> bytes:
        if self.session_secret is not None:
            secret = self.session_secret.get_secret_value().encode()
            if len(secret) < 32:
                raise ConfigError("CONSOLE_SESSION_SECRET must be at least 32 characters")
            return secret
        base = settings.secret_bytes()
        if base is None:
            raise ConfigError("the console needs PLUGIN_SECRET or CONSOLE_SESSION_SECRET")
        return hmac.new(base, b"nsentry-console-session-key", hashlib.sha256).digest()

    @property
    def base(self) -> str:
        return "/" + self.root_path.strip("/") if self.root_path.strip("/") else ""


def load_console_settings(**overrides: object) -> ConsoleSettings:
    return ConsoleSettings(**overrides)  # type: ignore[arg-type]
