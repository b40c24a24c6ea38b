"""The accounts portal as a broker's risk desk uses it, against a real `veles demo`: the live
accounts list (sort, filter), one account's page with its positions and its equity and
margin-level history, and a login that is not theirs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page

from models.db import session_scope
from models.history import RiskHistory
from tests.browser.conftest import DEMO_ACCOUNTS
from tests.browser.support import console_errors, sign_in

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
ROWS = "#portal-accounts tbody tr"


@pytest.fixture
def page(demo: Demo, browser: Browser) -> Iterator[Page]:
    """A signed-in tab; the test fails if the browser logged any console error."""
    url, email, password = demo.wait_until_up()
    tab = browser.new_page(viewport={"width": 1366, "height": 768}, base_url=url)
    errors = console_errors(tab)
    sign_in(tab, email, password, timeout_ms=30_000)
    yield tab
    tab.close()
    assert errors == []


def _wait_for_rows(page: Page) -> None:
    page.wait_for_function(
        f"() => document.querySelectorAll('{ROWS}').length === {DEMO_ACCOUNTS}", timeout=60_000
    )


def _open_accounts(page: Page) -> None:
    page.goto("/accounts")
    _wait_for_rows(page)


def _equities(page: Page) -> list[float]:
    return [float(text.replace(",", "")) for text in page.locator(f"{ROWS} td.equity").all_inner_texts()]


def test_accounts_sort_by_equity_descending(page: Page, artifacts: Path) -> None:
    _open_accounts(page)
    assert page.locator("#accounts-range").inner_text() == f"1\u2013{DEMO_ACCOUNTS} of {DEMO_ACCOUNTS}"
    page.click("#sort-equity")
    page.wait_for_selector("#sort-equity[aria-sort=ascending]")
    page.click("#sort-equity")
    page.wait_for_selector("#sort-equity[aria-sort=descending]")
    assert "▼" in page.locator("#sort-equity").inner_text()
    # Rows refresh live, so read them a few times: each reading must be in order.
    for _ in range(3):
        equities = _equities(page)
        assert len(equities) == DEMO_ACCOUNTS
        assert equities == sorted(equities, reverse=True)
        page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "portal-accounts-by-equity.png"))


def test_accounts_filter_by_login(page: Page, artifacts: Path) -> None:
    _open_accounts(page)
    login = page.locator(f"{ROWS} a.account-link").nth(2).inner_text()
    page.fill("#accounts-filter", login)
    page.wait_for_function(f"() => document.querySelectorAll('{ROWS}').length === 1")
    assert page.locator(f"{ROWS} a.account-link").all_inner_texts() == [login]
    assert page.locator("#accounts-range").inner_text() == "1\u20131 of 1"
    page.screenshot(path=str(artifacts / "portal-accounts-filtered.png"))


def _account_equity(page: Page) -> str:
    return page.locator("#account-equity").inner_text()


def _open_account_with_positions(page: Page, logins: list[str]) -> str:
    """Simulated traders open positions soon after the start: the first account that has some."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for login in logins:
            page.goto(f"/accounts/{login}")
            page.wait_for_selector("#account-equity", timeout=30_000)
            if page.locator("#positions-table tbody tr").count() > 0:
                return login
    pytest.fail("no demo account had an open position within 60 s")


def test_account_page_shows_positions_and_live_equity(page: Page, artifacts: Path) -> None:
    _open_accounts(page)
    login = _open_account_with_positions(page, page.locator(f"{ROWS} a.account-link").all_inner_texts())
    assert page.locator("#account-title").inner_text() == f"Account {login}"
    first = _account_equity(page)
    deadline = time.monotonic() + 5.0
    while _account_equity(page) == first and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    changed = _account_equity(page)
    page.screenshot(path=str(artifacts / "portal-account.png"))
    assert changed != first, f"account equity stayed at {first} for 5 s"
    cells = page.locator("#positions-table tbody tr").first.locator("td").all_inner_texts()
    # ticket, open time, symbol, side, volume, open price, S/L, T/P, current price, swap, commission, profit
    assert len(cells) == 12, cells
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", cells[1]), cells
    assert cells[3] in {"buy", "sell"}
    assert all(re.fullmatch(r"-?[\d,]+\.\d+", cells[i]) for i in (4, 5, 8, 9, 10, 11)), cells
    assert all(cells[i] == "—" or re.fullmatch(r"[\d,]+\.\d+", cells[i]) for i in (6, 7)), cells  # stops


def _plotted(page: Page, name: str) -> int:
    """How many points the chart's line called `name` goes through (one path command each)."""
    path = page.locator(f"#account-history-chart path.recharts-line-curve[name='{name}']").get_attribute("d")
    return len(re.findall(r"[MLC]", path or ""))


def test_account_page_charts_equity_and_margin_level_history(page: Page, demo: Demo, artifacts: Path) -> None:
    """Fifty minutes of points and one from three days ago: the 6-hour window plots the fifty
    (and whatever the recorder has added), the 7-day window one point an hour."""
    _open_accounts(page)
    login = int(page.locator(f"{ROWS} a.account-link").first.inner_text())
    tenant_id = demo.tenant_id()
    with session_scope(demo.database_url) as session:
        now = datetime.now(UTC).replace(second=30, microsecond=0)
        for minutes in [*range(50, 0, -1), 3 * 24 * 60]:
            equity = 10_000.0 + 25.0 * minutes
            session.add(RiskHistory(tenant_id=tenant_id, account_login=login,
                                    ts=now - timedelta(minutes=minutes), equity=equity, balance=10_000.0,
                                    margin=2_000.0, margin_level=equity / 2_000.0 * 100.0,
                                    floating=equity - 10_000.0))
    page.goto(f"/accounts/{login}")
    page.wait_for_selector("#account-history-chart .recharts-line-curve", timeout=60_000)
    assert page.locator("#history-6h").get_attribute("data-state") == "on"
    assert _plotted(page, "Equity") >= 50
    assert _plotted(page, "Margin level (%)") >= 50
    page.screenshot(path=str(artifacts / "portal-account-history-6h.png"), full_page=True)
    page.click("#history-7d")
    page.wait_for_selector("#history-7d[data-state=on]")
    page.wait_for_function("() => (document.querySelector('#account-history-chart .recharts-line-curve')"
                           "?.getAttribute('d') ?? '').match(/[MLC]/g)?.length <= 5", timeout=30_000)
    assert 2 <= _plotted(page, "Equity") <= 5  # three days ago, and the last hour or two
    page.screenshot(path=str(artifacts / "portal-account-history-7d.png"), full_page=True)


def test_unknown_login_is_not_found(page: Page, artifacts: Path) -> None:
    page.goto("/accounts/1")
    page.wait_for_selector("#account-not-found", timeout=30_000)
    assert "Account not found" in page.locator("#account-not-found").inner_text()
    assert page.locator("#account-equity").count() == 0
    assert page.locator("#positions-table").count() == 0
    page.screenshot(path=str(artifacts / "portal-account-not-found.png"))
    page.click("#nav-accounts")  # the top nav leads back to the live list
    page.wait_for_url("**/accounts", wait_until="commit")
    _wait_for_rows(page)
