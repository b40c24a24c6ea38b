"""TenantSupervisor: one per tenant. Owns the tenant's MT5 connections and its actors.

For each connection it opens the gateway inside this process, starts one MT5AccountActor per
trading account and keeps a symbol → accounts index, so a price batch calls only the accounts
that hold (or convert through) a changed symbol. It pumps each gateway at a fixed pace; when the
fan-out falls behind, the due batches are merged (quotes latest-wins, deals all kept, in order),
which bounds the work queued anywhere to one batch per connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.actor import ActorHandle

from actors.mt5_account import AccountUpdate, MT5AccountActor
from actors.names import account_name, aggregator_name
from actors.risk_aggregator import RiskAggregator
from veles.mt5.connect import GatewaySpec, open_gateway
from veles.mt5.gateway import Gateway
from veles.risk.events import Batch, Deal, Quote, merge_batches

log = logging.getLogger(__name__)


@dataclass
class Connection:
    """Live state of one MT5 connection inside the supervisor."""

    spec: GatewaySpec
    gateway: Gateway
    accounts: dict[int, ActorHandle] = field(default_factory=dict)
    index: defaultdict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    needs: dict[int, frozenset[str]] = field(default_factory=dict)
    last_quotes: dict[str, Quote] = field(default_factory=dict)
    batches: int = 0
    deals: int = 0
    merged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    last_error: str = ""

    def reindex(self, login: int, needed: frozenset[str]) -> None:
        """Point the symbol index at what the account depends on now."""
        old = self.needs.get(login, frozenset())
        if old == needed:
            return
        for symbol in old - needed:
            self.index[symbol].discard(login)
        for symbol in needed - old:
            self.index[symbol].add(login)
        self.needs[login] = needed


@ray.remote(num_cpus=0, max_restarts=-1)
class TenantSupervisor:
    """Supervises one tenant's gateways, account actors and aggregator."""

    def __init__(
        self,
        tenant_id: int,
        gateways: list[GatewaySpec],
        publish_hz: float,
        redis_url: str | None,
    ) -> None:
        self.tenant_id = tenant_id
        self._specs = gateways
        self._publish_hz = publish_hz
        self._redis_url = redis_url
        self._connections: dict[str, Connection] = {}
        self._aggregator: ActorHandle | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._started = time.time()

    async def start(self) -> dict[str, Any]:
        """Open every connection, start the actors and the pumps; returns `status()`."""
        if self._aggregator is None:
            self._aggregator = RiskAggregator.options(  # type: ignore[attr-defined]
                name=aggregator_name(self.tenant_id), lifetime="detached", get_if_exists=True
            ).remote(self.tenant_id, self._publish_hz, self._redis_url)
            await self._aggregator.start.remote()
        for spec in self._specs:
            if spec.connection_id not in self._connections:
                conn = await self._open(spec)
                self._connections[spec.connection_id] = conn
                self._pumps.append(asyncio.create_task(self._pump(conn)))
        return await self.status()

    async def _open(self, spec: GatewaySpec) -> Connection:
        gateway = open_gateway(spec)
        conn = Connection(spec=spec, gateway=gateway)
        symbols = {s.name: s for s in gateway.symbols()}
        # the first batch carries the current prices every account needs to value its positions
        first = gateway.poll()
        conn.last_quotes.update({q.symbol: q for q in first.quotes})
        for snapshot in gateway.accounts():
            conn.accounts[snapshot.login] = MT5AccountActor.options(  # type: ignore[attr-defined]
                name=account_name(self.tenant_id, spec.connection_id, snapshot.login),
                lifetime="detached",
                get_if_exists=True,
            ).remote(snapshot, symbols, dict(conn.last_quotes))
        updates: list[AccountUpdate] = await asyncio.gather(
            *(actor.apply.remote((), ()) for actor in conn.accounts.values())
        )
        await self._absorb(conn, updates, first.sent_at)
        log.info("tenant %s: connection %s opened, %d accounts", self.tenant_id, spec.connection_id,
                 len(conn.accounts))
        return conn

    async def _pump(self, conn: Connection) -> None:
        interval = float(conn.spec.options.get("interval", 0.25))
        next_at = time.monotonic()
        while True:
            due = 1 + max(0, int((time.monotonic() - next_at) / interval))
            try:
                batch = merge_batches([conn.gateway.poll() for _ in range(due)])
                conn.merged += due - 1
                next_at += due * interval
                await self._dispatch(conn, batch)
            except Exception as exc:  # one bad batch must not stop the tenant
                conn.last_error = f"{type(exc).__name__}: {exc}"
                conn.rejected["batch_error"] += 1
                log.exception("tenant %s: batch failed on %s", self.tenant_id, conn.spec.connection_id)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _dispatch(self, conn: Connection, batch: Batch) -> None:
        quotes: defaultdict[int, list[Quote]] = defaultdict(list)
        for quote in batch.quotes:
            conn.last_quotes[quote.symbol] = quote
            for login in conn.index.get(quote.symbol, ()):
                quotes[login].append(quote)
        deals: defaultdict[int, list[Deal]] = defaultdict(list)
        for deal in batch.deals:
            if deal.login in conn.accounts:
                deals[deal.login].append(deal)
            else:
                conn.rejected["unknown_login"] += 1
        board = tuple(conn.last_quotes.values()) if deals else ()
        updates: list[AccountUpdate] = await asyncio.gather(
            *(
                conn.accounts[login].apply.remote(
                    tuple(quotes.get(login, ())),
                    tuple(deals.get(login, ())),
                    board if login in deals else (),
                )
                for login in quotes.keys() | deals.keys()
            )
        )
        conn.batches += 1
        conn.deals += len(batch.deals)
        await self._absorb(conn, updates, batch.sent_at)

    async def _absorb(self, conn: Connection, updates: list[AccountUpdate], sent_at: float) -> None:
        figures = []
        for update in updates:
            conn.reindex(update.login, update.symbols_needed)
            for reason in update.rejected:
                conn.rejected["account_rejected"] += 1
                conn.last_error = f"{update.login}: {reason}"
            if update.figures is not None:
                figures.append(update.figures)
        if figures and self._aggregator is not None:
            await self._aggregator.apply.remote(figures, sent_at)

    async def status(self) -> dict[str, Any]:
        """What an operator needs: per connection, accounts, batches, merges and rejections."""
        return {
            "tenant_id": self.tenant_id,
            "uptime_s": round(time.time() - self._started, 1),
            "connections": [
                {
                    "connection_id": cid,
                    "accounts": len(c.accounts),
                    "batches": c.batches,
                    "deals": c.deals,
                    "merged_batches": c.merged,
                    "rejected": dict(c.rejected),
                    "last_error": c.last_error,
                }
                for cid, c in self._connections.items()
            ],
        }

    async def stop(self) -> None:
        """Stop pumping and kill this tenant's children (the supervisor itself is killed by its owner)."""
        for task in self._pumps:
            task.cancel()
        self._pumps.clear()
        for conn in self._connections.values():
            conn.gateway.close()
            for actor in conn.accounts.values():
                ray.kill(actor)
        self._connections.clear()
        if self._aggregator is not None:
            ray.kill(self._aggregator)
            self._aggregator = None
