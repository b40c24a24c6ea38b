"""Where reconciliation reads a connection's server's own account figures.

A real server (gateway kind "webapi") is read with its own Web API session, opened with the
connection's manager login for each check and closed after it: a check every few seconds needs no
kept-alive session, and it never shares (or disturbs) the feed's. A simulated server is read
through the fake Web API served beside it on 127.0.0.1 (`SimulatorFigures`), with a manager
account made up for the purpose: the same client, answers and failures as a real server.

`read()` blocks (it runs its own event loop): reconciliation calls it from a worker thread, never
from the supervisor's or the portal's loop.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Protocol

from veles.mt5.connect import GatewaySpec
from veles.mt5.gateway import Gateway
from veles.mt5.simulator import SimulatedBroker
from veles.mt5.webapi.accounts import WebAccount, account_figures
from veles.mt5.webapi.client import WebApiClient, WebApiSettings
from veles.mt5.webapi.fake_server import FakeWebApi, Manager, Source
from veles.mt5.webapi.local_server import LocalServer

RECONCILE_LOGIN = 1  # the made-up manager of a simulated server's fake Web API


class ServerFigures(Protocol):
    """A server's own figures of its accounts."""

    def read(self) -> dict[int, WebAccount]:
        """Every account the manager may read, by login (blocking; WebApiError on failure)."""
        ...

    def close(self) -> None:
        """Release what reading holds (a local server)."""
        ...


class WebApiFigures:
    """A server reached over the Web API: one session per read."""

    def __init__(self, settings: WebApiSettings, mask: str = "*") -> None:
        self.settings = settings
        self.mask = mask

    async def read_async(self) -> dict[int, WebAccount]:
        """Authenticate, read `user/account/get_batch` for the mask, close."""
        async with WebApiClient(self.settings) as client:
            return await account_figures(client, mask=self.mask)

    def read(self) -> dict[int, WebAccount]:
        """`read_async` on a loop of its own (call from a worker thread)."""
        return asyncio.run(self.read_async())

    def close(self) -> None:
        """Nothing stays open between reads."""


class SimulatorFigures(WebApiFigures):
    """A simulated broker's own figures, through a fake Web API served on 127.0.0.1 beside it."""

    def __init__(self, broker: SimulatedBroker, timeout_s: float = 10.0) -> None:
        password = secrets.token_urlsafe(16)
        fake = FakeWebApi(Source(broker.symbols, broker.accounts, broker.figures),
                          [Manager(RECONCILE_LOGIN, password, ip_allow=("127.0.0.1/32",))])
        self._server = LocalServer(fake.app)
        super().__init__(WebApiSettings(self._server.url, RECONCILE_LOGIN, password, timeout_s=timeout_s,
                                        attempts=2, backoff_s=0.1))

    def close(self) -> None:
        """Stop the fake server."""
        self._server.close()


def server_figures(spec: GatewaySpec, gateway: Gateway) -> ServerFigures | None:
    """How to read the server behind a connection; None when it publishes no figures of its own
    (a replay of recorded batches)."""
    if spec.kind == "webapi" and spec.login is not None and spec.password is not None:
        options = spec.options
        settings = WebApiSettings(str(options["url"]), spec.login, spec.password,
                                  ca_bundle=options.get("ca_bundle"),
                                  timeout_s=float(options.get("timeout_s", 10.0)))
        return WebApiFigures(settings, str(options.get("mask", "*")))
    if isinstance(gateway, SimulatedBroker):
        return SimulatorFigures(gateway)
    return None
