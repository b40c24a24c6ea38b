"""A local HTTP server that answers Twilio's Messages API the way Twilio does.

The official `twilio` client is pointed at it (`Settings.twilio_api_url`), so tests exercise the
real client: its URL building, form encoding, Basic auth and error parsing. Each accepted message
is recorded; a recipient can be made to fail with a Twilio error code, and the server can be made
to stall so a client timeout can be shown.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC[0-9a-f]{32})/Messages\.json$")


@dataclass(frozen=True)
class SmsRequest:
    """One Messages.create call as the stub received it."""

    account_sid: str
    to: str
    from_: str
    body: str
    sid: str


@dataclass
class TwilioStub:
    """The running stub: its URL, the credentials it accepts and what it has received."""

    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    from_number: str = "+15005550006"
    messages: list[SmsRequest] = field(default_factory=list)
    rejected: dict[str, tuple[int, str]] = field(default_factory=dict)
    stall: threading.Event | None = None
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reject(self, to: str, code: int, message: str) -> None:
        """Answer messages to `to` with HTTP 400 and this Twilio error code."""
        self.rejected[to] = (code, message)

    def hold_requests(self) -> None:
        """Make every request wait (until `close`) without answering: the client must time out."""
        self.stall = threading.Event()

    def settings_fields(self) -> dict[str, Any]:
        """Keyword arguments for `Settings` that point the Twilio client here."""
        return {"twilio_account_sid": self.account_sid, "twilio_auth_token": self.auth_token,
                "twilio_from_number": self.from_number, "twilio_api_url": self.url}

    def start(self) -> TwilioStub:
        """Listen on a free port of 127.0.0.1, serving from a daemon thread."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, payload = stub._answer(self.path, self.headers.get("Authorization", ""), form)
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="twilio-stub",
                         daemon=True).start()
        return self

    def close(self) -> None:
        """Release stalled requests and stop listening."""
        if self.stall is not None:
            self.stall.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(self, path: str, authorization: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.stall is not None:
            self.stall.wait()
        match = MESSAGES_PATH.match(path)
        if match is None:
            return 404, _error(20404, f"The requested resource {path} was not found", 404)
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if authorization != expected or match["sid"] != self.account_sid:
            return 401, _error(20003, "Authenticate", 401)
        to, sender, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return 400, _error(21604, "A 'To' phone number is required.", 400)
        if not body:
            return 400, _error(21602, "Message body is required.", 400)
        if to in self.rejected:
            code, text = self.rejected[to]
            return 400, _error(code, text, 400)
        sid = "SM" + secrets.token_hex(16)
        with self._lock:
            self.messages.append(SmsRequest(self.account_sid, to, sender, body, sid))
        now = format_datetime(datetime.now(UTC), usegmt=True)
        return 201, {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body,
            "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": sender, "messaging_service_sid": None,
            "num_media": "0", "num_segments": str(len(body) // 153 + 1), "price": None,
            "price_unit": "USD", "sid": sid, "status": "queued", "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    """Twilio's error document."""
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
