"""The stress page against a real `veles demo` in headless Chromium: its figures equal the pure
engine's (`veles.risk.stress` through `stress_parts`) on the same live book, held still by pausing
the demo broker's supervisor; a bad scenario is refused naming its part; a scenario saved from the
page is listed and runs again. Screenshots at 1366x768, dark and light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.browser.support import console_errors, sign_in
from veles_ui.state.stress import exposure_rows, per_currency

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "all -30%, USD +2% against all"


class DemoEngine:
    """The demo broker's supervisor, driven through a child process that joins the demo's cluster."""

    def __init__(self, demo: Demo) -> None:
        self.tenant = demo.tenant_id()
        portal = next(p for p in demo.descendants() if "RAY_ADDRESS" in _environ(p))
        # the portal's own Ray settings (address, and the cluster's auth token when it uses one)
        self.ray_env = {k: v for k, v in portal.environ().items() if k.startswith("RAY_")}
        self.address = self.ray_env["RAY_ADDRESS"]

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tests.browser.demo_engine", self.address, "veles", str(self.tenant),
             *args],
            cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
            env={**os.environ, **self.ray_env},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout


def _environ(process: Any) -> dict[str, str]:
    try:
        return dict(process.environ())
    except Exception:  # a process gone, or not ours to read
        return {}


@pytest.fixture(scope="module")
def engine(demo: Demo) -> Iterator[DemoEngine]:
    """The demo's engine, paused for the module (so the page and the reference see one book)."""
    demo.wait_until_up()
    handle = DemoEngine(demo)
    handle("pause")
    try:
        yield handle
    finally:
        handle("resume")


@pytest.fixture
def page(demo: Demo, browser: Browser) -> Iterator[Page]:
    url, email, password = demo.wait_until_up()
    context = browser.new_context(viewport=VIEWPORT, base_url=url)
    tab = context.new_page()
    errors = console_errors(tab)
    sign_in(tab, email, password)
    yield tab
    context.close()
    assert errors == []


def _run(page: Page, scenario: str) -> None:
    page.fill("#stress-scenario", scenario)
    page.click("#stress-run")


def test_the_page_equals_the_pure_engine_on_the_same_book(
    page: Page, engine: DemoEngine, artifacts: Path
) -> None:
    expected = json.loads(engine("stress", SCENARIO))
    page.goto("/stress")
    _run(page, SCENARIO)
    page.wait_for_selector("#stress-ran", timeout=60_000)
    text = {key: page.locator(f"#stress-{key}").inner_text() for key in
            ("accounts", "stopped", "closed", "absorbed", "for", "against")}
    assert text == {
        "accounts": f"{expected['accounts']:,}",
        "stopped": f"{len(expected['stopped_out']):,}",
        "closed": f"{expected['positions_closed']:,}",
        "absorbed": per_currency(expected["absorbed_minor"]),
        "for": per_currency(expected["b_book_for_broker_minor"]),
        "against": per_currency(expected["b_book_against_broker_minor"]),
    }
    assert expected["accounts"] > 0
    logins = page.locator("#stress-stopped-table tbody tr td:first-child").all_inner_texts()
    assert sorted(int(x) for x in logins) == sorted(expected["stopped_out"])
    rows = page.locator("#stress-exposure-table tbody tr")
    shown = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    assert shown == [[r["symbol"], r["lots"], r["usd"], r["b_lots"], r["b_usd"]]
                     for r in exposure_rows(expected)]
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
    page.screenshot(path=str(artifacts / "stress-dark.png"))
    page.click("#theme-toggle")
    page.wait_for_function("() => document.documentElement.classList.contains('light')")
    page.screenshot(path=str(artifacts / "stress-light.png"))
    page.click("#theme-toggle")


@pytest.mark.parametrize(
    ("scenario", "says"),
    [("XAUUSD -3", "must look like -3% or +2.5%"), ("NOSUCH -3%", "'NOSUCH' is not a symbol"),
     ("EUR +2% against nothing", "expected '<symbol|class:NAME|all|CURRENCY> <+/-N%>'")],
)
def test_a_bad_scenario_names_its_part(page: Page, engine: DemoEngine, scenario: str, says: str) -> None:
    page.goto("/stress")
    _run(page, scenario)
    page.wait_for_selector("#stress-error", timeout=30_000)
    assert says in page.locator("#stress-error").inner_text()
    assert page.locator("#stress-ran").count() == 0


def test_a_saved_scenario_is_listed_and_runs(page: Page, engine: DemoEngine) -> None:
    page.goto("/stress")
    page.fill("#stress-scenario", "metal -7%")
    page.fill("#stress-save-name", "Metals slide")
    page.wait_for_timeout(300)  # the box's debounce
    page.click("#stress-save")
    page.wait_for_selector("#stress-save-notice", timeout=30_000)
    page.reload()
    saved = page.locator(".saved-scenario", has_text="Metals slide")
    saved.wait_for(timeout=30_000)
    page.fill("#stress-scenario", "all -1%")
    saved.click()
    page.wait_for_function(
        "() => document.querySelector('#stress-ran')?.innerText === 'class:metal -7%'", timeout=60_000)
