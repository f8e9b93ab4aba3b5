"""Debian's chromium driven by Playwright, for the review's browser tests.

Playwright's own browser download cannot be reached from these machines, so the tests launch the
system chromium (`make test` installs it when missing). Without it they fail, saying how to get it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}


def chromium_path() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)
    if found is None:
        pytest.fail("chromium is not installed, and the review's browser tests drive it: install it as root with "
                    "`apt-get install -y chromium` (`make test` does this when it can)", pytrace=False)
    return found


def launch():
    """(playwright, browser): stop both with `browser.close(); playwright.stop()`."""
    playwright = sync_playwright().start()
    try:
        return playwright, playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    except BaseException:
        playwright.stop()
        raise


def sign_in(browser: Browser, link: str) -> tuple[BrowserContext, Page]:
    """A fresh browser context (its own cookies) signed in with a one-time link."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(link)
    with page.expect_navigation():
        page.click("#sign-in")
    return context, page


def images_loaded(page: Page) -> bool:
    """Every <img> on the page decoded (a broken image has naturalWidth 0)."""
    return page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
