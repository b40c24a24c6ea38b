"""What the fake MT5 Web API serves incrementally: ticks by transaction id and the deal history,
fed by the simulated broker's batches, and the faults a real feed shows.

A real MT5 server keeps the last tick of every symbol, each stamped with the transaction id that
changed it (`tick/last?trans_id=N` answers the symbols changed since N and the newest id), and a
deal history the Web API reads by time range (`deal/get_batch?from&to`, seconds, inclusive).
Balance and credit operations are deals too (Action 2 and 3). `TradeFeed` holds exactly that,
bounded; `BrokerDriver` advances a gateway (the `SimulatedBroker`, or a `ReplayGateway` playing
a recorded session) on a timer, or step by step in a test, and records each batch, under the
same lock the fake's snapshot reads take, so a snapshot and the feed always agree on where the
simulation is. Rollover swaps reach the served positions (`Storage`) through the gateway's books.

Feed faults (`FeedFaults`), as real servers and networks misbehave:
* `late_deals`: the next N deal answers miss the deals of the newest batch (the history lags a
  step behind the prices); they appear in a later answer.
* `twice_deals`: the next N deal answers list every deal twice.
The transport faults (slow, dropped, malformed, 403, expired session) are the fake server's own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from veles.mt5.gateway import Gateway
from veles.risk.events import Batch, Deal, Quote

MAX_DEALS = 200_000  # the deal history kept (oldest dropped first)


@dataclass(frozen=True, slots=True)
class Owner:
    """What the deal answers need about a deal's account."""

    group: str
    currency: str


@dataclass
class FeedFaults:
    """Deal-feed misbehaviour on demand; counters count down one per deal answer."""

    late_deals: int = 0
    twice_deals: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self, name: str) -> bool:
        """Consume one `name` fault if any is pending."""
        with self._lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False


class TradeFeed:
    """Last ticks with transaction ids, and the deal history, as a trade server holds them."""

    def __init__(self, owners: dict[int, Owner], max_deals: int = MAX_DEALS) -> None:
        self.owners = owners
        self.faults = FeedFaults()
        self.trans_id = 0
        self.step = 0
        self._ticks: dict[str, tuple[int, Quote]] = {}
        self._deals: deque[tuple[int, Deal]] = deque(maxlen=max_deals)  # (step recorded, deal)
        self._last_ticket = 0
        self._lock = threading.Lock()

    def record(self, batch: Batch, symbols: frozenset[str]) -> None:
        """Keep a batch's quotes (each a new transaction) and deals. Quotes a server would never
        publish (unknown symbol, NaN, crossed) are not kept: the simulator's feed faults test the
        engine's defences, the fake's faults test the connector's."""
        with self._lock:
            self.step += 1
            for quote in batch.quotes:
                if quote.symbol in symbols and _sane(quote):
                    self.trans_id += 1
                    self._ticks[quote.symbol] = (self.trans_id, quote)
            for deal in batch.deals:
                if deal.ticket > self._last_ticket:  # tickets only grow: a repeat is not a new deal
                    self._deals.append((self.step, deal))
                    self._last_ticket = deal.ticket

    def ticks_since(self, trans_id: int, symbols: set[str] | None) -> tuple[list[Quote], int]:
        """The last tick of each symbol (of `symbols`, None: all) changed after `trans_id`, and the
        newest transaction id."""
        with self._lock:
            ticks = [q for t, q in self._ticks.values()
                     if t > trans_id and (symbols is None or q.symbol in symbols)]
            return ticks, self.trans_id

    def deals_between(self, from_s: int, to_s: int) -> list[Deal]:
        """Deals whose time (seconds) is within [from_s, to_s], in ticket order, with the faults."""
        late = self.faults.take("late_deals")
        twice = self.faults.take("twice_deals")
        with self._lock:
            newest = self.step
            chosen = [d for s, d in self._deals
                      if from_s <= d.time_msc // 1000 <= to_s and not (late and s == newest)]
        return [d for d in chosen for _ in range(2)] if twice else chosen


class BrokerDriver:
    """Advances the simulated broker (any gateway) and records its batches into the feed, on a
    timer in its own thread (`start`/`stop`) or one step at a time (`advance`)."""

    def __init__(self, broker: Gateway, feed: TradeFeed, lock: threading.Lock,
                 interval: float | None = None) -> None:
        self.broker = broker
        self.feed = feed
        self.lock = lock
        self.interval = float(getattr(broker, "interval", 0.25)) if interval is None else interval
        self._symbols = frozenset(s.name for s in broker.symbols())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def advance(self, steps: int = 1) -> list[Batch]:
        """Run the simulator `steps` polls and record them; returns the batches."""
        out = []
        for _ in range(steps):
            with self.lock:
                batch = self.broker.poll()
                self.feed.record(batch, self._symbols)
            out.append(batch)
        return out

    def start(self) -> None:
        """Advance every `interval` seconds of wall clock until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fake-mt5-driver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop advancing (the feed and the books stay as they are)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.advance()
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def owners_of(broker: Gateway) -> dict[int, Owner]:
    """Each account's group (as the Web API names it) and deposit currency."""
    from veles.mt5.webapi.records import group_name

    return {a.login: Owner(group_name(a), a.currency) for a in broker.accounts()}


def _sane(quote: Quote) -> bool:
    return math.isfinite(quote.bid) and math.isfinite(quote.ask) and 0.0 < quote.bid <= quote.ask
