"""Pytest fixtures for the local stubs, registered for the whole suite in `tests/conftest.py`.

Use `Settings(**twilio_stub.settings_fields(), **smtp_server.settings_fields(), ...)` to send
SMS and e-mail to them; read back `twilio_stub.messages` and `smtp_server.wait_for(n)`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stubs.smtp_stub import SmtpStub
from tests.stubs.twilio_stub import TwilioStub


@pytest.fixture
def twilio_stub() -> Iterator[TwilioStub]:
    """A Twilio Messages API on a free local port, with fresh credentials."""
    stub = TwilioStub().start()
    yield stub
    stub.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpStub]:
    """A real SMTP server on a free local port that keeps what it receives (no login)."""
    stub = SmtpStub().start()
    yield stub
    stub.close()


@pytest.fixture
def smtp_server_with_login() -> Iterator[SmtpStub]:
    """The same server offering AUTH, accepting only `veles` / `smtp-secret`."""
    stub = SmtpStub(credentials=("veles", "smtp-secret")).start()
    yield stub
    stub.close()
