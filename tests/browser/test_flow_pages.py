"""Toxic flow in the portal against a real `veles demo`: the accounts table's score and label
columns (sorted, filtered), a trader's profile whose score is the sum its breakdown says, and the
dashboard's toxic-flow panel, whose counts add up; screenshots at 1366x768."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from tests.browser.conftest import DEMO_ACCOUNTS

from .conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
LOGIN = 100_000


@pytest.fixture
def page(demo: Demo, browser: Browser) -> Iterator[Page]:
    """A signed-in 1366x768 tab that must log no console error."""
    base, email, password = demo.wait_until_up()
    context = browser.new_context(viewport=VIEWPORT, base_url=base)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.goto("/login")
    tab.fill("#email", email)
    tab.fill("#password", password)
    tab.keyboard.press("Enter")
    tab.wait_for_url("**/dashboard", wait_until="commit", timeout=60_000)
    yield tab
    context.close()
    assert errors == []


def _numbers(texts: list[str]) -> list[float]:
    return [float(t.replace(",", "")) for t in texts]


def test_accounts_table_sorts_and_filters_on_toxic_flow(page: Page, artifacts: Path) -> None:
    page.goto("/accounts")
    page.wait_for_selector("#portal-accounts tbody tr .toxicity-link", timeout=90_000)
    headers = page.locator("#portal-accounts thead th").all_inner_texts()
    assert {"Margin risk", "Toxicity", "Flow"} <= {h.strip(" ▲▼") for h in headers}
    page.click("#sort-toxicity")
    page.click("#sort-toxicity")  # again: highest first
    page.wait_for_selector("#sort-toxicity[aria-sort='descending']")
    scores = _numbers(page.locator("#portal-accounts .toxicity-link").all_inner_texts())
    assert len(scores) == DEMO_ACCOUNTS
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 100.0 for s in scores)
    page.screenshot(path=str(artifacts / "flow-accounts.png"))
    href = page.locator("#portal-accounts .toxicity-link").first.get_attribute("href")
    assert href is not None
    assert re.fullmatch(r"/flow/\d+", href)
    page.goto("/accounts?label=ordinary")
    page.wait_for_selector("#portal-accounts tbody tr", timeout=60_000)
    page.wait_for_function(
        "() => /of \\d+$/.test(document.querySelector('#accounts-range')?.innerText ?? '')")
    flows = page.locator("#portal-accounts tbody tr td.flow-label").all_inner_texts()
    assert flows
    assert set(flows) == {"ordinary"}


def test_a_trader_profile_adds_up_to_its_score(page: Page, artifacts: Path) -> None:
    page.goto(f"/flow/{LOGIN}")
    page.wait_for_selector("#flow-findings tbody tr", timeout=90_000)
    for _ in range(10):  # the page is live: read score and breakdown from one render
        score = float(page.locator("#flow-score").inner_text())
        cells = page.locator("#flow-findings .finding-points").all_inner_texts()
        points = sorted(_numbers(cells), reverse=True)
        again = float(page.locator("#flow-score").inner_text())
        if score == again:
            break
    assert len(points) == 7  # every detector, fired or not
    assert score == pytest.approx(min(100.0, points[0] + 0.25 * sum(points[1:])), abs=0.11)
    assert page.locator("#flow-title").inner_text() == f"Trader {LOGIN}"
    assert page.locator("#markout-chart").count() == 1
    assert page.locator("#holds-chart").count() == 1
    advice = page.locator("#flow-advice").inner_text()
    assert advice.startswith(("Route to the A-book", "Keep on the B-book"))
    page.screenshot(path=str(artifacts / "flow-profile.png"), full_page=True)
    page.goto("/flow/999")
    page.wait_for_selector("#flow-not-found", timeout=60_000)


def test_dashboard_panel_counts_add_up(page: Page, artifacts: Path) -> None:
    page.goto("/dashboard")
    page.wait_for_selector("#toxic-flow-panel", timeout=60_000)
    page.wait_for_function(
        "() => /\\d+ of [1-9]\\d* accounts labelled/.test(document.querySelector('#flow-toxic-count')"
        "?.innerText ?? '')", timeout=90_000)
    # the panel's stream runs beside the dashboard's own, which must go on too
    page.wait_for_function("() => /\\d/.test(document.querySelector('#total-equity')?.innerText ?? '')",
                           timeout=60_000)
    found = re.search(r"(\d+) of (\d+) accounts", page.locator("#flow-toxic-count").inner_text())
    assert found is not None
    toxic, accounts = int(found.group(1)), int(found.group(2))
    assert accounts == DEMO_ACCOUNTS
    badges = page.locator("#flow-labels .rt-Badge").all_inner_texts()
    assert sum(int(b.rsplit(":", 1)[1]) for b in badges) == toxic
    b_book = sum(int(t) for t in page.locator("#flow-pnl tbody tr td:nth-child(2)").all_inner_texts())
    assert b_book <= accounts
    assert page.locator("#flow-savings").inner_text().replace(",", "").replace(".", "").lstrip("-").isdigit()
    page.locator("#toxic-flow-panel").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "flow-dashboard.png"), full_page=True)
