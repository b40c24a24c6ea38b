"""A ceiling on request bodies, enforced before anything parses them.

Without it a 50 MB JSON body is read and parsed before the route even checks the sign-in. This
pure ASGI middleware answers 413 straight away when Content-Length says the body is too big, and
for a body sent without a length (chunked, streamed) it counts the bytes as the app reads them
and stops at the limit: the app sees an HTTPException(413), which FastAPI and Starlette turn into
the answer, and if the app swallowed it the middleware answers 413 itself. Nothing beyond the
limit is ever buffered. It wraps the whole backend (API and the Reflex routes mounted under it).

A declared body that is too big but no bigger than `DRAIN_BYTES` is read to its end and thrown
away before the 413 goes out. A proxy in front (nginx buffers a whole body up to its own
client_max_body_size, 2m in deploy/nginx.conf, then writes it on) is still writing when the
answer comes; closing on it made nginx answer 502 "upstream prematurely closed" instead of
Veles' 413 (seen in CI, now and then). A bigger declared body is refused at once: reading it
would be the cost the limit is there to save.
"""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_BYTES = 8 << 20  # declared bodies up to this are read (and discarded) before the 413
DRAIN_S = 10.0  # and for no longer than this


class BodyTooLarge(HTTPException):
    """The body went past the limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _reason(limit))


def _reason(limit: int) -> str:
    return f"The request body is larger than the {limit}-byte limit (MAX_REQUEST_BYTES)."


class BodyLimitMiddleware:
    """Refuse request bodies over `limit` bytes with 413, before they are parsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": _reason(self._limit)}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count what is actually received."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self._limit:
            if declared <= DRAIN_BYTES:
                await _drain(receive)
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._limit:
                    raise BodyTooLarge(self._limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(send)


async def _drain(receive: Receive) -> None:
    """Read the request body to its end, keeping none of it; give up after DRAIN_BYTES or DRAIN_S
    (the connection is closed after the answer either way)."""
    read = 0
    try:
        async with asyncio.timeout(DRAIN_S):
            while read <= DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    return
                read += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


def _content_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; None when absent. A malformed one is left to the
    server (uvicorn refuses it before the app runs)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
