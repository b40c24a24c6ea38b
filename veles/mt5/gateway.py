"""The gateway protocol: what the engine needs from any source of MT5 data.

A gateway is pulled, not pushed: the engine calls `poll()` at its own pace and gets the next
batch. That keeps a seeded simulator deterministic whatever the machine's speed (the same seed
gives the same batches), lets a replay run faster than real time, and lets a real connector
(MetaTrader5 terminal package, Manager API, Web API) return whatever arrived since the last call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from veles.risk.events import AccountSnapshot, Batch
from veles.risk.instruments import SymbolSpec


class GatewayError(RuntimeError):
    """The gateway cannot serve: wrong credentials, server unreachable, unknown account."""


@runtime_checkable
class Gateway(Protocol):
    """One MT5 connection (one trade server) seen by the engine."""

    connection_id: str

    def symbols(self) -> Sequence[SymbolSpec]:
        """Every symbol the server trades, with the fields margin and profit depend on."""
        ...

    def accounts(self) -> Sequence[AccountSnapshot]:
        """Every trading account with its settings and open positions, as of now."""
        ...

    def account(self, login: int) -> AccountSnapshot:
        """One account as of now: what a restarted account actor re-synchronises from."""
        ...

    def poll(self) -> Batch:
        """The next batch of quotes and deals; empty tuples when nothing happened."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
