"""The simulated client population: account settings and trading behaviours.

Each account gets one behaviour, chosen to produce the order flow a broker's risk desk actually
watches:

* swing - a few positions on popular symbols held for minutes to an hour, target and often no stop;
* scalper - many short trades on the most liquid symbols, seconds long;
* martingale / grid - one symbol, adds against the move (doubling for martingale) and closes the
  basket on a small retracement; the main source of margin calls and stop-outs;
* latency arbitrageur - trades only when a quote gaps, filled at the stale pre-gap price a slow
  bridge still shows, out a few seconds later: toxic flow the B-book pays for;
* hedger - locks positions with opposite legs on the same symbol (hedging accounts only) and
  unwinds them piecewise, exercising hedged margin and partial closes;
* news trader - jumps on a gap in its direction after it happened and holds a couple of minutes;
* grid - one symbol, equal lots added at regular steps against the move, basket closed on a
  retracement (martingale multiplies the lots instead);
* hedged pair - two accounts open opposite positions of about the same size on the same symbol
  within seconds and close them together (bonus and cross-account abuse);
* syndicate - a leader and 2-5 followers who copy its trades within seconds, size scaled.

Every behaviour draws its parameters from wide ranges, and most toxic traders mix ordinary swing
trades in (`Trader.ordinary_every`), so a detector cannot key on one constant. `Style.label` is
the ground truth the flow detectors are measured against (`veles bench flow`).

Every account also deposits and withdraws now and then; some standard accounts get bonus credit.
Traders decide only when they wake (`next_msc`) or when the market gaps, so a poll touches just
the few traders that are due. Each trader owns a `random.Random` seeded from the simulator's, so
behaviour is deterministic.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from veles.mt5.market import YEAR_SECONDS, Jump, Market
from veles.mt5.trade_server import TradeServer
from veles.risk.events import AccountSnapshot, DealEntry, MarginMode, Position, Side
from veles.risk.flow.evidence import Label
from veles.risk.score import STATE_OK

MAJORS = ("EURUSD", "GBPUSD", "USDJPY", "AUDUSD", "USDCAD", "USDCHF", "NZDUSD")
POPULAR = (
    *MAJORS,
    "EURJPY",
    "GBPJPY",
    "EURGBP",
    "XAUUSD",
    "XAGUSD",
    "US500",
    "NAS100",
    "US30",
    "GER40",
    "UK100",
    "JP225",
    "XTIUSD",
    "XBRUSD",
)
EXOTIC = (
    "EURCHF",
    "EURAUD",
    "EURCAD",
    "EURNZD",
    "GBPCHF",
    "CADJPY",
    "CHFJPY",
    "AUDNZD",
    "AUDJPY",
    "XNGUSD",
    "AAPL",
    "TSLA",
    "SAP",
    "ES",
    "CL",
)
VOLATILE = ("XAUUSD", "XAGUSD", "GBPJPY", "XAUUSD", "GBPUSD", "NZDUSD", "AUDUSD")
SCALPED = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500", "NAS100", "GER40")

FIRST_NAMES = (
    "Anna",
    "Boris",
    "Chen",
    "Dario",
    "Elena",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
    "Marek",
    "Nadia",
    "Omar",
    "Petra",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Ulla",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zofia",
)
LAST_NAMES = (
    "Adler",
    "Brandt",
    "Costa",
    "Dvorak",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zeman",
)
# ISO 3166 alpha-2 codes a simulated client lives in, with a broker's usual spread of clients.
COUNTRIES = ("DE", "GB", "FR", "IT", "ES", "PL", "NL", "CY", "AE", "ZA", "NG", "MY", "TH", "VN", "BR", "MX")


def country_of(login: int) -> str:
    """A simulated client's country, fixed by its login alone: drawn apart from the population's
    random stream, so every other figure of a seeded book stays as it was."""
    return COUNTRIES[(login * 2_654_435_761 >> 7) % len(COUNTRIES)]


class Style(StrEnum):
    """Trading behaviour of a simulated account."""

    SWING = "swing"
    SCALPER = "scalper"
    MARTINGALE = "martingale"
    LATENCY_ARB = "latency_arb"
    HEDGER = "hedger"
    NEWS = "news"
    GRID = "grid"
    HEDGED_PAIR = "hedged_pair"
    SYNDICATE = "syndicate"

    @property
    def label(self) -> Label:
        """The toxic-flow label this behaviour is (ground truth for the detectors). Locking
        positions inside one hedging account is legitimate, so a hedger is ordinary."""
        return _LABELS.get(self, Label.ORDINARY)


_LABELS = {
    Style.SCALPER: Label.SCALPER,
    Style.MARTINGALE: Label.MARTINGALE_GRID,
    Style.GRID: Label.MARTINGALE_GRID,
    Style.LATENCY_ARB: Label.LATENCY_ARB,
    Style.NEWS: Label.NEWS,
    Style.HEDGED_PAIR: Label.HEDGED_PAIR,
    Style.SYNDICATE: Label.SYNDICATE,
}

STYLE_WEIGHTS = {
    Style.SWING: 0.26,
    Style.SCALPER: 0.16,
    Style.MARTINGALE: 0.10,
    Style.GRID: 0.06,
    Style.LATENCY_ARB: 0.06,
    Style.HEDGER: 0.10,
    Style.NEWS: 0.10,
    Style.HEDGED_PAIR: 0.06,
    Style.SYNDICATE: 0.10,
}


def _seconds(seconds: float) -> int:
    return round(seconds * 1000)


def _hour_sigma(market: Market, symbol: str) -> float:
    """One hour's relative standard deviation of a symbol's price."""
    return market.annual_volatility(symbol) * math.sqrt(3600.0 / YEAR_SECONDS)


def _gain(market: Market, position: Position) -> float:
    """Relative move in the position's favour at the price it would close at."""
    quote = market.quote(position.symbol)
    if position.side is Side.BUY:
        return (quote.bid - position.price_open) / position.price_open
    return (position.price_open - quote.ask) / position.price_open


