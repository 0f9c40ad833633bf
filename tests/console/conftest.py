"""Fixtures of the console tests: the stack, and a real headless Chromium (Debian's
`chromium`, installed with apt-get when missing) driven by Playwright."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.clock import FakeClock
from tests.conftest import REPO_ROOT
from tests.console.stack import Stack, stack
from tests.debian import install, which

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO_ROOT / "test-output" / "console"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def install_chromium() -> tuple[str | None, str]:
    return install("chromium", ("chromium",), lambda: which((), (CHROMIUM,)))


@pytest.fixture(scope="session")
def chromium_binary() -> str:
    path, why = install_chromium()
    if path is None:
        pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture(scope="module")
async def site(database_url: str, clock: FakeClock) -> AsyncIterator[Stack]:
    async with stack(database_url, clock) as running:
        yield running


@pytest.fixture(scope="module")
async def browser(chromium_binary: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=chromium_binary,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            await launched.close()
