"""Settings: environment parsing, one-line errors, empty values, licence rules."""

from __future__ import annotations

import pytest

from services.common.licence import check_startup, licence_problem
from services.common.settings import ConfigError, load_settings


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_USERNAME", "")
    monkeypatch.setenv("PORT", "")
    monkeypatch.setenv("HOST", "")
    settings = load_settings(_env_file=None)
    assert settings.smtp_username is None
    assert settings.port is None
    assert settings.host == "127.0.0.1"


def test_default_bind_is_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOST", raising=False)
    assert load_settings(_env_file=None).host == "127.0.0.1"


def test_invalid_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_RETENTION_DAYS", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("invalid configuration: ANOMALY_RETENTION_DAYS:")


def test_secret_is_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGIN_SECRET", "very-secret-value-123456")
    settings = load_settings(_env_file=None)
    assert "very-secret-value-123456" not in repr(settings)
    assert settings.secret_bytes() == b"very-secret-value-123456"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("nself_pro_" + "a" * 22, None),
        ("nself_owner_" + "b" * 20, None),
        ("nself_free_" + "a" * 22, "must start with"),
        ("nself_max_abc", "at least 32"),
        ("nself_ent_" + "a" * 21 + "!", "may contain only"),
    ],
)
def test_licence_forms(key: str, problem: str | None) -> None:
    found = licence_problem(key)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_local_mode_and_skip_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLUGIN_SECRET", "NSELF_PLUGIN_LICENSE_KEY", "NSELF_LICENSE_SKIP_VERIFY"):
        monkeypatch.delenv(name, raising=False)
    check_startup(load_settings(_env_file=None, nsentry_local_mode=True))  # nothing required
    with pytest.raises(ConfigError, match="PLUGIN_SECRET is required"):
        check_startup(load_settings(_env_file=None))
    skipping = load_settings(_env_file=None, plugin_secret="s" * 20, nself_license_skip_verify=True)
    check_startup(skipping)
    with pytest.raises(ConfigError, match="at least 16"):
        check_startup(load_settings(_env_file=None, plugin_secret="short"))