@dataclass(slots=True)
class _Exit:
    """When and where a trader means to close a position."""

    close_msc: int
    target: float  # relative gain that takes profit; 0 = none
    stop: float  # relative loss that cuts it; 0 = none


@dataclass(slots=True)
class _Copy:
    """A trade another account asked this one to open later (a copy or an opposite leg)."""

    due_msc: int
    symbol: str
    side: Side
    lots: float
    hold_seconds: float


class Trader(ABC):
    """One account's behaviour; subclasses decide what to open, the base class manages exits,
    sizing, money movements, the ordinary trades toxic traders mix in, and trades asked for by
    linked accounts."""

    style: Style
    mixes = False  # whether this behaviour may mix ordinary trades in
    precise_exits = False  # wake exactly when a position is due to close (linked accounts)

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        self.login = login
        self.rng = rng
        self.bonus = bonus
        self.next_msc = 0
        self.next_cash_msc = 0
        self.exits: dict[int, _Exit] = {}
        self.ordinary: set[int] = set()  # positions of mixed-in ordinary trades
        self.copies: list[_Copy] = []
        # mean seconds between mixed-in ordinary trades (0: none); most toxic traders mix
        self.ordinary_every = rng.uniform(240.0, 1500.0) if self.mixes and rng.random() < 0.75 else 0.0
        self.next_ordinary_msc = 0

    def schedule(self, now_msc: int) -> None:
        """Set the first wake-up and money movement after the session starts."""
        self.next_msc = now_msc + _seconds(self.rng.uniform(0.5, self.wake_seconds()))
        self.next_cash_msc = now_msc + _seconds(self.rng.expovariate(1 / 1800.0))
        if self.ordinary_every:
            self.next_ordinary_msc = now_msc + _seconds(self.rng.expovariate(1 / self.ordinary_every))

    def wake(self, server: TradeServer, market: Market) -> None:
        """Close what is due, then decide on new trades; sets the next wake-up."""
        now = market.now_msc
        for position in server.positions(self.login):
            plan = self.exits.get(position.ticket)
            if plan is not None and self._exit_due(market, position, plan, now):
                server.close_position(self.login, position.ticket, comment=self.style.value)
        open_tickets = {p.ticket for p in server.positions(self.login)}
        self.exits = {t: e for t, e in self.exits.items() if t in open_tickets}
        self.ordinary &= open_tickets
        if self.copies:
            due = [c for c in self.copies if c.due_msc <= now]
            self.copies = [c for c in self.copies if c.due_msc > now]
            for copy in due:
                self._open(server, market, copy.symbol, copy.side, copy.lots, copy.hold_seconds)
        if self.next_ordinary_msc and now >= self.next_ordinary_msc:
            self._ordinary_trade(server, market)
            self.next_ordinary_msc = now + _seconds(self.rng.expovariate(1 / self.ordinary_every))
        self.decide(server, market)
        if now >= self.next_cash_msc or (
            server.figures(self.login).state != STATE_OK and self.rng.random() < 0.02
        ):
            self._move_money(server)
            self.next_cash_msc = now + _seconds(self.rng.expovariate(1 / 1800.0))
        self.next_msc = now + _seconds(self.rng.uniform(0.3, 1.0) * self.wake_seconds())
        if self.copies:
            self.next_msc = min(self.next_msc, min(c.due_msc for c in self.copies))
        if self.precise_exits and self.exits:
            self.next_msc = min(self.next_msc, min(e.close_msc for e in self.exits.values()))

    def copy_later(
        self, market: Market, symbol: str, side: Side, lots: float, hold: float, lag: float
    ) -> None:
        """Open this trade `lag` seconds from now (asked by a linked account)."""
        due = market.now_msc + _seconds(lag)
        self.copies.append(_Copy(due, symbol, side, lots, hold))
        self.next_msc = min(self.next_msc, due)

    def own_positions(self, server: TradeServer) -> list[Position]:
        """Open positions of the behaviour itself (mixed-in ordinary trades left out)."""
        return [p for p in server.positions(self.login) if p.ticket not in self.ordinary]

    def _ordinary_trade(self, server: TradeServer, market: Market) -> None:
        """A swing trade like an ordinary client's, mixed into a toxic behaviour."""
        rng = self.rng
        if len(server.positions(self.login)) >= 4:
            return
        symbol = rng.choice(POPULAR)
        sigma = _hour_sigma(market, symbol)
        deal = self._open(
            server, market, symbol, rng.choice((Side.BUY, Side.SELL)),
            self._lots(server, market, symbol, rng.uniform(1.0, 6.0)), rng.uniform(180, 2400),
            target=sigma * rng.uniform(0.5, 2.0), stop=sigma * rng.uniform(0.5, 1.5), comment="swing",
        )
        if deal is not None:
            self.ordinary.add(deal)

    def react(self, server: TradeServer, market: Market, jumps: tuple[Jump, ...]) -> None:
        """Called when quotes gapped this step; most behaviours ignore gaps."""
        del server, market, jumps

    @abstractmethod
    def wake_seconds(self) -> float:
        """Longest pause between two decisions."""

    @abstractmethod
    def decide(self, server: TradeServer, market: Market) -> None:
        """Open new trades (exits are already handled)."""

    # -- helpers for behaviours ----------------------------------------------------------------

    def _exit_due(self, market: Market, position: Position, plan: _Exit, now: int) -> bool:
        if now >= plan.close_msc:
            return True
        gain = _gain(market, position)
        return (plan.target > 0 and gain >= plan.target) or (plan.stop > 0 and gain <= -plan.stop)

    def _equity_usd(self, server: TradeServer, market: Market) -> float:
        figures = server.figures(self.login)
        return max(0.0, figures.equity) * market.usd_value(figures.currency)

    def _lots(self, server: TradeServer, market: Market, symbol: str, gearing: float) -> float:
        """Volume whose notional is `gearing` times the account's equity."""
        equity = self._equity_usd(server, market)
        return max(0.0, equity * gearing * self.rng.uniform(0.7, 1.3) / market.lot_value_usd(symbol))

    def _open(
        self,
        server: TradeServer,
        market: Market,
        symbol: str,
        side: Side,
        lots: float,
        hold_seconds: float,
        target: float = 0.0,
        stop: float = 0.0,
        price: float = 0.0,
        comment: str = "",
    ) -> int | None:
        """Send a market order and remember when to leave the position it opens (a netting order
        that adds to a position keeps the position's first plan); the position's ticket, or None
        when no position was opened."""
        deal = server.market_order(
            self.login, symbol, side, lots, comment=comment or self.style.value, price=price
        )
        if deal is not None and deal.entry is DealEntry.IN and deal.position_id not in self.exits:
            self.exits[deal.position_id] = _Exit(market.now_msc + _seconds(hold_seconds), target, stop)
            return deal.position_id
        return None

    def _move_money(self, server: TradeServer) -> None:
        """Deposit (more likely when in margin call) or withdraw part of the free margin."""
        figures = server.figures(self.login)
        rng = self.rng
        deposit_odds = 0.9 if figures.state != STATE_OK else 0.55
        if rng.random() < deposit_odds or figures.balance < 100:
            scale = {"real\\pro": 5.0, "real\\vip": 40.0}.get(figures.group, 1.0)
            amount = round(rng.choice((100, 200, 250, 500, 1000, 2000, 5000)) * scale, 2)
            server.balance(
                self.login, amount, "deposit" if figures.state == STATE_OK else "margin call top-up"
            )
            if self.bonus:
                server.credit(self.login, round(amount * 0.2, 2), "bonus 20%")
            return
        amount = round(min(figures.balance, figures.free_margin) * rng.uniform(0.1, 0.4), 2)
        if amount < 10:
            return
        server.balance(self.login, -amount, "withdrawal")
        if figures.credit > 0:
            server.credit(self.login, -figures.credit, "bonus removed on withdrawal")


