"""A real SMTP server (aiosmtpd) on a free local port that keeps every message it receives.

Mail goes out over `smtplib` exactly as in production and is read back parsed, attachments and
all. It can check a login, and refuse chosen recipients with 550.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server received it: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class SmtpStub:
    """The running server, the login it accepts (if any) and the mail it has received."""

    credentials: tuple[str, str] | None = None
    refuse: set[str] = field(default_factory=set)
    messages: list[ReceivedMail] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    _arrived: threading.Condition = field(default_factory=threading.Condition)
    _controller: Controller | None = None

    def settings_fields(self) -> dict[str, Any]:
        """Keyword arguments for `Settings` that send e-mail here (plain SMTP, no STARTTLS)."""
        user, password = self.credentials or (None, None)
        return {"smtp_host": self.host, "smtp_port": self.port, "smtp_starttls": False,
                "smtp_user": user, "smtp_password": password, "smtp_from": "Veles <alerts@veles.test>"}

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """The messages once at least `count` have arrived; AssertionError after `timeout` s."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} e-mails, got {len(self.messages)}")
            return list(self.messages)

    async def handle_RCPT(  # aiosmtpd handler hook
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._arrived:
            self.messages.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and self.credentials == (
            auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpStub:
        """Listen on a free port of 127.0.0.1 in aiosmtpd's own thread."""
        self.port = free_port()
        options: dict[str, Any] = {}
        if self.credentials is not None:
            # AUTH offered over plain TCP on 127.0.0.1 (no certificate for the client to trust)
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(self, hostname=self.host, port=self.port, **options)
        self._controller.start()
        return self

    def close(self) -> None:
        """Stop the server."""
        if self._controller is not None:
            self._controller.stop()
