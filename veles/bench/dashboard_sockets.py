"""Dashboard sessions without a browser: socket.io clients that speak the Reflex frontend's protocol.

`veles bench ui` with Chromium measures all the way to the screen, but on a small machine N
rendering tabs cost far more CPU than the portal serving them (10 tabs: ~150% of a core for
Chromium against ~6% for the portal), so at 50 tabs the latencies measure Chromium fighting for
the cores. These clients do what a tab's JavaScript does on the wire and nothing else: connect
to the portal's `/_event` socket with a fresh session token, send the `hydrate_and_load` event a
browser sends on connect (the sign-in cookies as client-storage vars, the /dashboard route), and
read the state deltas the dashboard's stream pushes. Each delta carrying a new book stamp is
timed the moment it is decoded: server → client, rendering excluded.

The protocol's pieces (`hydrate_event`, `handler_event`, `session_url`, `BookStamps`) are apart
from the asyncio client so the Locust scenarios (loadtests/), whose users run on gevent with
python-socketio's blocking client, speak it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import socketio
from reflex.state import State
from reflex_base.constants import Endpoint
from reflex_base.constants.state import FIELD_MARKER
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from veles_ui.state.session import SessionState

# The event a Reflex page sends when its socket connects: restore client storage, send the
# state, run the page's on_load handlers (the dashboard's stream starts there).
_HYDRATE = f"{State.get_name()}.hydrate_and_load"
_STAMP = f"stamp{FIELD_MARKER}"
# The sign-in cookies, under the client-storage names the hydrate event carries them by.
_TOKEN_VAR = f"{SessionState.get_full_name()}.token{FIELD_MARKER}"
# The frontend's socket.io URL is <backend>/_event: both its engine.io path and its namespace.
EVENT_PATH = str(Endpoint.EVENT)
# Sessions opening at once (a sliding window): one at a time, 1,000 sessions took longer to open
# than to measure; all at once, the portal's accept queue overflowed and sockets failed to connect.
CONNECT_CONCURRENCY = 25
# Tries per socket before it counts as a connect failure (a busy portal answers a handshake late).
CONNECT_ATTEMPTS = 4
CONNECT_TIMEOUT_S = 60
# What a failed connect raises: socket.io's own error, a refused or reset TCP connection, a timeout.
_CONNECT_ERRORS = (socketio.exceptions.ConnectionError, OSError, TimeoutError)


def sign_in(url: str, email: str, password: str) -> tuple[str, str]:
    """Access and refresh token from the portal's API: the pair the sign-in page keeps in cookies."""
    request = urllib.request.Request(  # noqa: S310 (the portal's own URL)
        f"{url}/api/v1/auth/token", data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        pair = json.load(response)
    return pair["access_token"], pair["refresh_token"]


def session_url(url: str) -> str:
    """The socket URL of a new tab: the portal's address with a fresh session token in the query,
    as the frontend connects (its engine.io path and namespace are both `EVENT_PATH`)."""
    return f"{url}?token={uuid.uuid4()}"


def hydrate_event(access_token: str, path: str = "/dashboard") -> dict[str, Any]:
    """The boot event a page sends in its CONNECT packet: the sign-in cookie as a client-storage
    var and the route, whose on_load handlers (a page's stream) then run."""
    return {
        "name": _HYDRATE,
        # the refresh token is never part of the portal's state (an HttpOnly cookie the socket
        # does not carry): a session without it lasts as long as its access token
        "payload": {"vars": {_TOKEN_VAR: access_token}},
        "router_data": {"pathname": path, "asPath": path},
    }


def handler_event(handler: str, payload: dict[str, Any], path: str) -> dict[str, Any]:
    """An event a page sends when the user acts (`handler` is the state's full name, a dot and the
    handler's name), with the router data of the page it was sent from."""
    return {"name": handler, "payload": payload, "router_data": {"pathname": path, "asPath": path}}


def field_key(name: str) -> str:
    """How a state field is named inside a delta."""
    return f"{name}{FIELD_MARKER}"


@dataclass
class BookStamps:
    """Reads the state updates of one session: the redirects the portal sends, and for each new
    book stamp its [gateway age ms, publish age ms, epoch ms received] the moment it is decoded."""

    redirects: list[str] = field(default_factory=list)
    _last: str = ""

    def read(self, update: dict[str, Any]) -> list[list[float]]:
        """The new stamps this update carries (usually none or one), aged as of now."""
        now = time.time() * 1000
        for event in update.get("events") or []:
            if event.get("name") == "_redirect":
                self.redirects.append(str((event.get("payload") or {}).get("path")))
        found = []
        for substate in (update.get("delta") or {}).values():
            stamp = substate.get(_STAMP) if isinstance(substate, dict) else None
            if not stamp or stamp == self._last:
                continue
            self._last = stamp
            sent, published = (float(part) for part in stamp.split())
            if sent > 0:
                found.append([now - sent, now - published, now])
        return found


@dataclass
class DashboardClient:
    """One dashboard session: its socket and, per new stamp, [gateway age ms, publish age ms,
    epoch ms received]."""

    url: str
    access_token: str
    refresh_token: str
    samples: list[list[float]] = field(default_factory=list)
    stamps: BookStamps = field(default_factory=BookStamps)
    # Set by the first stamp or the first redirect, whichever the portal sends first.
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    _sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))

    @property
    def redirects(self) -> list[str]:
        """Paths the portal sent this session to (a refused sign-in goes to /login)."""
        return self.stamps.redirects

    def _on_event(self, update: dict[str, Any]) -> None:
        new = self.stamps.read(update)
        self.samples.extend(new)
        if new or self.stamps.redirects:
            self.answered.set()

    async def connect(self) -> None:
        """Open the socket with the boot event riding in the CONNECT packet, as the frontend does:
        a new socket.io client and a new tab token each time, so a retried connect is a clean one."""
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("event", self._on_event, namespace=EVENT_PATH)
        try:
            await sio.connect(
                session_url(self.url), socketio_path=EVENT_PATH, namespaces=[EVENT_PATH],
                transports=["websocket"], auth={"event": hydrate_event(self.access_token)},
                wait_timeout=CONNECT_TIMEOUT_S,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await sio.disconnect()
            raise
        self._sio = sio

    async def close(self) -> None:
        await self._sio.disconnect()


async def _first_update(client: DashboardClient) -> None:
    """Wait for the client's first stamp; a redirect away from the dashboard (the tokens were
    refused) ends the wait with an error instead of a timeout."""
    await client.answered.wait()
    if not client.samples:
        raise RefusedError(f"the portal sent the session to {client.redirects} instead of the dashboard")


class RefusedError(RuntimeError):
    """The portal answered a session with a redirect (to sign in) instead of the dashboard."""


@dataclass
class Opening:
    """What became of the sessions asked for: the clients streaming (connected, first update in),
    and per failure kind how many did not get there. A loaded portal fails some sessions rather
    than all; the benchmark reports them apart from the latency of those that stream."""

    clients: list[DashboardClient]
    # "connect: <error>" after CONNECT_ATTEMPTS tries, "no first update", "refused: <paths>"
    failures: Counter[str] = field(default_factory=Counter)
    retries: int = 0  # connects tried again (each a failed try that a later one made good)
    seconds: float = 0.0  # from the first connect to the last session streaming or failing

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


async def _connect(client: DashboardClient, gate: asyncio.Semaphore, opening: Opening) -> None:
    """Connect under the gate, retried with backoff (tenacity, bounded tries)."""

    def count_retry(_state: Any) -> None:
        opening.retries += 1

    async with gate:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(CONNECT_ATTEMPTS), wait=wait_exponential(0.5, max=8) + wait_random(0, 1),
            retry=retry_if_exception_type(_CONNECT_ERRORS), before_sleep=count_retry, reraise=True,
        ):
            with attempt:
                await client.connect()


