"""Headless Debian Chromium driven by Playwright; Playwright never downloads a browser here."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per module (scripts/setup.sh --test installs the Debian package).

    Module-scoped on purpose: sync Playwright runs its own event loop in the main thread while
    it is open, which would stop the async tests of later modules from starting theirs.
    """
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is required for browser tests (scripts/setup.sh --test installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
