"""Browser helpers: sign in, open a page, save a screenshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import PLUGIN_SECRET


async def sign_in(browser: Any, base: str, account: str = "primary", **context: Any) -> Any:
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    await page.goto(f"{base}/signin")
    await page.fill("#secret", PLUGIN_SECRET)
    await page.fill("#account", account)
    await page.click("#signin-local button[type=submit]")
    await page.wait_for_selector("h1:has-text('Overview')")
    return page


async def shot(page: Any, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
