"""The dealer's alert basics (issue 15) in headless Chromium against the real `veles demo`: the top
bar's unread count goes up when the engine raises an alert and back to zero when the alerts are
acknowledged; switching desktop notifications on asks the browser's permission, is stored for the
user, and a new critical alert then sounds and shows a desktop notification.

The alert arrives the real way: a critical rule added through the API reaches the running engine,
which raises, numbers and stores the alerts; the portal hears of them through its alert stream.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from models.alerts import AlertReader
from models.db import session_scope
from models.tenancy import User
from tests.browser.support import console_errors, sign_in

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]

# Records what the page asks of the Notification API (the browser's own stays in charge).
RECORD_NOTIFICATIONS = """
window.__notes = []; window.__asked = 0;
const Native = window.Notification;
if (Native) {
  function Recorder(title, options) {
    window.__notes.push([title, options && options.body]);
    return new Native(title, options);
  }
  Object.defineProperty(Recorder, 'permission', {get: () => Native.permission});
  Recorder.requestPermission = (...args) => {
    window.__asked += 1;
    return Native.requestPermission(...args);
  };
  window.Notification = Recorder;
}
"""


def _api(url: str, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", method=method, data=data, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the demo's own URL)
        return json.loads(response.read() or b"null")


@pytest.fixture
def page(demo: Demo, browser: Browser) -> Iterator[Page]:
    """A signed-in tab whose context has the notifications permission granted."""
    url, email, password = demo.wait_until_up()
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=url)
    context.grant_permissions(["notifications"], origin=url)
    context.add_init_script(RECORD_NOTIFICATIONS)
    tab = context.new_page()
    errors = console_errors(tab)
    sign_in(tab, email, password)
    yield tab
    context.close()
    assert errors == []


def test_unread_count_rises_with_an_alert_and_clears_on_acknowledge_with_a_desktop_notification(
    page: Page, demo: Demo, artifacts: Path
) -> None:
    url, email, password = demo.wait_until_up()
    count = page.locator("#unread-count")
    expect(count).to_be_visible(timeout=60_000)
    page.click("#mark-read")
    expect(count).to_have_text("0", timeout=30_000)

    page.goto("/settings/notifications")
    switch = page.locator("#desktop-notifications")
    expect(switch).to_have_attribute("data-state", "unchecked", timeout=60_000)
    switch.click()
    expect(switch).to_have_attribute("data-state", "checked", timeout=30_000)
    assert page.evaluate("window.__asked") == 1  # the opt-in asked the browser
    assert page.evaluate("Notification.permission") == "granted"
    with session_scope(demo.database_url) as db:
        user_id = db.exec(select(User.id).where(User.email == email)).one()
        stored = db.exec(select(AlertReader.desktop_notifications)
                         .where(AlertReader.user_id == user_id)).one()
    assert stored is True
    page.screenshot(path=str(artifacts / "alert-bell-opt-in.png"))

    page.goto("/dashboard")
    expect(count).to_have_text("0", timeout=60_000)
    signed_in = _api(url, "POST", "/api/v1/auth/token", body={"email": email, "password": password})
    token = signed_in["access_token"]
    rule = _api(url, "POST", "/api/v1/alert-rules", token,
                {"kind": "margin_level", "threshold": 1_000_000, "severity": "critical"})["rule"]["id"]
    try:
        expect(count).not_to_have_text("0", timeout=90_000)  # the engine raised, the bell heard
        page.wait_for_function("(window.velesAlertSounds || 0) >= 1 && window.__notes.length >= 1",
                               timeout=30_000)
        title, body = page.evaluate("window.__notes[0]")
        assert "critical alert" in title
        assert "margin level" in body
        page.screenshot(path=str(artifacts / "alert-bell-unread.png"))

        page.click("#alert-bell")
        page.wait_for_url("**/alerts", wait_until="commit")
        for _ in range(40):  # acknowledge every open alert (more accounts may cross meanwhile)
            expect(page.locator("#alerts-table")).to_be_visible(timeout=30_000)
            buttons = page.locator("#alerts-table .ack")
            if buttons.count() == 0 and count.inner_text() == "0":
                break
            if buttons.count():
                buttons.first.click()
            page.wait_for_timeout(500)
        expect(count).to_have_text("0", timeout=30_000)
        page.screenshot(path=str(artifacts / "alert-bell-acknowledged.png"))
    finally:
        _api(url, "DELETE", f"/api/v1/alert-rules/{rule}", token)