async def _open_one(client: DashboardClient, gate: asyncio.Semaphore, first_update_timeout: float,
                    opening: Opening) -> bool:
    """One session up to its first update; False (and the failure counted) when it did not get there."""
    try:
        await _connect(client, gate, opening)
    except _CONNECT_ERRORS as exc:
        opening.failures[f"connect: {type(exc).__name__}: {str(exc)[:80]}"] += 1
        return False
    try:
        await asyncio.wait_for(_first_update(client), first_update_timeout)
    except TimeoutError:
        opening.failures[f"no first update within {first_update_timeout:.0f} s"] += 1
        return False
    except RefusedError:
        opening.failures[f"refused: sent to {client.redirects}"] += 1
        return False
    return True


async def open_sessions(url: str, access_token: str, refresh_token: str, sessions: int,
                        first_update_timeout: float, concurrency: int = CONNECT_CONCURRENCY) -> Opening:
    """Open `sessions` dashboard sessions, at most `concurrency` connecting at once, each connect
    retried; the first-update wait of each starts when it connected. Sessions that fail are
    closed and counted by kind, not raised: the caller decides what a failure means."""
    gate = asyncio.Semaphore(concurrency)
    clients = [DashboardClient(url, access_token, refresh_token) for _ in range(sessions)]
    opening = Opening(clients=[])
    started = time.monotonic()
    try:
        streaming = await asyncio.gather(
            *(_open_one(c, gate, first_update_timeout, opening) for c in clients))
    except BaseException:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        raise
    opening.seconds = time.monotonic() - started
    opening.clients = [c for c, ok in zip(clients, streaming, strict=True) if ok]
    await asyncio.gather(*(c.close() for c, ok in zip(clients, streaming, strict=True) if not ok),
                         return_exceptions=True)
    return opening


async def open_clients(url: str, access_token: str, refresh_token: str, sessions: int,
                       first_update_timeout: float) -> list[DashboardClient]:
    """`sessions` connected clients, each with its first update in; any session that does not get
    there fails the call (a refused one with the paths it was sent to, at once)."""
    opening = await open_sessions(url, access_token, refresh_token, sessions, first_update_timeout)
    if opening.failures:
        await asyncio.gather(*(c.close() for c in opening.clients), return_exceptions=True)
        raise RuntimeError(f"{opening.failed} of {sessions} sessions failed: {dict(opening.failures)}")
    return opening.clients
