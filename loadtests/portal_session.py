"""One portal tab over socket.io, for Locust's gevent users.

It speaks the frontend's protocol through `veles.bench.dashboard_sockets` (what `veles bench ui
--clients socket` uses), with python-socketio's blocking client, which Locust's gevent patching
turns into greenlets. A tab opens on a route (its on_load handlers start the page's stream), sends
the events a click sends, and hands every state update to its listeners; each new book stamp is
reported to Locust as a BOOK sample whose response time is the update's age from the gateway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import socketio
from gevent.event import Event
from locust.env import Environment

from veles.bench.dashboard_sockets import (
    EVENT_PATH,
    BookStamps,
    handler_event,
    hydrate_event,
    session_url,
)

OPEN_TIMEOUT_S = 60.0  # a tab that shows no figures within this fails its request
BOOK = "BOOK"  # the request type of the book-age samples

Update = dict[str, Any]


class PortalTab:
    """A signed-in tab on `path`; `book_name` is the Locust name its book ages are reported under
    (None: not reported). The tab counts as open at its first book update, or at the first update
    `ready` recognises."""

    def __init__(self, environment: Environment, host: str, token: str, path: str,
                 book_name: str | None, ready: Callable[[Update], bool] | None = None) -> None:
        self._env, self._host, self._token, self.path = environment, host, token, path
        self._book_name = book_name
        self._ready = ready
        self._stamps = BookStamps()
        self._listeners: list[Callable[[Update], None]] = []
        self._opened = Event()
        self._sio = socketio.Client(reconnection=False)
        self._sio.on("event", self._on_update, namespace=EVENT_PATH)

    @property
    def redirects(self) -> list[str]:
        return self._stamps.redirects

    def listen(self, listener: Callable[[Update], None]) -> None:
        """Hand every state update this tab receives to `listener` too."""
        self._listeners.append(listener)

    def _on_update(self, update: Update) -> None:
        stamps = self._stamps.read(update)
        if (self._ready(update) if self._ready is not None else bool(stamps)):
            self._opened.set()
        for gateway_ms, _publish_ms, _received in stamps:
            if self._book_name is not None:
                self._env.events.request.fire(request_type=BOOK, name=self._book_name,
                                              response_time=gateway_ms, response_length=0, exception=None,
                                              context={})
        if self._stamps.redirects:
            self._opened.set()  # sent away (to sign in): no figures will come
        for listener in list(self._listeners):
            listener(update)

    def open(self) -> float:
        """Connect and wait until the page shows its figures; milliseconds it took. Raises when the
        portal sends the tab elsewhere or shows nothing in time."""
        started = time.perf_counter()
        self._sio.connect(session_url(self._host), socketio_path=EVENT_PATH, namespaces=[EVENT_PATH],
                          transports=["websocket"], auth={"event": hydrate_event(self._token, self.path)},
                          wait_timeout=OPEN_TIMEOUT_S)
        if not self._opened.wait(OPEN_TIMEOUT_S):
            raise TimeoutError(f"{self.path} showed no figures within {OPEN_TIMEOUT_S:.0f} s")
        if self._stamps.redirects:
            raise RuntimeError(f"the portal sent {self.path} to {self._stamps.redirects}")
        return (time.perf_counter() - started) * 1000

    def act(self, handler: str, payload: dict[str, Any], answered: Callable[[Update], bool],
            timeout: float = OPEN_TIMEOUT_S) -> float:
        """Send a click's event and wait for the update `answered` recognises; milliseconds it took."""
        done = Event()

        def listen(update: Update) -> None:
            if answered(update):
                done.set()

        self._listeners.append(listen)
        try:
            started = time.perf_counter()
            self._sio.emit("event", handler_event(handler, payload, self.path), namespace=EVENT_PATH)
            if not done.wait(timeout):
                raise TimeoutError(f"{handler} on {self.path} got no answer within {timeout:.0f} s")
            return (time.perf_counter() - started) * 1000
        finally:
            self._listeners.remove(listen)

    def close(self) -> None:
        """Leave the page (the portal's streams for it stop when the socket goes)."""
        with gevent.Timeout(10, False):
            self._sio.disconnect()


def timed(environment: Environment, request_type: str, name: str, action: Callable[[], float]) -> None:
    """Run `action` (which returns its own milliseconds) and report it to Locust, or its failure."""
    started = time.perf_counter()
    try:
        elapsed = action()
    except Exception as exc:  # reported as the request's failure, the user carries on
        environment.events.request.fire(request_type=request_type, name=name,
                                        response_time=(time.perf_counter() - started) * 1000,
                                        response_length=0, exception=exc, context={})
        return
    environment.events.request.fire(request_type=request_type, name=name, response_time=elapsed,
                                    response_length=0, exception=None, context={})