class Swing(Trader):
    """A few positions held for minutes to an hour with a target and sometimes no stop.

    Half of them go all in: one position on a volatile symbol using most of the free margin and
    no stop - the accounts that margin calls and stop-outs are made of."""

    style = Style.SWING

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        super().__init__(login, rng, bonus)
        self.all_in = rng.random() < 0.5
        self.max_positions = 1 if self.all_in else rng.randint(1, 4)
        self.gearing = rng.uniform(1.0, 12.0)
        self.uses_stops = not self.all_in and rng.random() < 0.6

    def wake_seconds(self) -> float:
        return 30.0

    def decide(self, server: TradeServer, market: Market) -> None:
        rng = self.rng
        if len(server.positions(self.login)) >= self.max_positions or rng.random() > 0.4:
            return
        side = rng.choice((Side.BUY, Side.SELL))
        if self.all_in:
            symbol = rng.choice(VOLATILE)
            per_lot = server.initial_margin(self.login, symbol, side, 1.0)
            lots = server.figures(self.login).free_margin * rng.uniform(0.8, 0.97) / per_lot
            # even a gambler notices when the spread alone would eat a fifth of the account
            quote = market.quote(symbol)
            spread_usd = (quote.ask - quote.bid) / quote.bid * market.lot_value_usd(symbol)
            lots = min(lots, 0.2 * self._equity_usd(server, market) / spread_usd)
            sigma = _hour_sigma(market, symbol)
            self._open(server, market, symbol, side, lots, rng.uniform(600, 2400), target=sigma * 2.0)
            return
        symbol = rng.choice(POPULAR) if rng.random() < 0.85 else rng.choice(EXOTIC)
        sigma = _hour_sigma(market, symbol)
        self._open(
            server,
            market,
            symbol,
            side,
            self._lots(server, market, symbol, self.gearing),
            rng.uniform(180, 2400),
            target=sigma * rng.uniform(0.5, 2.0),
            stop=sigma * rng.uniform(0.5, 1.5) if self.uses_stops else 0.0,
        )


