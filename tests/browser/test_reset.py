"""Password reset as a user meets it, against the shared `veles demo` in headless Chromium: the
"Forgot password?" link on the sign-in page, /forgot answering the same for any address, the
e-mail read from the demo's SMTP server, its link's /reset page (field errors, keyboard only),
signing in with the new password, and the spent or altered link refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize

from models.tenancy import Role
from tests.browser.support import mailed_link
from tests.stubs.smtp_stub import SmtpStub
from veles.services.password_reset import ANSWER

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
EMAIL, OLD_PASSWORD, NEW_PASSWORD = "forgetful@demo.test", "the-old-password", "a-new-passphrase"


@pytest.fixture(scope="module")
def url(demo: Demo) -> str:
    """The demo's portal, with a risk manager who will forget the password."""
    demo.add_users((EMAIL, OLD_PASSWORD, Role.RISK_MANAGER))
    return demo.wait_until_up()[0]


@pytest.fixture
def page(url: str, browser: Browser) -> Iterator[Page]:
    """A fresh tab; the test fails if the browser logged any console or page error."""
    context = browser.new_context(viewport=VIEWPORT, base_url=url)
    tab = context.new_page()
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"{msg.text} {msg.location.get('url')}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == []


def _focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement?.id ?? ''"))


def _tab_to(page: Page, element_id: str) -> None:
    """Press Tab once and check where the focus went (the forms' Tab order)."""
    page.keyboard.press("Tab")
    assert _focused(page) == element_id


def _ask_for_link(page: Page, email: str) -> str:
    """/forgot by keyboard: type the address, Tab to the button, Enter; returns the answer shown."""
    page.goto("/forgot")
    page.wait_for_selector("#forgot-email:focus")
    page.wait_for_selector("#forgot-sent", state="detached")  # the page load cleared an earlier answer
    page.keyboard.type(email)
    _tab_to(page, "forgot-submit")
    page.keyboard.press("Enter")
    return page.locator("#forgot-sent").inner_text()


def test_forgotten_password_is_reset_by_mail_and_the_new_one_signs_in(
    page: Page, url: str, demo_mail: SmtpStub, artifacts: Path
) -> None:
    page.goto("/login")
    page.wait_for_selector("#email:focus")
    _tab_to(page, "password")
    _tab_to(page, "sign-in")
    _tab_to(page, "forgot-password")
    page.keyboard.press("Enter")
    page.wait_for_url("**/forgot", wait_until="commit")

    before = len(demo_mail.messages)
    unknown = _ask_for_link(page, "nobody@nowhere.test")
    page.screenshot(path=str(artifacts / "reset-forgot-sent.png"))
    known = _ask_for_link(page, EMAIL)
    assert unknown == known == ANSWER  # the page cannot tell which address has an account
    link = mailed_link(demo_mail, before, EMAIL, url, "reset")
    assert all(m.rcpt_tos == [EMAIL] for m in demo_mail.messages[before:])  # none to the unknown one

    page.goto(link)
    page.wait_for_selector("#reset-password:focus")
    page.keyboard.type("short1234")
    _tab_to(page, "reset-confirm")
    page.keyboard.type("short1234")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reset-error-password")
    assert "at least 10" in page.locator("#reset-error-password").inner_text()
    assert page.input_value("#reset-password") == "short1234"  # what was typed stays
    page.fill("#reset-password", NEW_PASSWORD)
    page.fill("#reset-confirm", NEW_PASSWORD + "!")
    page.focus("#reset-confirm")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reset-error-confirm")
    assert "differ" in page.locator("#reset-error-confirm").inner_text()
    page.screenshot(path=str(artifacts / "reset-field-error.png"))
    page.fill("#reset-confirm", NEW_PASSWORD)
    page.focus("#reset-confirm")
    _tab_to(page, "reset-submit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#reset-done")
    page.screenshot(path=str(artifacts / "reset-done.png"))

    page.click("#reset-sign-in")
    page.wait_for_url("**/login", wait_until="commit")
    page.wait_for_selector("#email:focus")
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(OLD_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#login-error")  # the old password no longer works
    page.fill("#password", NEW_PASSWORD)
    page.focus("#password")
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard", wait_until="commit", timeout=30_000)

    page.goto(link)  # the link worked once
    page.wait_for_selector("#reset-link-error")
    assert "already used" in page.locator("#reset-link-error").inner_text()
    assert page.locator("#reset-password").count() == 0
    page.screenshot(path=str(artifacts / "reset-link-used.png"))


def test_an_altered_or_missing_token_is_refused_before_any_password_is_typed(page: Page) -> None:
    for path in ("/reset?token=not-a-token-we-sent-00000000", "/reset"):
        page.goto(path)
        page.wait_for_selector("#reset-link-error")
        assert "not valid" in page.locator("#reset-link-error").inner_text()
        assert page.locator("#reset-password").count() == 0
    page.click("#reset-ask-again")
    page.wait_for_url("**/forgot", wait_until="commit")
    page.wait_for_selector("#forgot-email")
