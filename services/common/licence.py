"""The bundle licence key check made at start (no network call)."""

from __future__ import annotations

import re

from services.common.settings import ConfigError, Settings

LICENCE_PREFIXES = ("nself_pro_", "nself_max_", "nself_ent_", "nself_owner_")
_KEY_BODY = re.compile(r"^[A-Za-z0-9_-]+$")


def licence_problem(key: str) -> str | None:
    """Why a licence key is malformed, or None when its form is valid."""
    if not key.startswith(LICENCE_PREFIXES):
        return "must start with one of " + ", ".join(LICENCE_PREFIXES)
    if len(key) < 32:
        return "must be at least 32 characters"
    if not _KEY_BODY.match(key):
        return "may contain only letters, digits, '_' and '-'"
    return None


def check_startup(settings: Settings) -> None:
    """Refuse to start without a secret or with a bad licence, outside local mode."""
    if settings.nsentry_local_mode:
        return
    if settings.plugin_secret is None or not settings.plugin_secret.get_secret_value():
        raise ConfigError("PLUGIN_SECRET is required (set it, or use `nsentry up` for local mode)")
    if len(settings.plugin_secret.get_secret_value()) < 16:
        raise ConfigError("PLUGIN_SECRET must be at least 16 characters")
    if settings.nself_license_skip_verify:
        return
    if settings.nself_plugin_license_key is None:
        raise ConfigError(
            "NSELF_PLUGIN_LICENSE_KEY is required (or set NSELF_LICENSE_SKIP_VERIFY=1)"
        )
    problem = licence_problem(settings.nself_plugin_license_key.get_secret_value())
    if problem:
        raise ConfigError(f"NSELF_PLUGIN_LICENSE_KEY is malformed: it {problem}")
