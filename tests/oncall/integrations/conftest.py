"""Fixtures of the integration tests: a real Alertmanager binary (installed when missing)."""

from __future__ import annotations

import pytest

from tests.oncall.integrations.alertmanager import install_alertmanager


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    """Debian's prometheus-alertmanager; apt-get installs it when missing. Skipped with
    the reason only when it cannot be had (no root, no apt-get, no network)."""
    binary, why = install_alertmanager()
    if binary is None:
        pytest.skip(why)
    return binary
