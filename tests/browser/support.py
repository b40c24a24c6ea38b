"""Steps several browser tests take the same way: signing in through the form, collecting a tab's
console errors (a test fails on any), and reading the link out of an e-mail the demo sent."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import ConsoleMessage, Page

from tests.stubs.smtp_stub import SmtpStub


def console_errors(tab: Page) -> list[str]:
    """The list the tab's console errors are appended to from now on (the caller asserts it empty)."""
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(f"{msg.text} {msg.location.get('url')}")

    tab.on("console", on_console)
    return errors


def sign_in(tab: Page, email: str, password: str, timeout_ms: int = 60_000) -> None:
    """Fill the sign-in form, press its button, and wait for the dashboard."""
    tab.goto("/login")
    tab.fill("#email", email)
    tab.fill("#password", password)
    tab.click("#sign-in")
    tab.wait_for_url("**/dashboard", wait_until="commit", timeout=timeout_ms)


def mailed_link(mail: SmtpStub, after: int, to: str, url: str, route: str) -> str:
    """The `{url}/{route}?token=` link of the first e-mail to `to` among those after the first `after`."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for received in mail.messages[after:]:
            if received.rcpt_tos == [to]:
                body = received.message.get_body(preferencelist=("plain",))
                assert body is not None
                found = re.search(rf"^(\S+/{route}\?token=\S+?)\r?$", body.get_content(), re.MULTILINE)
                assert found, body.get_content()
                assert found.group(1).startswith(f"{url}/{route}?token=")
                return found.group(1)
        time.sleep(0.2)
    pytest.fail(f"no {route} e-mail to {to} within 30 s: {[m.rcpt_tos for m in mail.messages]}")
