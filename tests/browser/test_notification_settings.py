"""/settings/notifications against a real `veles demo` in headless Chromium: the demo user sees the
defaults, a refused field is named beside that field and nothing is stored, a good choice is stored
and shown again after a reload, and SMS becomes available once the phone is verified."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from models.db import session_scope
from models.notifications import DeliveryPreference
from models.tenancy import User
from tests.browser.support import console_errors, sign_in

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
PHONE = "+4915112345678"


@pytest.fixture
def page(demo: Demo, browser: Browser) -> Iterator[Page]:
    """A signed-in tab on the settings page; the test fails if the browser logged a console error."""
    url, email, password = demo.wait_until_up()
    tab = browser.new_page(viewport={"width": 1366, "height": 900}, base_url=url)
    errors = console_errors(tab)
    sign_in(tab, email, password)
    open_settings(tab)
    yield tab
    tab.close()
    assert errors == []


def open_settings(page: Page) -> None:
    """Open the page and wait until the stored preferences are on it (not the state's defaults)."""
    page.goto("/settings/notifications")
    loaded = page.locator("#pref-channels:not([data-revision='0'])")
    expect(loaded).to_have_count(1, timeout=60_000)


def box(page: Page, severity: str, channel: str) -> str:
    """Whether a channel checkbox is ticked, as Radix renders it."""
    return page.locator(f"#pref-{severity}-{channel}").get_attribute("data-state") or ""


def stored(demo: Demo, email: str) -> DeliveryPreference | None:
    with session_scope(demo.database_url) as db:
        db.expire_on_commit = False  # the row is read after the session ends
        user = db.exec(select(User).where(User.email == email)).one()
        return db.exec(select(DeliveryPreference).where(DeliveryPreference.user_id == user.id)).first()


def test_edit_preferences_with_field_errors(page: Page, demo: Demo, artifacts: Path) -> None:
    email = demo.wait_until_up()[1]
    expect(page.locator("#pref-time_zone")).to_have_value("UTC")
    critical = [box(page, "critical", c) for c in ("portal", "email", "sms")]
    assert critical == ["checked", "checked", "unchecked"]
    assert box(page, "info", "email") == "unchecked"
    expect(page.locator("#pref-sms-phone")).to_contain_text("needs a verified phone")

    page.click("#pref-critical-sms")  # no verified phone: refused beside the Critical row
    page.click("#pref-save")
    expect(page.locator("#error-channels-critical")).to_contain_text("SMS needs a verified phone")
    assert stored(demo, email) is None

    page.click("#pref-critical-sms")
    page.fill("#pref-time_zone", "Mars/Olympus")
    page.fill("#pref-quiet_start", "22:00")
    page.click("#pref-save")
    expect(page.locator("#error-time_zone")).to_contain_text("unknown time zone 'Mars/Olympus'")
    expect(page.locator("#error-channels-critical")).to_have_count(0)
    page.screenshot(path=str(artifacts / "notification-settings-error.png"), full_page=True)
    assert stored(demo, email) is None

    page.fill("#pref-time_zone", "Europe/Berlin")
    page.click("#pref-save")
    expect(page.locator("#error-quiet_end")).to_contain_text("need both a start and an end")
    page.fill("#pref-quiet_end", "07:00")
    page.fill("#pref-digest_minutes", "15")
    page.click("#pref-warning-email")
    page.click("#pref-critical-override")
    page.click("#pref-save")
    expect(page.locator("#pref-notice")).to_contain_text("Saved")
    expect(page.locator("[role=alert]")).to_have_count(0)

    row = stored(demo, email)
    assert row is not None
    assert (row.time_zone, row.quiet_start, row.quiet_end, row.digest_minutes) == ("Europe/Berlin", "22:00",
                                                                                   "07:00", 15)
    assert row.channels == {"info": ["portal"], "warning": ["email", "portal"],
                            "critical": ["email", "portal"]}
    assert row.critical_overrides_quiet is False

    open_settings(page)
    expect(page.locator("#pref-time_zone")).to_have_value("Europe/Berlin")
    expect(page.locator("#pref-quiet_start")).to_have_value("22:00")
    expect(page.locator("#pref-quiet_end")).to_have_value("07:00")
    expect(page.locator("#pref-digest_minutes")).to_have_value("15")
    assert box(page, "warning", "email") == "checked"
    assert page.locator("#pref-critical-override").get_attribute("data-state") == "unchecked"
    page.screenshot(path=str(artifacts / "notification-settings-saved.png"), full_page=True)


def test_sms_once_the_phone_is_verified(page: Page, demo: Demo, artifacts: Path) -> None:
    email = demo.wait_until_up()[1]
    with session_scope(demo.database_url) as db:  # what entering an SMS sign-in code records
        user = db.exec(select(User).where(User.email == email)).one()
        user.phone, user.phone_verified_at = PHONE, datetime.now(UTC)
        db.add(user)
    open_settings(page)
    expect(page.locator("#pref-sms-phone")).to_contain_text(PHONE)
    page.click("#pref-critical-sms")
    page.click("#pref-save")
    expect(page.locator("#pref-notice")).to_contain_text("Saved")
    row = stored(demo, email)
    assert row is not None
    assert "sms" in row.channels["critical"]
    page.screenshot(path=str(artifacts / "notification-settings-sms.png"), full_page=True)
