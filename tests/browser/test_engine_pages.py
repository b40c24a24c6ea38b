"""The portal against a real `veles demo`: a connection added on the connections page is fed by
the running engine (its accounts appear on the accounts page; removing it takes them away), and an
account's page lists its recent deals under its positions, newest first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from models.tenancy import Role
from tests.browser.conftest import DEMO_ACCOUNTS
from veles.services.connection_names import SIMULATED_NAME

from .conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
ADDED = 5  # accounts on a simulated server
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
ADMIN = ("admin@demo.test", "admin-password-1")


@pytest.fixture(scope="module")
def portal(demo: Demo) -> Demo:
    """The demo with a tenant admin (connections are theirs to manage) beside the demo's user."""
    demo.wait_until_up()
    demo.add_users((*ADMIN, Role.TENANT_ADMIN))
    return demo


@pytest.fixture
def page(portal: Demo, browser: Browser) -> Iterator[Page]:
    """A 1366x768 tab that must log no console error."""
    context = browser.new_context(viewport=VIEWPORT, base_url=portal.wait_until_up()[0])
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield tab
    context.close()
    assert errors == []


def _sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard", wait_until="commit", timeout=30_000)


def _accounts_total(page: Page) -> int:
    """The total the accounts page shows ('1-7 of 7' gives 7)."""
    found = re.search(r"of (\d+)", page.locator("#accounts-range").inner_text())
    return int(found.group(1)) if found else -1


def _wait_for_total(page: Page, total: int) -> None:
    page.wait_for_function("(n) => new RegExp(`of ${n}$`).test(document.querySelector('#accounts-range')"
                           "?.innerText ?? '')", arg=total, timeout=120_000)


def test_account_page_lists_recent_deals_newest_first(page: Page, portal: Demo, artifacts: Path) -> None:
    _, email, password = portal.wait_until_up()
    _sign_in(page, email, password)
    page.goto("/accounts/100000")
    page.wait_for_selector("#positions-table", timeout=90_000)
    page.wait_for_selector("#deals-table tbody tr", timeout=90_000)  # the simulated traders deal in seconds
    page.screenshot(path=str(artifacts / "engine-account-deals.png"), full_page=True)
    headers = page.locator("#deals-table thead th").all_inner_texts()
    assert headers[:5] == ["Ticket", "Time (UTC)", "Symbol", "Type", "Entry"]
    tickets = [int(t) for t in page.locator("#deals-table tbody tr td:first-child").all_inner_texts()]
    assert tickets == sorted(tickets, reverse=True)
    assert len(tickets) <= 50


def test_a_connection_added_in_the_portal_is_fed_and_removed(page: Page, artifacts: Path) -> None:
    _sign_in(page, *ADMIN)
    page.goto("/accounts")
    _wait_for_total(page, DEMO_ACCOUNTS)
    page.goto("/connections")
    page.fill("#conn-server", "sim://h3-desk")
    page.fill("#conn-login", "1000")
    page.fill("#conn-password", "veles-demo")  # the demo's simulated servers' manager password
    page.click("#conn-add")
    page.wait_for_selector("#conn-notice")
    page.goto("/accounts")
    _wait_for_total(page, DEMO_ACCOUNTS + ADDED)  # the demo's and the new server's
    # the Server column names each account's connection as the connections page does (its trade
    # server; the demo's own broker by name), not by the engine's id, and filters and sorts by it
    page.click("#sort-server")
    page.wait_for_selector("#sort-server[aria-sort=ascending]")
    page.wait_for_function("() => [...document.querySelectorAll('td.server')]"
                           ".every(c => !/^(conn|sim)-\\d+$/.test(c.innerText))", timeout=30_000)
    servers = page.locator("td.server").all_inner_texts()
    assert set(servers) <= {"sim://h3-desk", SIMULATED_NAME}, servers
    assert servers == sorted(servers), servers
    page.fill("#accounts-filter", "h3-desk")
    _wait_for_total(page, ADDED)
    assert set(page.locator("td.server").all_inner_texts()) == {"sim://h3-desk"}
    page.screenshot(path=str(artifacts / "engine-connection-fed.png"), full_page=True)
    page.fill("#accounts-filter", "")  # the filter is the tab's: cleared before leaving the page
    _wait_for_total(page, DEMO_ACCOUNTS + ADDED)
    page.goto("/connections")
    row = page.locator("#connections-table tbody tr")
    row.first.wait_for()
    assert row.locator(".conn-status").inner_text() == "connected"
    page.screenshot(path=str(artifacts / "engine-connection-connected.png"))
    row.locator(".conn-remove").click()
    page.wait_for_selector("#conn-notice")
    page.goto("/accounts")
    _wait_for_total(page, DEMO_ACCOUNTS)
    assert _accounts_total(page) == DEMO_ACCOUNTS
