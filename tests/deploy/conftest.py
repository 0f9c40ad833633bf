"""Fixtures of the deployment tests: a real nginx binary (installed when missing)."""

from __future__ import annotations

import pytest

from tests.deploy.support import install_nginx, nginx_has_auth_request


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Path of an nginx with the auth_request module; apt-get installs it when missing.

    Skipped with the reason only when it cannot be had (no root, no apt-get, no network).
    """
    binary, why = install_nginx()
    if binary is None:
        pytest.skip(why)
    if not nginx_has_auth_request(binary):
        pytest.skip(f"{binary} was built without the auth_request module")
    return binary
