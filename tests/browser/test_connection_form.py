"""The portal's connection form against the fake MT5 Web API over TLS (a broker's private CA,
trusted by the demo through MT5_CA_BUNDLE): a tenant admin adds https://127.0.0.1:PORT with the
manager's login and password; the check `veles mt5 check` runs shows its JSON summary; "Test" runs
it again; a wrong password is refused with the one line naming the step and the server's retcode,
and nothing is kept. The connection is removed at the end (the demo is shared)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from models.tenancy import Role
from tests.browser.conftest import Demo
from tests.browser.support import console_errors, sign_in
from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, broker_source, serving
from veles.mt5.simulator import SimulatedBroker
from veles.mt5.webapi.fake_feed import BrokerDriver, TradeFeed, owners_of
from veles.mt5.webapi.fake_server import FakeWebApi, Manager

VIEWPORT = {"width": 1366, "height": 900}
ADMIN = ("connections-admin@demo.test", "connections-password-1")


@pytest.fixture(scope="module")
def fake_url(mt5_tls: tuple[Path, Path, Path]) -> Iterator[str]:
    """The fake Web API with six accounts whose logins no demo server uses, over TLS, serving ticks
    and deals as its simulator advances (the engine feeds the connection once it is added)."""
    _, cert, key = mt5_tls
    broker = SimulatedBroker(accounts=6, seed=3, warmup=30.0, login_base=900_000)
    source = broker_source(broker)
    feed = TradeFeed(owners_of(broker))
    driver = BrokerDriver(broker, feed, source.lock)
    driver.advance()
    fake = FakeWebApi(source, [Manager(MANAGER_LOGIN, MANAGER_PASSWORD)], feed=feed)
    with serving(fake, tls=(cert, key)) as url:
        driver.start()
        try:
            yield url
        finally:
            driver.stop()


@pytest.fixture(scope="module")
def admin(demo: Demo) -> tuple[str, str]:
    """A tenant admin of the demo's broker (connections are a tenant admin's to manage)."""
    demo.wait_until_up()
    demo.add_users((*ADMIN, Role.TENANT_ADMIN))
    return ADMIN


@pytest.fixture
def tab(demo: Demo, browser: Browser, admin: tuple[str, str]) -> Iterator[Page]:
    url = demo.wait_until_up()[0]
    context = browser.new_context(viewport=VIEWPORT, base_url=url)
    page = context.new_page()
    errors = console_errors(page)
    sign_in(page, *admin)
    yield page
    context.close()
    assert errors == [], errors


def test_add_test_and_refuse_a_real_server(tab: Page, fake_url: str, artifacts: Path) -> None:
    tab.click("#nav-connections")
    tab.wait_for_url("**/connections", wait_until="commit")
    assert "https://host:port" in (tab.get_attribute("#conn-server", "placeholder") or "")

    tab.fill("#conn-server", fake_url)
    tab.fill("#conn-login", str(MANAGER_LOGIN))
    tab.fill("#conn-password", "not-the-password")
    tab.click("#conn-add")
    tab.wait_for_selector("#conn-error")
    refused = tab.locator("#conn-error").inner_text()
    failed = f"Could not connect to {fake_url}: mt5 check failed at auth/answer: wrong manager password"
    assert failed in refused
    assert "(retcode 3006 Invalid account password)" in refused
    assert "not-the-password" not in tab.content()
    assert tab.locator("#connections-table tbody tr", has_text=fake_url).count() == 0  # nothing kept
    tab.screenshot(path=str(artifacts / "connection-form-refused.png"))

    tab.fill("#conn-password", MANAGER_PASSWORD)
    tab.click("#conn-add")
    notice = tab.locator("#conn-notice")
    notice.wait_for()
    text = notice.inner_text()
    assert text.startswith(f"Connected to {fake_url}: ")
    summary = json.loads(text.removeprefix(f"Connected to {fake_url}: ").split("}", 1)[0] + "}")
    assert summary == {"server": fake_url, "version_access": "1290", "symbols": summary["symbols"],
                       "groups": summary["groups"], "users": 6, "positions": summary["positions"]}
    assert summary["symbols"] > 0
    row = tab.locator("#connections-table tbody tr", has_text=fake_url)
    assert row.count() == 1
    assert MANAGER_PASSWORD not in tab.content()

    row.locator(".conn-test").click()  # the same check again, with the stored (encrypted) password
    tab.locator("#conn-notice", has_text=re.compile(r'^\{"server": ')).wait_for()  # the check's JSON alone
    assert json.loads(tab.locator("#conn-notice").inner_text())["server"] == fake_url
    assert row.locator(".conn-status").inner_text() == "connected"
    tab.screenshot(path=str(artifacts / "connection-form-tested.png"), full_page=True)

    # the engine feeds it and reconciles it (every RECONCILE_EVERY_S, 30 s in the demo): the page
    # says how its figures agree with the server's own once the first check ran
    checked = row.locator(".conn-reconciliation", has_text="of 6 accounts drifting")
    deadline = time.monotonic() + 120
    while checked.count() == 0:
        assert time.monotonic() < deadline, row.locator(".conn-reconciliation").inner_text()
        tab.wait_for_timeout(3000)
        tab.reload()
        row.wait_for()
    assert checked.inner_text().startswith("0 of 6 accounts drifting (checked ")
    tab.screenshot(path=str(artifacts / "connection-form-reconciled.png"), full_page=True)

    row.locator(".conn-remove").click()
    tab.locator("#conn-notice", has_text="Connection removed.").wait_for()
    assert tab.locator("#connections-table tbody tr", has_text=fake_url).count() == 0