class Scalper(Trader):
    """Short, frequent trades on a few liquid symbols, each held seconds to a minute."""

    style = Style.SCALPER
    mixes = True

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        super().__init__(login, rng, bonus)
        self.gearing = rng.uniform(2.0, 20.0)
        self.symbols = tuple(rng.sample(SCALPED, rng.randint(1, 4)))
        self.hold_max = rng.uniform(10.0, 55.0)
        self.pause = rng.uniform(2.0, 8.0)
        self.max_positions = rng.randint(1, 3)
        self.appetite = rng.uniform(0.3, 0.9)

    def wake_seconds(self) -> float:
        return self.pause

    def decide(self, server: TradeServer, market: Market) -> None:
        rng = self.rng
        if len(self.own_positions(server)) >= self.max_positions or rng.random() > self.appetite:
            return
        symbol = rng.choice(self.symbols)
        sigma = _hour_sigma(market, symbol) / 8  # about one minute's move
        self._open(
            server,
            market,
            symbol,
            rng.choice((Side.BUY, Side.SELL)),
            self._lots(server, market, symbol, self.gearing),
            rng.uniform(2.0, self.hold_max),
            target=sigma * rng.uniform(0.5, 1.5),
            stop=sigma * rng.uniform(1.0, 2.0),
        )


