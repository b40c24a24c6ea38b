"""Stored MT5 connections as a tenant's supervisor sees them: what to feed, and where to report.

The supervisor does not read `mt5_connection` rows or decrypt passwords itself (that is the
services layer's business, above the actors); it is handed a `FeedStore` when it is created. The
store object travels to the supervisor's process and is called there, so the manager passwords
are decrypted inside the engine only, never in the web process, and never logged: a
`GatewaySpec` keeps its password out of `repr`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from veles.mt5.connect import GatewaySpec
from veles.risk.events import AccountSnapshot


def stored_connection_id(row_id: int) -> str:
    """The engine's name of a stored connection (its actors are named after it)."""
    return f"conn-{row_id}"


@dataclass(frozen=True, slots=True)
class StoredFeed:
    """One stored connection, ready to open.

    `fingerprint` changes when what the gateway is opened with changes (server, login, password):
    the supervisor then closes the feed and opens it again. `spec` is None when the connection
    cannot be opened at all (its credentials do not decrypt with the configured keys); `problem`
    says why, without any secret.
    """

    row_id: int
    fingerprint: str
    spec: GatewaySpec | None = field(repr=False)
    problem: str | None = None

    @property
    def connection_id(self) -> str:
        """The engine's name of this connection."""
        return stored_connection_id(self.row_id)


class FeedStore(Protocol):
    """Where a supervisor reads its tenant's stored connections and reports on them."""

    def feeds(self) -> list[StoredFeed]:
        """Every stored connection of the tenant, decrypted (blocking: call off the event loop)."""
        ...

    def admit(self, feed: StoredFeed, accounts: Sequence[AccountSnapshot], besides: tuple[int, int] = (0, 0)
              ) -> None:
        """Atomically check the plan (as stored now) has room for the feed beside every other
        connected one and `besides` (servers, accounts fed from elsewhere), and mark it connected
        with its accounts; raise PlanLimitExceeded otherwise (blocking: call off the event loop)."""
        ...

    def failed(self, feed: StoredFeed, message: str) -> None:
        """The feed could not start: mark the row failed with `message` (no secrets in it)."""
        ...
