"""README command 1 as a user meets it: `veles demo` starts, prints a login, the dashboard moves,
and Ctrl-C leaves nothing running (the report worker and the scheduler included). The demo is the
suite's shared one, so Ctrl-C comes after every other module sharing it has used it for a while
(`stops_demo`)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from tests.browser.conftest import DEMO_ACCOUNTS

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]


def _equity(page: Page) -> str:
    return page.locator("#total-equity").inner_text()


@pytest.mark.stops_demo
def test_demo_signs_in_shows_live_equity_and_stops_cleanly(
    demo: Demo, browser: Browser, artifacts: Path
) -> None:
    url, email, password = demo.wait_until_up()
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    console_errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            console_errors.append(f"{msg.text} {msg.location.get('url')}")

    page.on("console", on_console)
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url("**/dashboard", wait_until="commit", timeout=30_000)
    page.wait_for_function(
        "() => /\\d/.test(document.querySelector('#total-equity')?.innerText ?? '')", timeout=60_000
    )
    first = _equity(page)
    deadline = time.monotonic() + 2.0
    while _equity(page) == first and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    changed = _equity(page)
    page.screenshot(path=str(artifacts / "demo-dashboard.png"))
    assert changed != first, f"equity stayed at {first} for 2 s"
    assert page.locator("#accounts-table tbody tr").count() == DEMO_ACCOUNTS
    assert console_errors == []

    children = demo.descendants()
    assert children, "the demo should be running Ray and the portal"
    assert "reports: a report worker and the scheduler" in demo.output()
    assert any("ReportWorker" in " ".join(c.cmdline()) for c in children if c.is_running())
    demo.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert demo.proc.wait(timeout=90) == 0, demo.output()[-3000:]
    assert "reports: stopping" in demo.output()  # the worker and the scheduler before the engine
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left behind: {[p.info if hasattr(p, 'info') else p for p in alive]}"