class Martingale(Trader):
    """Adds against the move at fixed steps, multiplying the lots (a grid keeps them equal), and
    closes the whole basket once the price retraces past the average entry."""

    style = Style.MARTINGALE
    mixes = True

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        super().__init__(login, rng, bonus)
        self.symbol = rng.choice(("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "AUDUSD", "GBPJPY", "US500"))
        self.multiplier = self._multiplier(rng)
        self.max_levels = rng.randint(4, 12)
        self.starting_lots = rng.uniform(0.5, 5.0)  # volume minimums per 1,000 of equity
        self.step_sigmas = rng.uniform(0.1, 0.6)  # grid step, in hours of typical move
        self.retrace = rng.uniform(0.2, 1.0)  # share of a step past the average that takes profit
        self.step = 0.0
        self.levels: list[tuple[float, float]] = []  # (price, lots) of each entry of the basket
        self.side = Side.BUY

    def _multiplier(self, rng: random.Random) -> float:
        return rng.uniform(1.4, 3.0)

    def wake_seconds(self) -> float:
        return 5.0

    def decide(self, server: TradeServer, market: Market) -> None:
        positions = [p for p in self.own_positions(server) if p.symbol == self.symbol]
        if not positions:
            self.levels = []
            if self.rng.random() < 0.5:
                self._start(server, market)
            return
        quote = market.quote(self.symbol)
        volume = sum(lots for _, lots in self.levels) or sum(p.volume for p in positions)
        average = sum(price * lots for price, lots in self.levels) / volume if self.levels else 0.0
        buy = self.side is Side.BUY
        exit_price = quote.bid if buy else quote.ask
        if average and (exit_price - average) * (1 if buy else -1) >= average * self.step * self.retrace:
            for position in positions:
                server.close_position(self.login, position.ticket, comment="basket take profit")
            self.levels = []
            return
        last_price, last_lots = self.levels[-1] if self.levels else (positions[-1].price_open, volume)
        entry_price = quote.ask if buy else quote.bid
        against = (last_price - entry_price) * (1 if buy else -1)
        if against >= last_price * self.step and len(self.levels) < self.max_levels:
            lots = last_lots * self.multiplier
            deal = server.market_order(
                self.login,
                self.symbol,
                self.side,
                lots,
                comment=f"{self.style.value} #{len(self.levels) + 1}",
            )
            if deal is not None:
                self.levels.append((deal.price, deal.volume))

    def _start(self, server: TradeServer, market: Market) -> None:
        self.side = self.rng.choice((Side.BUY, Side.SELL))
        self.step = _hour_sigma(market, self.symbol) * self.step_sigmas * self.rng.uniform(0.8, 1.25)
        # the classic rule of such robots: a fixed number of lots per 1,000 of equity
        minimum = server.specs[self.symbol].volume_min
        lots = max(minimum, self._equity_usd(server, market) / 1000 * minimum * self.starting_lots)
        deal = server.market_order(self.login, self.symbol, self.side, lots, comment=f"{self.style.value} #0")
        if deal is not None:
            self.levels = [(deal.price, deal.volume)]


class Grid(Martingale):
    """A martingale that keeps its lots equal: equidistant adds averaging into the loss."""

    style = Style.GRID

    def _multiplier(self, rng: random.Random) -> float:
        return 1.0


class LatencyArbitrageur(Trader):
    """Trades only on gaps, filled at the stale pre-gap price, out within seconds."""

    style = Style.LATENCY_ARB
    mixes = True

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        super().__init__(login, rng, bonus)
        self.gearing = rng.uniform(5.0, 30.0)
        self.appetite = rng.uniform(0.4, 0.95)
        self.hold_max = rng.uniform(1.5, 20.0)

    def wake_seconds(self) -> float:
        return 3.0

    def decide(self, server: TradeServer, market: Market) -> None:
        del server, market  # waits for gaps; exits are handled by the base class

    def react(self, server: TradeServer, market: Market, jumps: tuple[Jump, ...]) -> None:
        rng = self.rng
        if self.own_positions(server) or rng.random() > self.appetite:
            return
        jump = rng.choice(jumps)
        side = Side.BUY if jump.direction > 0 else Side.SELL
        stale = jump.before.ask if side is Side.BUY else jump.before.bid
        self._open(
            server,
            market,
            jump.symbol,
            side,
            self._lots(server, market, jump.symbol, self.gearing),
            rng.uniform(0.5, self.hold_max),
            price=stale,
        )
        self.next_msc = min(self.next_msc, market.now_msc + _seconds(1.0))


class Hedger(Trader):
    """Locks a position with an opposite leg on the same symbol and unwinds the legs piecewise."""

    style = Style.HEDGER

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        super().__init__(login, rng, bonus)
        self.gearing = rng.uniform(2.0, 10.0)

    def wake_seconds(self) -> float:
        return 40.0

    def decide(self, server: TradeServer, market: Market) -> None:
        rng = self.rng
        positions = server.positions(self.login)
        if not positions:
            if rng.random() < 0.5:
                symbol = rng.choice(POPULAR)
                self._open(
                    server,
                    market,
                    symbol,
                    rng.choice((Side.BUY, Side.SELL)),
                    self._lots(server, market, symbol, self.gearing),
                    rng.uniform(1800, 7200),
                )
            return
        symbol = positions[0].symbol
        sides = {p.side for p in positions if p.symbol == symbol}
        if len(sides) == 1 and rng.random() < 0.3:
            leg = positions[0]
            opposite = Side.SELL if leg.side is Side.BUY else Side.BUY
            self._open(
                server, market, symbol, opposite, leg.volume * rng.uniform(0.5, 1.0), rng.uniform(600, 3600)
            )
        elif len(sides) == 2 and rng.random() < 0.2:
            best = max(positions, key=lambda p: _gain(market, p))
            half = rng.random() < 0.5
            server.close_position(
                self.login,
                best.ticket,
                volume=best.volume / 2 if half else 0.0,
                comment="unwind half" if half else "unwind",
            )


class NewsTrader(Trader):
    """Follows a gap after it happened and holds for a minute or a few."""

    style = Style.NEWS
    mixes = True

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        super().__init__(login, rng, bonus)
        self.gearing = rng.uniform(3.0, 20.0)
        self.appetite = rng.uniform(0.4, 0.95)
        self.hold_max = rng.uniform(60.0, 400.0)
        self.max_positions = rng.randint(1, 3)

    def wake_seconds(self) -> float:
        return 20.0

    def decide(self, server: TradeServer, market: Market) -> None:
        del server, market  # waits for news; exits are handled by the base class

    def react(self, server: TradeServer, market: Market, jumps: tuple[Jump, ...]) -> None:
        rng = self.rng
        if len(self.own_positions(server)) >= self.max_positions or rng.random() > self.appetite:
            return
        jump = max(jumps, key=lambda j: abs(j.after.bid - j.before.bid) / j.before.bid)
        sigma = _hour_sigma(market, jump.symbol)
        self._open(
            server,
            market,
            jump.symbol,
            Side.BUY if jump.direction > 0 else Side.SELL,
            self._lots(server, market, jump.symbol, self.gearing),
            rng.uniform(20.0, self.hold_max),
            target=sigma,
            stop=sigma,
        )


class HedgedPair(Trader):
    """One of two accounts that trade against each other: the leading account opens a position
    and has its partner open the opposite side, about the same size, within seconds; both close
    after the same holding time (so whatever the market does, one account wins - the bonus or
    rebate is the pair's profit). The partner only follows."""

    style = Style.HEDGED_PAIR
    mixes = True
    precise_exits = True

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        super().__init__(login, rng, bonus)
        self.partner: Trader | None = None  # set on the leading account only
        self.every = rng.uniform(60.0, 300.0)
        self.lag_max = rng.uniform(0.5, 5.0)
        self.gearing = rng.uniform(2.0, 10.0)
        self.max_positions = rng.randint(2, 5)
        self.pause = rng.uniform(3.0, 10.0)

    def wake_seconds(self) -> float:
        return self.pause

    def decide(self, server: TradeServer, market: Market) -> None:
        rng = self.rng
        partner = self.partner
        if partner is None or len(self.own_positions(server)) >= self.max_positions:
            return
        if rng.random() > self.pause * 0.65 / self.every:
            return
        symbol = rng.choice(POPULAR)
        side = rng.choice((Side.BUY, Side.SELL))
        # both legs the size the smaller account can carry: the pair's P&L must cancel out
        lots = min(self._lots(server, market, symbol, self.gearing),
                   partner._lots(server, market, symbol, self.gearing))
        hold = rng.uniform(60.0, 900.0)
        if self._open(server, market, symbol, side, lots, hold) is not None:
            opposite = Side.SELL if side is Side.BUY else Side.BUY
            partner.copy_later(market, symbol, opposite, lots * rng.uniform(0.8, 1.25), hold,
                               rng.uniform(0.0, self.lag_max))


class Syndicate(Trader):
    """A copy-trading group: the leader trades, each follower copies every trade (with its own
    lag and size factor) and closes it as long after as it opened it."""

    style = Style.SYNDICATE
    mixes = True
    precise_exits = True

    def __init__(self, login: int, rng: random.Random, bonus: bool) -> None:
        super().__init__(login, rng, bonus)
        self.followers: list[Syndicate] = []  # set on the leader only
        self.every = rng.uniform(60.0, 300.0)
        self.lag = rng.uniform(0.25, rng.uniform(1.0, 5.0))  # as a follower
        self.size = rng.uniform(0.5, 2.0)  # as a follower, on top of the equity ratio
        self.fidelity = rng.uniform(0.8, 1.0)  # share of the leader's trades it copies
        self.gearing = rng.uniform(2.0, 10.0)
        self.max_positions = rng.randint(2, 5)
        self.pause = rng.uniform(3.0, 10.0)

    def wake_seconds(self) -> float:
        return self.pause

    def decide(self, server: TradeServer, market: Market) -> None:
        rng = self.rng
        if not self.followers or len(self.own_positions(server)) >= self.max_positions:
            return
        if rng.random() > self.pause * 0.65 / self.every:
            return
        symbol = rng.choice(POPULAR)
        side = rng.choice((Side.BUY, Side.SELL))
        lots = self._lots(server, market, symbol, self.gearing)
        hold = rng.uniform(60.0, 900.0)
        if self._open(server, market, symbol, side, lots, hold) is None:
            return
        equity = max(self._equity_usd(server, market), 1.0)
        for follower in self.followers:
            if follower.rng.random() < follower.fidelity:
                # copy services scale by equity; each follower adds its own risk factor
                scale = follower._equity_usd(server, market) / equity * follower.size
                follower.copy_later(market, symbol, side, lots * scale, hold,
                                    follower.lag * follower.rng.uniform(0.7, 1.0))


BEHAVIOURS: dict[Style, type[Trader]] = {
    Style.SWING: Swing,
    Style.SCALPER: Scalper,
    Style.MARTINGALE: Martingale,
    Style.LATENCY_ARB: LatencyArbitrageur,
    Style.HEDGER: Hedger,
    Style.NEWS: NewsTrader,
    Style.GRID: Grid,
    Style.HEDGED_PAIR: HedgedPair,
    Style.SYNDICATE: Syndicate,
}


def make_account(rng: random.Random, login: int, style: Style) -> tuple[AccountSnapshot, bool]:
    """Settings and starting money of one account, and whether it gets bonus credit."""
    group = rng.choices(("real\\standard", "real\\pro", "real\\vip"), weights=(0.6, 0.3, 0.1))[0]
    currency = "EUR" if rng.random() < 0.2 else "USD"
    if currency == "EUR":  # ESMA retail caps majors at 1:30; professional clients get more
        leverage = 30 if group == "real\\standard" else rng.choice((30, 50, 100))
    else:
        leverage = rng.choice(
            {
                "real\\standard": (100, 200, 500),
                "real\\pro": (100, 200, 300, 500),
                "real\\vip": (50, 100, 200),
            }[group]
        )
    median = {"real\\standard": 2_000.0, "real\\pro": 15_000.0, "real\\vip": 150_000.0}[group]
    balance = round(min(median * 20, max(median / 10, rng.lognormvariate(math.log(median), 0.8))), -1)
    netting = style is not Style.HEDGER and rng.random() < 0.2
    bonus = group == "real\\standard" and rng.random() < 0.15
    toxic = style in (Style.LATENCY_ARB, Style.SCALPER)
    book = "A" if group == "real\\vip" or (toxic and rng.random() < 0.5) or rng.random() < 0.1 else "B"
    snapshot = AccountSnapshot(
        login=login,
        currency=currency,
        leverage=leverage,
        balance=balance,
        credit=round(balance * rng.uniform(0.2, 0.5), 2) if bonus else 0.0,
        margin_mode=MarginMode.NETTING if netting else MarginMode.HEDGING,
        hedged_margin_larger_leg=group == "real\\vip",
        margin_call=100.0 if group != "real\\vip" else 80.0,
        stop_out=50.0 if group != "real\\vip" or currency == "EUR" else 30.0,
        group=group,
        book=book,
        name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        country=country_of(login),
    )
    return snapshot, bonus


def parse_mix(weights: Mapping[str, float]) -> dict[Style, float]:
    """A population mix from style names to weights; ValueError naming what is wrong (unknown
    style, negative or non-finite weight, nothing to draw from)."""
    known = {style.value: style for style in Style}
    mix: dict[Style, float] = {}
    for name, weight in weights.items():
        if name not in known:
            raise ValueError(f"unknown style {name!r}: one of {', '.join(known)}")
        if not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"weight of {name!r} must be a finite number >= 0, not {weight!r}")
        mix[known[name]] = float(weight)
    if sum(mix.values()) <= 0:
        raise ValueError("the mix needs at least one style with a positive weight")
    return mix


def allocate_styles(rng: random.Random, count: int, mix: Mapping[Style, float] | None = None) -> list[Style]:
    """Styles in the proportions of `mix` (default STYLE_WEIGHTS; largest remainder), shuffled: a
    population's make-up, and so its deal rate, does not swing with the seed."""
    weights = mix or STYLE_WEIGHTS
    total = sum(weights.values())
    exact = {style: weight / total * count for style, weight in weights.items()}
    counts = {style: int(value) for style, value in exact.items()}
    by_remainder = sorted(exact, key=lambda style: exact[style] - counts[style], reverse=True)
    for style in by_remainder[: count - sum(counts.values())]:
        counts[style] += 1
    styles = [style for style, n in counts.items() for _ in range(n)]
    rng.shuffle(styles)
    return styles


def _groups(rng: random.Random, styles: list[Style]) -> list[list[int]]:
    """Link accounts: hedged pairs two by two, syndicates in groups of 3-6 (leader first); an
    account left without partners trades as an ordinary swing trader instead."""
    groups: list[list[int]] = []
    for style, sizes in ((Style.HEDGED_PAIR, (2, 2)), (Style.SYNDICATE, (3, 6))):
        members = [i for i, s in enumerate(styles) if s is style]
        while members:
            size = rng.randint(*sizes)
            group, members = members[:size], members[size:]
            if len(group) < sizes[0]:
                for i in group:
                    styles[i] = Style.SWING
            else:
                groups.append(group)
    return groups


def make_population(
    rng: random.Random, count: int, login_base: int, mix: Mapping[Style, float] | None = None
) -> list[tuple[AccountSnapshot, Trader]]:
    """`count` accounts with logins from `login_base`, each with its own seeded behaviour in the
    proportions of `mix`; hedged pairs and syndicates are linked to their partners."""
    styles = allocate_styles(rng, count, mix)
    groups = _groups(rng, styles)
    population: list[tuple[AccountSnapshot, Trader]] = []
    for i, style in enumerate(styles):
        snapshot, bonus = make_account(rng, login_base + i, style)
        trader = BEHAVIOURS[style](snapshot.login, random.Random(rng.getrandbits(64)), bonus)
        population.append((snapshot, trader))
    for group in groups:
        leader = population[group[0]][1]
        others = [population[i][1] for i in group[1:]]
        if isinstance(leader, HedgedPair):
            leader.partner = others[0]
        elif isinstance(leader, Syndicate):
            leader.followers = [t for t in others if isinstance(t, Syndicate)]
    return population
