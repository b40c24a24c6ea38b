"""Inviting a colleague as a broker admin meets it, against the shared `veles demo` in headless
Chromium: the users page answers "invitation sent" and lists the invitation as pending, the e-mail
is read from the demo's SMTP server, its link's /invite page names the broker, refuses a guessable
password beside the field and makes the user, who then signs in; the used link is refused, and the
admin's page then lists the new user and no pending invitation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, ViewportSize, expect

from models.tenancy import Role
from tests.browser.support import mailed_link
from tests.stubs.smtp_stub import SmtpStub
from veles.services.invitations import ANSWER

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
ADMIN, ADMIN_PASSWORD = "inviting.admin@demo.test", "the-admins-passphrase"
INVITEE, CHOSEN = "new.colleague@demo.test", "quiet harbour lanterns at dusk"


@pytest.fixture(scope="module")
def url(demo: Demo) -> str:
    """The demo's portal, with a tenant admin of the demo broker who invites."""
    demo.add_users((ADMIN, ADMIN_PASSWORD, Role.TENANT_ADMIN))
    return demo.wait_until_up()[0]


@pytest.fixture
def context(url: str, browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile; the test fails if any of its tabs logged a console or page error."""
    made = browser.new_context(viewport=VIEWPORT, base_url=url)
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"{msg.text} {msg.location.get('url')}")

    def watch(tab: Page) -> None:
        tab.on("console", on_console)
        tab.on("pageerror", lambda exc: errors.append(str(exc)))

    made.on("page", watch)
    yield made
    made.close()
    assert errors == []


def _sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.wait_for_selector("#email:focus")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard", wait_until="commit", timeout=60_000)


def test_an_invited_colleague_chooses_a_password_joins_and_signs_in(
    context: BrowserContext, url: str, demo_mail: SmtpStub, browser: Browser, artifacts: Path
) -> None:
    admin = context.new_page()
    _sign_in(admin, ADMIN, ADMIN_PASSWORD)
    admin.goto("/users")
    admin.wait_for_selector("#users-table")
    before = len(demo_mail.messages)
    admin.fill("#invite-email", INVITEE)
    admin.click("#invite-submit")
    admin.wait_for_selector("#users-notice")
    assert admin.locator("#users-notice").inner_text().strip() == ANSWER
    admin.wait_for_selector("#invitations-table .invitation-email")
    assert admin.locator("#invitations-table .invitation-email").all_inner_texts() == [INVITEE]
    assert admin.locator("#invitations-table .invitation-status").all_inner_texts() == ["pending"]
    assert INVITEE not in admin.locator("#users-table").inner_text()  # nobody is made before the link
    admin.screenshot(path=str(artifacts / "invite-sent.png"), full_page=True)
    link = mailed_link(demo_mail, before, INVITEE, url, "invite")

    invitee_profile = browser.new_context(viewport=VIEWPORT, base_url=url)  # signed out, elsewhere
    try:
        invitee = invitee_profile.new_page()
        invitee.goto(link)
        invitee.wait_for_selector("#invite-password:focus")
        # the link is checked in a thread after the page shows (off the event loop): wait for it
        expect(invitee.locator("#invite-address")).to_have_text(INVITEE)
        invitee.keyboard.type("password1234")
        invitee.keyboard.press("Tab")
        invitee.keyboard.type("password1234")
        invitee.keyboard.press("Enter")
        invitee.wait_for_selector("#invite-error-password")
        assert "too easy to guess" in invitee.locator("#invite-error-password").inner_text()
        assert invitee.input_value("#invite-password") == "password1234"  # what was typed stays
        invitee.screenshot(path=str(artifacts / "invite-field-error.png"))
        invitee.fill("#invite-password", CHOSEN)
        invitee.fill("#invite-confirm", CHOSEN)
        invitee.focus("#invite-confirm")
        invitee.keyboard.press("Enter")
        invitee.wait_for_selector("#invite-done")
        invitee.screenshot(path=str(artifacts / "invite-done.png"))
        invitee.click("#invite-sign-in")
        invitee.wait_for_url("**/login", wait_until="commit")
        _sign_in(invitee, INVITEE, CHOSEN)

        invitee.goto(link)  # the link worked once
        invitee.wait_for_selector("#invite-link-error")
        assert "already accepted" in invitee.locator("#invite-link-error").inner_text()
        assert invitee.locator("#invite-password").count() == 0
    finally:
        invitee_profile.close()

    admin.goto("/users")
    admin.wait_for_selector(f"#users-table td:has-text('{INVITEE}')")
    assert admin.locator("#invitations-table .invitation-email").count() == 0
