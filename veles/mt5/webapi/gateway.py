"""`WebApiGateway`: a real MT5 server, read through the Web API, behind the `Gateway` protocol.

The engine pulls (`poll()`) on its own event loop and must never wait on the network there, so
the gateway runs its own: a thread with an asyncio loop and one `WebApiClient` session. That loop
polls the server every `interval` seconds and accumulates what arrived; `poll()` only takes the
accumulation under a lock. A slow or dead server therefore stalls nobody but its own thread: the
tenant's other connections keep their pace.

Opening (`__init__`, which the supervisor already runs in a worker thread): authenticate, read
the symbols and groups, the last tick of every symbol (`tick/last`, `trans_id=0`), then accounts
and positions consistently with the deal history: read the deals of the last minutes, the users
and positions, the deals again; accounts that dealt in between are read again, until a round
sees no new deal. Every account then reflects exactly the deals seen, which are the ones the
feed will not deliver again.

Polling: `tick/last?trans_id=N` (the symbols changed since the last transaction id), then
`deal/get_batch?group=MASK&from&to` over a window reaching `deal_overlap_s` (5 s) back from the newest
deal or tick seen, so a deal the history published late is still found; deals are deduplicated by
ticket (the overlap, and servers, repeat them) and delivered in ticket order, after the batch's
quotes. Balance and credit operations are deals (`convert.deal`). When the engine stops taking
batches, the accumulation stops growing at `max_pending_deals`: deal polling pauses (the server
keeps its history) until the engine catches up, so nothing is dropped and memory is bounded.

Rollovers: MT5 charges swaps to open positions at the server's midnight without a deal. When the
ticks' server day changes, the gateway reads the positions (consistently with the deals, as for
the snapshot) and sends each open position's swap as a `PositionSwap` in a batch of its own, after
every deal before it and before any deal after it.

Sessions: `/api/test/access` every `ping_s` without other traffic; the client re-authenticates on
401/403, a dropped connection or a timeout (every call has one). When the client gives up, the
gateway reconnects with tenacity (exponential wait, stopped after `reconnect_s`) and shows it in
`state` ("connecting", "live", "reconnecting", "failed", "closed"); after the stop it is "failed"
and `poll()` raises GatewayError with the reason.

`accounts()` and `account(login)` are the opening snapshot plus every deal delivered since, booked
as the simulator books them (`veles.mt5.ledger.AccountBook`), without a network call: what a
restarted account actor re-synchronises from, consistent with the batches it will be replayed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from veles.mt5 import gateway as gateway_protocol
from veles.mt5.ledger import AccountBook
from veles.mt5.webapi import convert
from veles.mt5.webapi.client import WebApiClient, WebApiSettings
from veles.mt5.webapi.errors import AuthError, ProtocolError, WebApiError
from veles.risk.events import AccountSnapshot, Batch, Deal, Position, PositionSwap, Quote
from veles.risk.instruments import SymbolSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

SNAPSHOT_ROUNDS = 20  # re-reads of the accounts that dealt while the snapshot was being taken
DAY_MS = 86_400_000
HORIZON_S = 86_400  # the deal window's end, ahead of the server clock (the window is open-ended)


@dataclass
class GatewayStats:
    """What the gateway did, for `veles bench` and the connection's status."""

    polls: int = 0
    requests_failed: int = 0
    reconnects: int = 0
    deals: int = 0
    repeated_deals: int = 0  # deals answered again (the overlapping window, a server repeating): dropped
    quotes: int = 0
    paused_deal_polls: int = 0
    rollovers: int = 0
    cpu_s: float = 0.0  # thread CPU of the gateway's loop
    waited_s: float = 0.0  # the longest anything waited in the gateway for the engine's poll()
    snapshot_rounds: int = 0
    last_error: str = ""


