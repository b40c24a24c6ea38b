"""Security headers on every HTTP answer of the backend: the API, Reflex's backend routes and,
in production mode (one port), the portal's pages, since Reflex mounts all of them under the API
app (`veles_ui/veles_ui.py`, `api_transformer`).

The Content-Security-Policy is the strictest the Reflex front end runs under: its React Router
shell and colour-mode script are inline, and Reflex's event loop evaluates script it is sent
(`rx.call_script`, toasts), so scripts keep 'unsafe-inline' and 'unsafe-eval'; Radix and Emotion
write inline styles. What the policy does stop: framing by any site (clickjacking), plugins,
a changed <base>, forms posting elsewhere, and connections to any origin but the portal's own.
HSTS is sent only when the request arrived over TLS: PUBLIC_URL is https, the server saw https,
or a trusted proxy (TRUSTED_PROXIES) says X-Forwarded-Proto: https.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veles.config import Settings
from veles.services.ratelimit import Network

HSTS = "max-age=31536000; includeSubDomains"


def _origins(url: str) -> list[str]:
    """`url`'s origin and its WebSocket twin (Reflex's events travel over a socket)."""
    parts = urlsplit(url)
    socket = {"https": "wss", "http": "ws"}.get(parts.scheme)
    return [f"{parts.scheme}://{parts.netloc}"] + ([f"{socket}://{parts.netloc}"] if socket else [])


def content_security_policy(settings: Settings) -> str:
    """The policy for `settings`: connections only to the portal itself (where it is published,
    and where Reflex's front end is told the backend is)."""
    connect = ["'self'", *_origins(f"http://localhost:{settings.backend_port}")]
    if settings.public_url:
        connect += _origins(settings.public_url)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", "'unsafe-inline'", "'unsafe-eval'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": list(dict.fromkeys(connect)),
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    """The headers every answer carries (HSTS is added per request)."""
    pairs = {
        "content-security-policy": content_security_policy(settings),
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "strict-origin-when-cross-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    return [(name.encode(), value.encode()) for name, value in pairs.items()]


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class SecurityHeadersMiddleware:
    """Add the security headers to every HTTP response that does not set its own."""

    def __init__(self, app: ASGIApp, settings: Settings, trusted_proxies: Iterable[Network]) -> None:
        self._app = app
        self._headers = security_headers(settings)
        self._always_tls = (settings.public_url or "").lower().startswith("https://")
        self._trusted = tuple(trusted_proxies)

    def _over_tls(self, scope: Scope) -> bool:
        if self._always_tls or scope.get("scheme") == "https":
            return True
        peer = (scope.get("client") or ("",))[0]
        forwarded = (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower()
        return forwarded == "https" and _is_trusted(peer, self._trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers as the response starts."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        hsts = [(b"strict-transport-security", HSTS.encode())] if self._over_tls(scope) else []
        extra = self._headers + hsts

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                message["headers"] = [*message.get("headers", ()), *(h for h in extra if h[0] not in present)]
            await send(message)

        await self._app(scope, receive, with_headers)
