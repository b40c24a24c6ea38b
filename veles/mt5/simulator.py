"""`SimulatedBroker`: a deterministic MT5 trade server behind the `Gateway` protocol.

It combines the catalog (symbol specs), the market (seeded prices), the trader population and
the trade server (order execution and account books). Each `poll()` advances simulated time by
`interval` seconds, whatever the wall clock says, and returns the quotes that ticked followed by
the deals that happened after them (orders are filled at the batch's prices; the engine should
apply a batch's quotes before its deals). The first batch carries a quote for every symbol so a
consumer starts with a full price board.

Same seed and same `start_msc` give exactly the same batches (only `sent_at`, the wall clock when
the batch left, differs). `start_msc=None` starts the simulated clock at the current wall-clock
second, so quote ages look natural to a live engine; pass a fixed value for reproducible runs.
The market trades around the clock: a demo is lively on any day.

`accounts()` and `account(login)` are the books as of the last poll: the snapshot at construction
plus every deal emitted since, with `last_deal_ticket` the account's newest deal. A warm-up runs
the traders for a while before the session starts so that accounts already hold positions and
history when the engine first synchronises.

`inject(fault)` makes the next poll misbehave the way real feeds do, for testing the engine's
defences; the simulation itself is unaffected.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
import random
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum

from veles.mt5.catalog import LISTINGS
from veles.mt5.gateway import GatewayError
from veles.mt5.history import DEFAULT_DAYS, DailyHistory, daily_history
from veles.mt5.market import Market
from veles.mt5.trade_server import TradeServer
from veles.mt5.traders import Style, Trader, make_population
from veles.risk.account import AccountFigures
from veles.risk.events import AccountSnapshot, Batch, Deal, NewsEvent, PositionSwap, Quote
from veles.risk.instruments import SymbolSpec

FIRST_DEAL_TICKET = 50_000_000
DAY_MS = 86_400_000


class Fault(StrEnum):
    """Ways the next batch can go wrong, as real feeds and connectors do."""

    NAN_QUOTE = "nan_quote"  # a quote whose bid and ask are NaN
    UNKNOWN_SYMBOL = "unknown_symbol"  # a quote for a symbol the server never announced
    CROSSED_QUOTE = "crossed_quote"  # a quote with bid above ask
    DUPLICATE_DEAL = "duplicate_deal"  # the newest deal sent again
    DISCONNECT = "disconnect"  # poll raises GatewayError; the next poll carries on


class SimulatedBroker:
    """A seeded simulated MT5 server: symbols, accounts, prices and deals."""

    def __init__(
        self,
        connection_id: str = "demo",
        accounts: int = 50,
        seed: int = 7,
        interval: float = 0.25,
        start_msc: int | None = None,
        login_base: int = 100_000,
        *,
        volatility: float = 1.0,
        warmup: float = 120.0,
        manager_password: str | None = None,
        login: int | None = None,
        password: str | None = None,
        mix: Mapping[Style, float] | None = None,
        news_every: float = 180.0,
    ) -> None:
        """`volatility` scales every price move (1.0 = realistic); `warmup` is how many simulated
        seconds the traders run before the session starts (their deals are in the snapshots).

        `manager_password` is what this server accepts from a manager (None: anyone may connect);
        `login` and `password` are what the connecting manager presents. A wrong password raises
        GatewayError before any work, as a real server refuses the manager API's connect.

        `mix` weighs the trading behaviours of the population (default `STYLE_WEIGHTS`);
        `news_every` is the mean number of simulated seconds between releases on its calendar."""
        if manager_password is not None and not hmac.compare_digest(
            (password or "").encode(), manager_password.encode()
        ):
            raise GatewayError(f"{connection_id}: manager login {login} refused: wrong password")
        if interval <= 0:
            raise ValueError("interval must be positive")
        if not news_every > 0:
            raise ValueError("news_every must be positive")
        self.connection_id = connection_id
        self.interval = interval
        self._seed = seed
        rng = random.Random(seed)
        start = math.floor(time.time()) * 1000 if start_msc is None else start_msc
        warmup_steps = max(0, round(warmup / interval))
        self.market = Market(
            LISTINGS,
            random.Random(rng.getrandbits(64)),
            start - round(warmup_steps * interval * 1000),
            volatility=volatility,
            news_every=news_every,
        )
        self.server = TradeServer(self.market, (listing.spec for listing in LISTINGS), FIRST_DEAL_TICKET)
        self._traders: list[Trader] = []
        for snapshot, trader in make_population(
            random.Random(rng.getrandbits(64)), accounts, login_base, mix
        ):
            self.server.add_account(snapshot)
            trader.schedule(self.market.now_msc)
            self._traders.append(trader)
        self._reactive = [t for t in self._traders if type(t).react is not Trader.react]
        self.calendar: list[NewsEvent] = []  # releases of the last poll (the simulator's calendar)
        self._seq = 0
        self._faults: list[Fault] = []
        self._last_deal_sent: tuple[Deal, ...] = ()
        for _ in range(warmup_steps):
            self._advance()
        self.server.take_deals()
        self.server.take_swaps()
        self._first = True
        self._closed = False

    # -- Gateway -------------------------------------------------------------------------------

    def symbols(self) -> Sequence[SymbolSpec]:
        """Every symbol of the catalog."""
        return tuple(self.server.specs.values())

    def accounts(self) -> Sequence[AccountSnapshot]:
        """Every account as of the last poll."""
        return tuple(self.server.book(login).snapshot() for login in self.server.logins())

    def account(self, login: int) -> AccountSnapshot:
        """One account as of the last poll."""
        try:
            return self.server.book(login).snapshot()
        except KeyError:
            raise GatewayError(f"no account {login} on {self.connection_id}") from None

    def figures(self) -> Sequence[AccountFigures]:
        """The server's own figures of every account (balance, credit, equity, margin, free
        margin, margin level) at its latest prices, as of the last poll: what MT5's
        `user/account/get_batch` answers, and what reconciliation compares Veles' figures with."""
        return tuple(self.server.figures(login) for login in self.server.logins())

    def poll(self) -> Batch:
        """Advance one interval and return what happened."""
        if self._closed:
            raise GatewayError(f"{self.connection_id}: the gateway is closed")
        faults, self._faults = self._faults, []
        if Fault.DISCONNECT in faults:
            self._faults = [f for f in faults if f is not Fault.DISCONNECT]
            raise GatewayError(f"{self.connection_id}: connection to the trade server lost")
        quotes = self._advance()
        self.calendar = list(self.market.news)
        if self._first:
            quotes = tuple(self.market.quotes().values())
            self._first = False
        deals = self.server.take_deals()
        swaps: tuple[PositionSwap, ...] = self.server.take_swaps()
        quotes, deals = self._spoil(faults, quotes, deals)
        if deals:
            self._last_deal_sent = deals[-1:]
        self._seq += 1
        return Batch(self.connection_id, self._seq, time.time(), quotes, deals, swaps, tuple(self.calendar))

    def close(self) -> None:
        """Stop serving batches; snapshots stay readable (the simulation lives in memory)."""
        self._closed = True

    def styles(self) -> dict[int, Style]:
        """Each account's trading behaviour: the ground truth toxic-flow detection is measured
        against (a real server has no such thing)."""
        return {trader.login: trader.style for trader in self._traders}

    def daily_history(self, days: int = DEFAULT_DAYS) -> DailyHistory:
        """`days` daily closes per symbol ending at the current mid prices, dated up to the
        simulated clock's date: the server's chart history (see veles/mt5/history.py). The
        returns depend only on the seed, so the same broker answers the same history; drawing it
        consumes nothing from the live simulation's random streams."""
        quotes = self.market.quotes()
        mids = {name: (quote.bid + quote.ask) / 2 for name, quote in quotes.items()}
        end = dt.datetime.fromtimestamp(self.market.now_msc / 1000, dt.UTC).date()
        return daily_history(LISTINGS, mids, seed=self._seed, days=days, end_date=end)

    # -- testing hooks -------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """Make the next poll carry (or, for DISCONNECT, raise) this fault."""
        self._faults.append(fault)

    # -- internals -----------------------------------------------------------------------------

    def _advance(self) -> tuple[Quote, ...]:
        market, server = self.market, self.server
        day = market.now_msc // DAY_MS
        quotes = market.step(self.interval)
        if market.now_msc // DAY_MS != day:
            # Midnight server time passed: the rollover comes before anything else of this step,
            # at the prices it was due at (the server takes the step's quotes just after).
            server.rollover(weekday=(day + 4) % 7)  # day 0 of the epoch was a Thursday (4)
        server.on_quotes(quotes, gapped=bool(market.jumps) or market.spreads_widened)
        now = market.now_msc
        if market.jumps:
            for trader in self._reactive:
                trader.react(server, market, market.jumps)
        for trader in self._traders:
            if now >= trader.next_msc:
                trader.wake(server, market)
        return quotes

    def _spoil(
        self, faults: list[Fault], quotes: tuple[Quote, ...], deals: tuple[Deal, ...]
    ) -> tuple[tuple[Quote, ...], tuple[Deal, ...]]:
        now = self.market.now_msc
        extra: list[Quote] = []
        for fault in faults:
            if fault is Fault.NAN_QUOTE:
                extra.append(Quote("EURUSD", math.nan, math.nan, now))
            elif fault is Fault.UNKNOWN_SYMBOL:
                extra.append(Quote("XYZABC", 1.0, 1.0001, now))
            elif fault is Fault.CROSSED_QUOTE:
                good = self.market.quote("EURUSD")
                extra.append(Quote("EURUSD", good.ask + 0.001, good.ask, now))
            elif fault is Fault.DUPLICATE_DEAL:
                deals = (*deals, *self._last_deal_sent)
        return (*quotes, *extra), deals
