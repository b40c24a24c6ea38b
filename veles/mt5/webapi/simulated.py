"""A simulated broker behind the fake MT5 Web API, served on 127.0.0.1: what `veles demo
--via-webapi` and `veles bench engine --via-webapi` feed the engine through, so the whole
connector (HTTP, authentication, polling, deduplication) runs as it would against a real server.

The simulator advances on its own timer (`BrokerDriver`), like a live server that trades whether
or not anyone reads it; the engine's Web API gateway polls it at its own pace. The server speaks
plain HTTP on the loopback interface only (a real server's `https://` address is verified, see
`veles.services.connections`); one manager account with every right, its password random per
run.
"""

from __future__ import annotations

import secrets
from typing import Any

from veles.mt5.simulator import SimulatedBroker
from veles.mt5.webapi.fake_feed import BrokerDriver, TradeFeed, owners_of
from veles.mt5.webapi.fake_server import FakeWebApi, Manager, Source
from veles.mt5.webapi.local_server import LocalServer
from veles.risk.events import Deal, DealKind

MANAGER_LOGIN = 1000


class SimulatedWebApi:
    """A running simulated MT5 server with a Web API: `url`, `login`, `password`; `close()`."""

    def __init__(self, trading: bool = True, password: str | None = None, **broker: Any) -> None:
        """`broker` are `SimulatedBroker`'s arguments (accounts, seed, interval, start_msc, ...);
        `trading=False` holds the simulation at its first step until `start_trading()`; `password`
        is the manager's (random when not given)."""
        self.broker = SimulatedBroker(**broker)
        source = Source(self.broker.symbols, self.broker.accounts)
        self.feed = TradeFeed(owners_of(self.broker))
        self.driver = BrokerDriver(self.broker, self.feed, source.lock)
        self.driver.advance()  # the first batch: a price for every symbol
        self.login = MANAGER_LOGIN
        self.password = password or secrets.token_urlsafe(16)
        self._lock = source.lock
        self.fake = FakeWebApi(source, [Manager(self.login, self.password)], feed=self.feed,
                               money=self._move_money)
        self._server = LocalServer(self.fake.app)
        self.url = self._server.url
        if trading:
            self.driver.start()

    def _move_money(self, login: int, kind: DealKind, amount: float, comment: str) -> Deal:
        """trade/balance: the deal is booked between two steps of the simulation, and served with
        the next step's deals (KeyError for an unknown login)."""
        with self._lock:
            if kind is DealKind.CREDIT:
                return self.broker.server.credit(login, amount, comment)
            return self.broker.server.balance(login, amount, comment)

    @property
    def steps(self) -> int:
        """Simulator polls so far (the first one included)."""
        return self.feed.step

    def start_trading(self) -> None:
        """Let the simulation run on its timer."""
        self.driver.start()

    def stop_trading(self) -> None:
        """Freeze the simulation (the server keeps answering): its books stop moving."""
        self.driver.stop()

    def close(self) -> None:
        """Stop the simulation and the server."""
        self.driver.stop()
        self._server.close()