@dataclass
class _Pending:
    """What arrived since the engine's last `poll()`: one batch in the making. A rollover's swaps
    start a new one (they apply after every earlier deal and before the later ones)."""

    quotes: dict[str, Quote] = field(default_factory=dict)
    deals: list[Deal] = field(default_factory=list)
    swaps: tuple[PositionSwap, ...] = ()
    since: float | None = None  # wall clock of the oldest thing in it


class WebApiGateway:
    """One MT5 server through its Web API (see the module docstring)."""

    def __init__(
        self,
        settings: WebApiSettings,
        connection_id: str,
        *,
        mask: str = "*",
        interval: float = 0.25,
        ping_s: float = 20.0,
        deal_overlap_s: int = 5,
        reconnect_s: float = 300.0,
        open_timeout_s: float = 120.0,
        max_pending_deals: int = 100_000,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.connection_id = connection_id
        self.settings = settings
        self.mask = mask
        self.interval = interval
        self.ping_s = ping_s
        self.deal_overlap_s = deal_overlap_s
        self.reconnect_s = reconnect_s
        self.max_pending_deals = max_pending_deals
        self.state = "connecting"
        self.stats = GatewayStats()
        self._client: WebApiClient | None = None
        self._symbols: dict[str, SymbolSpec] = {}
        self._books: dict[int, AccountBook] = {}
        self._trans_id = 0
        self._seen: dict[int, int] = {}  # deal ticket -> its time (s), within the overlap window
        self._server_s = 0  # the newest server time (s) seen on a tick or a deal
        self._pending: list[_Pending] = [_Pending()]
        self._day = -1  # the server day (ms // DAY_MS) of the newest tick: a change is a rollover
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self._last_request = time.monotonic()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"mt5-webapi-{connection_id}",
                                        daemon=True)
        self._thread.start()
        try:
            self._call(self._open(), open_timeout_s)
        except BaseException:
            self.close()
            raise
        self.state = "live"
        self._runner: Future[None] = asyncio.run_coroutine_threadsafe(self._run(), self._loop)

    # -- Gateway -----------------------------------------------------------------------------------

    def symbols(self) -> Sequence[SymbolSpec]:
        """Every symbol the server listed when the gateway opened."""
        return tuple(self._symbols.values())

    def accounts(self) -> Sequence[AccountSnapshot]:
        """Every account: the opening snapshot plus the deals delivered since."""
        with self._lock:
            return tuple(book.snapshot() for book in self._books.values())

    def account(self, login: int) -> AccountSnapshot:
        """One account as of the deals delivered so far."""
        with self._lock:
            book = self._books.get(login)
            if book is None:
                raise gateway_protocol.GatewayError(f"no account {login} on {self.connection_id}")
            return book.snapshot()

    def poll(self) -> Batch:
        """What arrived since the last call (empty tuples when nothing did); never waits on the
        network. Raises GatewayError once the gateway has given up reconnecting, or is closed."""
        if self._closed:
            raise gateway_protocol.GatewayError(f"{self.connection_id}: the gateway is closed")
        if self.state == "failed":
            raise gateway_protocol.GatewayError(
                f"{self.connection_id}: the MT5 Web API connection failed: {self.stats.last_error}")
        with self._lock:
            pending = self._pending.pop(0)
            if not self._pending:
                self._pending.append(_Pending())
            for swap in pending.swaps:
                book = self._books.get(swap.login)
                if book is not None and book.position(swap.position_id) is not None:
                    book.set_swap(swap.position_id, swap.swap)
            for deal in pending.deals:
                book = self._books.get(deal.login)
                if book is not None:
                    try:
                        book.apply(deal)
                    except ValueError as exc:  # a deal the book cannot take still reaches the engine
                        log.warning("%s: deal %d not booked: %s", self.connection_id, deal.ticket, exc)
            self._seq += 1
            now = time.time()
            if pending.since is not None and self._seq > 1:  # the first waited for the engine's start
                self.stats.waited_s = max(self.stats.waited_s, now - pending.since)
            # `sent_at` is when the batch leaves the gateway (the protocol's meaning): latency
            # downstream excludes the poll intervals it waited for, on the server and here.
            return Batch(self.connection_id, self._seq, now,
                         tuple(pending.quotes.values()), tuple(pending.deals), pending.swaps)

    def view(self) -> dict[str, Any]:
        """The connection's state and counters, for the supervisor's status and the bench."""
        s = self.stats
        client = self._client
        return {"kind": "webapi", "state": self.state, "polls": s.polls, "quotes": s.quotes,
                "deals": s.deals, "repeated_deals": s.repeated_deals, "rollovers": s.rollovers,
                "reconnects": s.reconnects, "requests_failed": s.requests_failed,
                "paused_deal_polls": s.paused_deal_polls, "cpu_s": round(s.cpu_s, 3),
                "waited_s_max": round(s.waited_s, 3), "last_error": s.last_error,
                "bytes_received": client.bytes_received if client is not None else 0,
                "authentications": client.authentications if client is not None else 0}

    def close(self) -> None:
        """Stop polling and close the session; snapshots stay readable."""
        if self._closed:
            return
        self._closed = True
        self.state = "closed"
        if self._loop.is_running():
            try:
                self._call(self._shutdown(), 10.0)
            except Exception:  # closing must not fail: the thread goes either way
                log.debug("%s: shutdown", self.connection_id, exc_info=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    # -- the gateway's own loop --------------------------------------------------------------------

    def _call(self, coro: Awaitable[T], timeout: float) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise gateway_protocol.GatewayError(
                f"{self.connection_id}: the MT5 Web API did not answer within {timeout:g} s") from None

    async def _shutdown(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None:
            runner.cancel()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        if self._client is not None:
            await self._client.close()

    async def _request(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        assert self._client is not None
        self._last_request = time.monotonic()
        return await self._client.request(path, params)

    async def _answer(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        body = await self._request(path, params)
        if "answer" not in body:
            raise ProtocolError(path.removeprefix("/api/"), "the answer has no 'answer' member")
        return body["answer"]

    async def _open(self) -> None:
        self._client = WebApiClient(self.settings)
        await self._client.connect()
        self._symbols = {s.name: s for s in await self._records("symbol", convert.symbol)}
        groups = {g.name: g for g in await self._records("group", convert.group)}
        quotes = await self._ticks()
        with self._lock:
            self._take(quotes, [])
        await self._snapshot(groups)

    async def _records(self, kind: str, parse: Callable[[Any], T]) -> list[T]:
        """Every symbol or group, by `<kind>/total` and `<kind>/next?index=i`."""
        total = await self._answer(f"/api/{kind}/total")
        count = _parsed(f"{kind}/total", lambda t: convert.numbers.integer(t["total"], "total"), total)
        records = [await self._answer(f"/api/{kind}/next", {"index": i}) for i in range(count)]
        return [_parsed(f"{kind}/next", parse, r) for r in records]

    async def _snapshot(self, groups: Mapping[str, convert.Group]) -> None:
        """Accounts and positions consistent with the deal history (module docstring)."""
        before = {d.ticket: d for d in await self._deals_since(self._server_s - 60 * self.deal_overlap_s)}
        users = await self._users({"group": self.mask})
        positions = await self._positions({"group": self.mask})
        for round_ in range(SNAPSHOT_ROUNDS):
            self.stats.snapshot_rounds = round_ + 1
            after = {d.ticket: d for d in await self._deals_since(self._server_s - 60 * self.deal_overlap_s)}
            moved = sorted({d.login for t, d in after.items() if t not in before})
            before = after
            if not moved:
                break
            again = {"login": ",".join(map(str, moved))}
            users.update(await self._users(again))
            for login in moved:
                positions.pop(login, None)
            positions.update(await self._positions(again))
        else:
            raise WebApiError("deal/get_batch", f"the accounts kept dealing through {SNAPSHOT_ROUNDS} "
                                                "snapshot rounds; try again")
        last: dict[int, int] = {}
        for ticket, deal in before.items():
            last[deal.login] = max(last.get(deal.login, 0), ticket)
            self._seen[ticket] = deal.time_msc // 1000
        books = {}
        for login, user in users.items():
            read = functools.partial(convert.account, groups=groups, positions=positions.get(login, []),
                                     last_deal_ticket=last.get(login, 0))
            books[login] = AccountBook(_parsed("user/get_batch", read, user))
        with self._lock:
            self._books = books

    async def _users(self, params: Mapping[str, str]) -> dict[int, dict[str, Any]]:
        records = _listed("user/get_batch", await self._answer("/api/user/get_batch", params))
        return {_parsed("user/get_batch", lambda r: convert.numbers.integer(r["Login"], "Login"), r): r
                for r in records}

    async def _positions(self, params: Mapping[str, str]) -> dict[int, list[Position]]:
        records = _listed("position/get_batch", await self._answer("/api/position/get_batch", params))
        out: dict[int, list[Position]] = {}
        for record in records:
            login, position = _parsed("position/get_batch", convert.position, record)
            out.setdefault(login, []).append(position)
        return out

    async def _ticks(self) -> list[Quote]:
        body = await self._request("/api/tick/last", {"symbol": ",".join(self._symbols),
                                                      "trans_id": self._trans_id})
        step = "tick/last"
        trans_id = _parsed(step, lambda b: convert.numbers.integer(b.get("trans_id"), "trans_id"), body)
        quotes = [_parsed(step, convert.tick, r) for r in _listed(step, body.get("answer"))]
        unknown = [q.symbol for q in quotes if q.symbol not in self._symbols]
        if unknown:
            raise ProtocolError(step, f"ticks for symbols the server did not list: {', '.join(unknown[:5])}")
        self._trans_id = max(self._trans_id, trans_id)
        if quotes:
            self._server_s = max(self._server_s, max(q.time_msc for q in quotes) // 1000)
        return quotes

    async def _deals_since(self, from_s: int, known: Mapping[int, int] | None = None) -> list[Deal]:
        """Deals of the mask from `from_s` on, each once, in ticket order; tickets in `known` (the
        ones delivered) are counted as repeated without being read further."""
        step = "deal/get_batch"
        records = _listed(step, await self._answer("/api/deal/get_batch", {
            "group": self.mask, "from": max(0, from_s), "to": self._server_s + HORIZON_S}))
        by_ticket: dict[int, Deal] = {}
        for record in records:
            if known and isinstance(record, dict) and isinstance(record.get("Deal"), str) \
                    and record["Deal"].isdigit() and int(record["Deal"]) in known:
                self.stats.repeated_deals += 1
                continue
            deal = _parsed(step, convert.deal, record)
            if deal is not None:
                if deal.ticket in by_ticket:
                    self.stats.repeated_deals += 1
                by_ticket[deal.ticket] = deal
        return [by_ticket[t] for t in sorted(by_ticket)]

    async def _poll_once(self) -> None:
        quotes = await self._ticks()
        with self._lock:  # taken at once: a failing deal request must not lose them
            self._take(quotes, [])
            backlog = sum(len(p.deals) for p in self._pending)
        if backlog < self.max_pending_deals:
            await self._new_deals()
        else:
            self.stats.paused_deal_polls += 1
        day = max((q.time_msc for q in quotes), default=0) // DAY_MS
        if quotes and day > self._day:
            if self._day >= 0:
                await self._rollover()
            self._day = day
        self.stats.polls += 1
        self.stats.quotes += len(quotes)

    async def _new_deals(self) -> set[int]:
        """Take the deals not delivered yet; the logins they are of."""
        fresh: list[Deal] = []
        newest = max([self._server_s, *self._seen.values()])
        for deal in await self._deals_since(newest - self.deal_overlap_s, self._seen):
            if deal.ticket in self._seen:
                self.stats.repeated_deals += 1
                continue
            self._seen[deal.ticket] = deal.time_msc // 1000
            fresh.append(deal)
        horizon = newest - 2 * self.deal_overlap_s
        for ticket in [t for t, s in self._seen.items() if s < horizon]:
            del self._seen[ticket]  # older than any window still asked for: bounded
        with self._lock:
            self._take([], fresh)
        self.stats.deals += len(fresh)
        return {d.login for d in fresh}

    async def _rollover(self) -> None:
        """The server's day changed: its rollover charged swaps to open positions (`Storage`),
        which no deal announces. Read the positions and send each one's swap as of the deals
        delivered so far: positions of accounts that dealt while they were read are read again,
        as for the snapshot, so a swap is never older or newer than the deals before it."""
        positions = await self._positions({"group": self.mask})
        for round_ in range(SNAPSHOT_ROUNDS):
            moved = await self._new_deals()
            if not moved:
                break
            again = await self._positions({"login": ",".join(map(str, sorted(moved)))})
            for login in moved:
                positions.pop(login, None)
            positions.update(again)
            self.stats.snapshot_rounds = max(self.stats.snapshot_rounds, round_ + 1)
        else:
            raise WebApiError("position/get_batch", "the accounts kept dealing through the rollover's "
                                                    f"{SNAPSHOT_ROUNDS} reads; trying again")
        stamp = self._day_start_msc()
        swaps = tuple(PositionSwap(login, p.ticket, p.swap, stamp)
                      for login, held in sorted(positions.items()) for p in held if p.swap)
        with self._lock:
            self._pending.append(_Pending(swaps=swaps, since=time.time()))
        self.stats.rollovers += 1

    def _day_start_msc(self) -> int:
        return (self._day + 1) * DAY_MS

    def _take(self, quotes: list[Quote], deals: list[Deal]) -> None:
        """Add to the pending batch (the lock held)."""
        if not quotes and not deals:
            return
        pending = self._pending[-1]
        if pending.since is None:
            pending.since = time.time()
        for quote in quotes:
            pending.quotes[quote.symbol] = quote
        pending.deals.extend(deals)

    async def _run(self) -> None:
        cpu = time.thread_time()
        next_at = time.monotonic()
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except AuthError as exc:  # refused (password changed, rights or IP taken away): no retry
                self._fail(exc)
                return
            except WebApiError as exc:
                self.stats.requests_failed += 1
                self.stats.last_error = str(exc)
                if not await self._reconnect():
                    return
            self.stats.cpu_s += time.thread_time() - cpu
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:
                next_at = now  # behind (slow server): poll again at once, do not burst to catch up
            await asyncio.sleep(next_at - now)
            cpu = time.thread_time()

    async def _step(self) -> None:
        await self._poll_once()
        if time.monotonic() - self._last_request >= self.ping_s:
            await self._request("/api/test/access")

    async def _reconnect(self) -> bool:
        """Poll again until it works, waiting longer each time; False once `reconnect_s` passed."""
        self.state = "reconnecting"
        self.stats.reconnects += 1
        log.warning("%s: MT5 Web API: %s; reconnecting", self.connection_id, self.stats.last_error)
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.reconnect_s),
                wait=wait_exponential(multiplier=self.interval, max=30.0),
                retry=retry_if_exception_type(WebApiError),
                reraise=True,
            ):
                with attempt:
                    await self._step()
        except AuthError as exc:
            self._fail(exc)
            return False
        except WebApiError as exc:
            self._fail(exc)
            return False
        self.state = "live"
        return True

    def _fail(self, exc: Exception) -> None:
        self.stats.last_error = str(exc)
        self.state = "failed"
        log.error("%s: MT5 Web API connection failed: %s", self.connection_id, exc)


def _listed(step: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(step, "expected a list of records")
    return value


def _parsed(step: str, parse: Callable[[Any], T], record: object) -> T:
    if not isinstance(record, dict):
        raise ProtocolError(step, "expected a JSON object record")
    try:
        return parse(record)
    except (KeyError, ValueError, TypeError) as exc:
        raise ProtocolError(step, f"bad record: {exc}") from None
