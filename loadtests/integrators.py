"""API integrators: a broker's own systems reading Veles over REST and the push socket.

An integration keeps one `/integrations` socket open (path /api/v1/ws) and receives every book
message of its tenant; each one's age from the gateway (`sent_at`) is reported as
`api: gateway → client` (BOOK). Beside it, it polls REST the way such jobs do: the book totals,
pages of accounts sorted by a figure, one account's positions, new alerts. Think times are a
poller's seconds, not a person's.
"""

from __future__ import annotations

import random
import time
from typing import Any

import socketio
from locust import between, task
from portal_session import BOOK
from push_socket import NAMESPACE, SOCKETIO_PATH
from rest_user import RestUser

SCENARIO = "api"
BOOK_NAME = f"{SCENARIO}: gateway → client"
SORTS = ("equity", "margin_level", "profit", "drawdown", "login")


class ApiIntegrator(RestUser):
    """One integration: a push socket and a REST poller."""

    weight = 2
    wait_time = between(1, 5)
    scenario = SCENARIO

    logins: list[int] = []

    def on_start(self) -> None:
        self.sio = socketio.Client(reconnection=False)
        super().on_start()
        assert self.host is not None
        self.sio.on("book", self._on_book, namespace=NAMESPACE)
        started = time.perf_counter()
        try:
            self.sio.connect(self.host, socketio_path=SOCKETIO_PATH, namespaces=[NAMESPACE],
                             transports=["websocket"], auth={"token": self.token}, wait_timeout=30)
        except Exception as exc:  # reported; the REST tasks still run
            self._fire("SOCKET", f"{SCENARIO}: connect", started, exc)
        else:
            self._fire("SOCKET", f"{SCENARIO}: connect", started, None)

    def _fire(self, kind: str, name: str, started: float, exc: Exception | None) -> None:
        self.environment.events.request.fire(request_type=kind, name=name,
                                             response_time=(time.perf_counter() - started) * 1000,
                                             response_length=0, exception=exc, context={})

    def _on_book(self, message: dict[str, Any]) -> None:
        sent_at = message.get("sent_at")
        if isinstance(sent_at, int | float) and sent_at > 0:
            self.environment.events.request.fire(request_type=BOOK, name=BOOK_NAME,
                                                 response_time=time.time() * 1000 - sent_at * 1000,
                                                 response_length=0, exception=None, context={})

    @task(3)
    def book(self) -> None:
        self.call("GET", "/api/v1/book", "GET /api/v1/book")

    @task(3)
    def accounts(self) -> None:
        """A page of accounts sorted by a figure, as a risk export would page through them."""
        page = self.call("GET", "/api/v1/accounts", "GET /api/v1/accounts", params={
            "sort": random.choice(SORTS), "order": random.choice(("asc", "desc")), "limit": 100})
        if page:
            self.logins = [row["login"] for row in page["accounts"]]

    @task(2)
    def account(self) -> None:
        if self.logins:
            self.call("GET", f"/api/v1/accounts/{random.choice(self.logins)}", "GET /api/v1/accounts/{login}")

    @task(1)
    def alerts(self) -> None:
        self.call("GET", "/api/v1/alerts", "GET /api/v1/alerts")

    def on_stop(self) -> None:
        self.sio.disconnect()
