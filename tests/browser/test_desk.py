"""The dealer's desk against a real `veles demo`: the dashboard's closest-to-stop-out panel, its
margin-call and stop-out links, every symbol's labelled exposure bar, the day per currency (whose
floating P/L equals the accounts' own, to the cent, at the same book version) and each
connection's freshness; the exposure drill-down, whose account rows add up to the symbol's net and
to the whole book's; the CSV export of the accounts list and of the drill-down as shown; the
account page's current prices, commissions and deposits. Screenshots of the dashboard and the
drill-down at 1366x768, dark and light."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import DEMO_ACCOUNTS
from tests.browser.support import console_errors, sign_in
from veles.services.connection_names import SIMULATED_NAME

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture
def page(demo: Demo, browser: Browser) -> Iterator[Page]:
    """A signed-in tab at 1366x768; the test fails if the browser logged any console error."""
    url, email, password = demo.wait_until_up()
    tab = browser.new_page(viewport=VIEWPORT, base_url=url, accept_downloads=True)
    errors = console_errors(tab)
    sign_in(tab, email, password, timeout_ms=30_000)
    yield tab
    tab.close()
    assert errors == []


def cents(text: str) -> int:
    """'-1,234.56' -> -123456, exactly (the page prints integer minor units)."""
    match = re.fullmatch(r"(-?)([\d,]+)\.(\d\d)", text.strip())
    assert match, f"not money: {text!r}"
    return (-1 if match[1] else 1) * (int(match[2].replace(",", "")) * 100 + int(match[3]))


def _level(text: str) -> float:
    return float(text.rstrip("%").replace(",", ""))


def _dashboard(page: Page) -> None:
    page.goto("/dashboard")
    page.wait_for_selector("#exposure-table tbody tr", timeout=60_000)
    page.wait_for_selector("#today-table tbody tr", timeout=60_000)


def test_dashboard_desk_panels(page: Page, artifacts: Path) -> None:
    _dashboard(page)
    # every symbol of the book has its own labelled bar, in the table's order
    symbols = page.locator("#exposure-table tbody tr td:first-child").all_inner_texts()
    page.wait_for_function(
        f"() => document.querySelectorAll('#exposure-chart .recharts-yAxis .recharts-cartesian-axis-tick')"
        f".length === {len(symbols)}", timeout=10_000)
    ticks = page.locator(  # SVG text (no innerText), in recharts 3's label layer of the y axis
        "#exposure-chart .recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value").all_text_contents()
    assert set(ticks) == set(symbols)
    # closest to stop-out: accounts with margin in use, lowest margin level first, each a link
    page.wait_for_selector("#closest-table tbody tr", timeout=30_000)
    closest = page.locator("#closest-table tbody tr")
    levels = [_level(t) for t in closest.locator("td.margin-level").all_inner_texts()]
    assert 0 < len(levels) <= DEMO_ACCOUNTS
    assert levels == sorted(levels)
    for link in closest.locator("a.account-link").all():
        assert link.get_attribute("href") == f"/accounts/{link.inner_text()}"
    # and how far each one's largest position may move against it before stop-out
    page.wait_for_function("() => [...document.querySelectorAll('#closest-table td.distance')]"
                           ".some(c => c.innerText.includes('%'))", timeout=30_000)
    # (a price, or "below zero" where a long position alone cannot lose enough: never a price < 0)
    for distance in (t for t in closest.locator("td.distance").all_inner_texts() if "%" in t):
        assert re.fullmatch(r"[A-Z0-9.]+ [-+][\d,]+\.\d\d% → ([\d,]+\.\d+|below zero: not on its own)",
                            distance), distance
    # the day per currency: floating P/L (A + B) equals the accounts' own at the same book version
    for _ in range(100):
        snapshot = page.evaluate("""() => ({
            version: document.querySelector('#book-version').innerText.replace('version ', ''),
            today: document.querySelector('#today-version').innerText,
            accounts: [...document.querySelectorAll('#accounts-table tbody tr')].map(
                r => [r.querySelector('td.currency').innerText, r.querySelector('td.profit').innerText]),
            rows: [...document.querySelectorAll('#today-table tbody tr')].map(r => [
                r.querySelector('td.currency').innerText, r.querySelector('td.floating-a').innerText,
                r.querySelector('td.floating-b').innerText, r.querySelector('td.total-a').innerText,
                r.querySelector('td.closed-a').innerText]),
        })""")
        if snapshot["version"] == snapshot["today"]:
            break
        page.wait_for_timeout(100)
    else:
        pytest.fail("the day's figures never showed the same book version as the accounts")
    assert len(snapshot["accounts"]) == DEMO_ACCOUNTS
    floating: dict[str, int] = defaultdict(int)
    for currency, profit in snapshot["accounts"]:
        floating[currency] += cents(profit)
    shown = {row[0]: cents(row[1]) + cents(row[2]) for row in snapshot["rows"]}
    assert shown == dict(floating)
    for _currency, floating_a, _b, total_a, closed_a in snapshot["rows"]:
        assert cents(total_a) == cents(closed_a) + cents(floating_a)
    # a freshness badge per connection, its newest quote seconds old
    page.wait_for_selector("#connection-freshness .conn-freshness", timeout=30_000)
    named = page.locator("#connection-freshness .conn-freshness", has_text=SIMULATED_NAME).first
    named.wait_for(timeout=30_000)  # by the connection's name, not the engine's id (sim-1)
    badge = named.inner_text()
    assert re.search(r"quote [\d.]+ s", badge), badge
    page.screenshot(path=str(artifacts / "desk-dashboard-dark.png"))
    page.screenshot(path=str(artifacts / "desk-dashboard-dark-full.png"), full_page=True)
    page.click("#theme-toggle")
    page.wait_for_function("() => document.documentElement.classList.contains('light')")
    page.screenshot(path=str(artifacts / "desk-dashboard-light.png"))
    page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]


def test_margin_counts_open_the_filtered_accounts_list(page: Page) -> None:
    _dashboard(page)
    page.click("#margin-call-link")
    page.wait_for_url("**/accounts?state=margin_call")
    page.wait_for_selector("#accounts-state-filter")
    assert "Margin call" in page.locator("#accounts-state-filter").inner_text()
    page.wait_for_timeout(1000)
    states = page.locator("#portal-accounts tbody tr td:last-child").all_inner_texts()
    assert all(s == "margin call" for s in states)
    page.click("#accounts-state-clear")
    page.wait_for_function(
        f"() => document.querySelectorAll('#portal-accounts tbody tr').length === {DEMO_ACCOUNTS}",
        timeout=30_000)


def _drill_snapshot(page: Page) -> dict[str, object]:
    return page.evaluate("""() => ({
        symbol: document.querySelector('#drill-symbol').innerText,
        lots: [...document.querySelectorAll('#drill-accounts tbody td.acc-lots')].map(c => c.innerText),
        usd: [...document.querySelectorAll('#drill-accounts tbody td.acc-usd')].map(c => c.innerText),
        books: [...document.querySelectorAll('#drill-accounts tbody td.book')].map(c => c.innerText),
        net_lots: document.querySelector('#drill-net-lots').innerText,
        net_usd: document.querySelector('#drill-net-usd').innerText,
        book_lots: document.querySelector('#drill-book-lots').innerText,
        book_usd: document.querySelector('#drill-book-usd').innerText,
        row: [...document.querySelectorAll('#drill-symbols tr.symbol-row')]
            .filter(r => r.dataset.symbol === document.querySelector('#drill-symbol').innerText)
            .map(r => [r.querySelector('td.net-lots').innerText, r.querySelector('td.net-usd').innerText])[0],
    })""")


def test_exposure_drill_down_rows_sum_to_the_net(page: Page, artifacts: Path) -> None:
    _dashboard(page)
    symbol = page.locator("#exposure-table a.symbol-link").first.inner_text()
    # the table re-sorts live (largest USD first): click the symbol read, wherever it is now
    page.locator("#exposure-table").get_by_role("link", name=symbol, exact=True).click()
    page.wait_for_url(f"**/exposure?symbol={symbol}")
    page.wait_for_selector("#drill-accounts tbody tr", timeout=60_000)
    page.wait_for_selector("#drill-currencies tbody tr", timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#drill-accounts tbody td.acc-pnl')"
                           ".innerText.includes('—')", timeout=30_000)  # positions read
    shot = _drill_snapshot(page)
    assert shot["symbol"] == symbol
    assert sum(cents(v) for v in shot["usd"]) == cents(shot["net_usd"]) == cents(shot["book_usd"])
    assert sum(cents(v) for v in shot["lots"]) == cents(shot["net_lots"]) == cents(shot["book_lots"])
    assert shot["row"] == [shot["net_lots"], shot["net_usd"]]
    page.screenshot(path=str(artifacts / "desk-drill-dark.png"))
    page.click("#theme-toggle")
    page.wait_for_function("() => document.documentElement.classList.contains('light')")
    page.screenshot(path=str(artifacts / "desk-drill-light.png"))
    page.click("#theme-toggle")
    # the B-book only: the rows kept are B-book accounts, and they still add up to the net shown
    page.click("#filter-book")
    page.get_by_role("option", name="B", exact=True).click()
    page.wait_for_timeout(1500)
    shot = _drill_snapshot(page)
    assert set(shot["books"]) <= {"B"}
    assert sum(cents(v) for v in shot["usd"]) == cents(shot["net_usd"])
    assert sum(cents(v) for v in shot["lots"]) == cents(shot["net_lots"])
    # its CSV is the table as shown
    shown = page.locator("#drill-accounts tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('td')].slice(0, 4).map(c => c.innerText))")
    with page.expect_download(timeout=30_000) as info:
        page.click("#drill-csv")
    path = artifacts / "desk-drill.csv"
    info.value.save_as(path)
    lines = list(csv.reader(io.StringIO(path.read_text())))
    assert lines[0][:6] == ["Login", "Group", "Book", "Currency", "Net lots", "Net USD"]
    assert [line[:4] for line in lines[1:]] == shown


def test_accounts_csv_is_the_table_as_shown(page: Page, artifacts: Path) -> None:
    page.goto("/accounts")
    page.wait_for_function(
        f"() => document.querySelectorAll('#portal-accounts tbody tr').length === {DEMO_ACCOUNTS}",
        timeout=60_000)
    page.click("#sort-login")  # already the sort key (ascending): a click reverses it
    page.wait_for_selector("#sort-login[aria-sort=descending]")
    shown = page.locator("#portal-accounts tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.querySelectorAll('td')].slice(0, 4).map(c => c.innerText))")
    with page.expect_download(timeout=30_000) as info:
        page.click("#accounts-csv")
    path = artifacts / "desk-accounts.csv"
    info.value.save_as(path)
    lines = list(csv.reader(io.StringIO(path.read_text())))
    assert lines[0] == ["Login", "Name", "Country", "Server", "Group", "Book", "Currency", "Leverage",
                        "Balance", "Equity", "Margin level", "Floating P/L", "Drawdown", "Risk score",
                        "State"]
    assert [line[:4] for line in lines[1:]] == shown  # the descending login order, the same accounts
    # the client's name and country from the simulated broker's user records, the connection feeding it
    assert all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", line[1]) for line in lines[1:])
    assert all(re.fullmatch(r"[A-Z]{2}", line[2]) for line in lines[1:])
    assert all(line[3] == SIMULATED_NAME for line in lines[1:])  # by its name, not its id (sim-1)
    assert all(re.fullmatch(r"1:[\d,]+", line[7]) for line in lines[1:])
    assert all(re.fullmatch(r"-?[\d,]+\.\d\d", line[9]) for line in lines[1:])
    # sortable by country, and the filter box finds a country's clients
    page.click("#sort-country")
    page.wait_for_selector("#sort-country[aria-sort=ascending]")
    page.wait_for_timeout(500)
    countries = page.locator("#portal-accounts tbody td.country").all_inner_texts()
    assert countries == sorted(countries)
    country = countries[-1]
    # (the box also matches names, groups and servers holding those letters: the CSV says which)
    wanted = sorted(line[0] for line in lines[1:]
                    if any(country.lower() in cell.lower() for cell in line[:5]))
    assert any(line[2] == country for line in lines[1:])
    page.fill("#accounts-filter", country)
    page.wait_for_function(
        f"() => document.querySelectorAll('#portal-accounts tbody tr').length === {len(wanted)}",
        timeout=15_000)
    assert sorted(page.locator("#portal-accounts tbody a.account-link").all_inner_texts()) == wanted
    page.screenshot(path=str(artifacts / "desk-accounts-dark.png"))


def test_account_page_shows_prices_commission_and_money_movements(page: Page, artifacts: Path) -> None:
    page.goto("/dashboard")
    page.wait_for_selector("#closest-table a.account-link", timeout=60_000)
    login = page.locator("#closest-table a.account-link").first.inner_text()
    page.click("#closest-table a.account-link >> nth=0")
    page.wait_for_url(f"**/accounts/{login}")
    page.wait_for_selector("#positions-table tbody tr", timeout=30_000)
    current = page.locator("#positions-table tbody td.price-current").first.inner_text()
    assert re.fullmatch(r"[\d,]+\.\d+", current), current
    commission = page.locator("#positions-table tbody td.commission").first.inner_text()
    assert re.fullmatch(r"-?[\d,]+\.\d\d", commission), commission
    # each position's open time and its stops (a dash where it has none): a stop loss on the losing
    # side of a take profit
    for row in page.locator("#positions-table tbody tr").evaluate_all("""rows => rows.map(r => ({
            time: r.querySelector('td.open-time').innerText, side: r.querySelectorAll('td')[3].innerText,
            sl: r.querySelector('td.sl').innerText, tp: r.querySelector('td.tp').innerText}))"""):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["time"]), row
        for stop in (row["sl"], row["tp"]):
            assert stop == "—" or re.fullmatch(r"[\d,]+\.\d+", stop), row
        if "—" not in (row["sl"], row["tp"]):
            sl, tp = (float(row[k].replace(",", "")) for k in ("sl", "tp"))
            assert (sl < tp) == (row["side"] == "buy"), row
    page.screenshot(path=str(artifacts / "desk-account-dark.png"))
    page.wait_for_selector("#movements-table, #movements-empty", timeout=30_000)
    deposits = page.locator("#account-deposits").inner_text()
    if page.locator("#movements-table").count():
        amounts = page.locator("#movements-table tbody td.amount").all_inner_texts()
        assert sum(cents(a) for a in amounts if not a.startswith("-")) == cents(deposits)


def _ring(page: Page, seq: int) -> dict[str, int]:
    """Move the hidden entry count as the server does when an account enters margin call, give the
    script a tick to notice, and read what it did (rings played, rings the browser held back)."""
    page.evaluate(f"document.getElementById('margin-alarm').setAttribute('data-seq', '{seq}')")
    page.wait_for_timeout(600)
    counts: dict[str, int] = page.evaluate("({played: window.__velesMarginSound.played, "
                                           "blocked: window.__velesMarginSound.blocked})")
    return counts


def test_margin_call_sound_is_muted_by_default_and_rings_once_per_entry(page: Page) -> None:
    _dashboard(page)
    label = page.locator("#sound-label")
    page.wait_for_function("() => document.getElementById('sound-label').innerText.length > 0")
    assert label.inner_text() == "Sound off (muted by default)"
    start = int(page.locator("#margin-alarm").get_attribute("data-seq") or "")  # the server's count
    assert _ring(page, start + 1) == {"played": 0, "blocked": 0}  # muted: silent
    page.click("#sound-toggle")  # a click: the gesture the browser's autoplay policy asks for
    page.wait_for_function("() => document.getElementById('sound-label').innerText === 'Sound on'")
    assert page.locator("#sound-toggle").get_attribute("aria-pressed") == "true"
    assert _ring(page, start + 2) == {"played": 1, "blocked": 0}
    assert _ring(page, start + 2) == {"played": 1, "blocked": 0}  # the same entry: once
    assert _ring(page, start + 3) == {"played": 2, "blocked": 0}
    # a reload keeps the choice, but the browser holds the sound back until the page is clicked
    page.reload()
    _dashboard(page)
    page.wait_for_function("() => document.getElementById('sound-label').innerText.startsWith('Sound on:')")
    start = int(page.locator("#margin-alarm").get_attribute("data-seq") or "")
    assert _ring(page, start + 1) == {"played": 0, "blocked": 1}
    page.click("#book-version")  # any click on the page
    page.wait_for_function("() => document.getElementById('sound-label').innerText === 'Sound on'")
    assert _ring(page, start + 2) == {"played": 1, "blocked": 1}
    page.click("#sound-toggle")
    page.wait_for_function(
        "() => document.getElementById('sound-label').innerText === 'Sound off (muted by default)'")
    assert _ring(page, start + 3) == {"played": 1, "blocked": 1}
