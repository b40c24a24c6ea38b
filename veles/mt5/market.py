"""Seeded market prices for the simulated trade server.

The model is small but keeps the properties risk code is sensitive to:

* FX pairs are priced from one log-value random walk per currency, so crosses stay consistent
  with majors (conversion through EURUSD and USDJPY agrees with EURJPY) and pairs sharing a
  currency are correlated. Currencies load on regional blocs and on an equity (risk-on) factor.
* Other symbols follow their own walk loaded on a common factor (equity, oil, metals), so indices
  move together and a crash hits many accounts at once.
* A calm/volatile regime switches at random; volatile markets move faster, tick more and quote
  wider spreads. Spreads also widen around the daily rollover (21:00 UTC).
* News events gap a driver (a currency, a factor or one stock) by several minutes' worth of
  volatility in one step; the affected symbols tick at once and the gaps are exposed as `jumps`
  so traders can react (news traders) or exploit the stale quote (latency arbitrageurs).

All randomness comes from the `random.Random` passed in, and time only from `step(dt)`, so the
same seed gives the same prices on any machine. Prices are positive (log walks), rounded to the
tick size and digits, and ask is always at least one tick above bid.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from veles.mt5.catalog import CURRENCY_DRIVERS, USD_VALUES, Listing
from veles.risk.events import NewsEvent, Quote

YEAR_SECONDS = 365.25 * 86_400.0
FACTORS = ("europe", "commodity", "equity", "metals", "oil")

# Regime and session behaviour.
CALM_MEAN_SECONDS = 240.0
VOLATILE_MEAN_SECONDS = 45.0
VOLATILE_MOVES = 2.5  # volatility multiplier
VOLATILE_SPREADS = 2.5
VOLATILE_TICKS = 1.8
ROLLOVER_START = (20 * 60 + 58) * 60  # seconds of the UTC day
ROLLOVER_END = (21 * 60 + 5) * 60
ROLLOVER_SPREADS = 6.0
ROLLOVER_TICKS = 0.3
JUMP_SPREADS = 4.0  # a move larger than this many typical spreads in one step counts as a jump


class Regime(StrEnum):
    """Market mood: drives volatility, tick rate and spreads."""

    CALM = "calm"
    VOLATILE = "volatile"


@dataclass(frozen=True, slots=True)
class Jump:
    """A price gap in one step. `before` is the last quote ahead of the gap: what a slow price
    feed still shows and what a latency arbitrageur gets filled at."""

    symbol: str
    before: Quote
    after: Quote

    @property
    def direction(self) -> int:
        """+1 when the price gapped up, -1 when down."""
        return 1 if self.after.bid > self.before.bid else -1


class _Symbol:
    """Mutable pricing state of one symbol; private to the market."""

    __slots__ = (
        "base",
        "digits",
        "idio",
        "idio_clock",
        "listing",
        "log_start",
        "quote",
        "quote_ccy",
        "shift",
        "spread",
        "tick",
        "tick_rate",
    )

    def __init__(self, listing: Listing) -> None:
        spec = listing.spec
        self.listing = listing
        self.tick = spec.tick_size
        self.digits = spec.digits
        self.spread = max(1, listing.spread)
        self.tick_rate = listing.tick_rate
        self.base = spec.base_currency if listing.is_fx else ""
        self.quote_ccy = spec.profit_currency if listing.is_fx else ""
        self.log_start = math.log(listing.price)
        self.idio = 0.0
        self.idio_clock = 0.0
        self.shift = 0.0
        self.quote = Quote(spec.name, 0.0, 0.0, 0)


class Market:
    """Prices of every listed symbol, advanced one step at a time."""

    def __init__(
        self,
        listings: Sequence[Listing],
        rng: random.Random,
        start_msc: int,
        volatility: float = 1.0,
        news_every: float = 180.0,
    ) -> None:
        """`volatility` scales every move (1.0 = realistic annualised figures); `news_every` is
        the mean number of simulated seconds between news gaps."""
        self._rng = rng
        self._scale = volatility
        self._news_every = news_every
        self.now_msc = start_msc
        self.regime = Regime.CALM
        self.jumps: tuple[Jump, ...] = ()
        self.news: tuple[NewsEvent, ...] = ()  # the release of this step, if any (the calendar)
        self.spreads_widened = False  # this step's spreads are wider than the last step's
        self._widening = 1.0
        self._release = ""
        self._clock = 0.0  # integrated variance time (years x regime multiplier squared)
        self._factor = dict.fromkeys(FACTORS, 0.0)
        self._ccy = dict.fromkeys(CURRENCY_DRIVERS, 0.0)
        self._symbols = {listing.spec.name: _Symbol(listing) for listing in listings}
        self._order = tuple(self._symbols.values())
        for sym in self._order:
            sym.quote = self._price(sym, start_msc)

    # -- reading -------------------------------------------------------------------------------

    @property
    def volatility(self) -> float:
        """The scale applied to every move (1.0 = realistic)."""
        return self._scale

    def quote(self, symbol: str) -> Quote:
        """The latest quote of a symbol."""
        return self._symbols[symbol].quote

    def quotes(self) -> Mapping[str, Quote]:
        """The latest quote of every symbol."""
        return {name: sym.quote for name, sym in self._symbols.items()}

    def usd_value(self, currency: str) -> float:
        """What one unit of a currency is worth in USD now (for sizing trades, not for books)."""
        return USD_VALUES[currency] * math.exp(self._ccy[currency] - self._ccy["USD"])

    def annual_volatility(self, symbol: str) -> float:
        """Typical calm-market annualised volatility of a symbol (for traders' targets and stops)."""
        sym = self._symbols[symbol]
        if sym.listing.is_fx:
            return math.hypot(CURRENCY_DRIVERS[sym.base][0], CURRENCY_DRIVERS[sym.quote_ccy][0]) * self._scale
        return sym.listing.volatility * self._scale

    def lot_value_usd(self, symbol: str) -> float:
        """Rough notional of one lot in USD: how traders size positions against their equity."""
        sym = self._symbols[symbol]
        spec = sym.listing.spec
        mid = (sym.quote.bid + sym.quote.ask) / 2
        per_price_unit = spec.tick_value / spec.tick_size
        return mid * per_price_unit * self.usd_value(spec.profit_currency)

    # -- advancing -----------------------------------------------------------------------------

    def step(self, dt: float) -> tuple[Quote, ...]:
        """Advance `dt` seconds; return the quotes of the symbols that ticked, in catalog order."""
        rng = self._rng
        step_ms = max(1, round(dt * 1000))
        self.now_msc += step_ms
        self._switch_regime(dt)
        volatile = self.regime is Regime.VOLATILE
        moves = VOLATILE_MOVES if volatile else 1.0
        dv = dt / YEAR_SECONDS * moves * moves
        self._clock += dv
        root = math.sqrt(dv) * self._scale
        gauss = rng.gauss
        factor_moves = {name: root * gauss(0.0, 1.0) for name in FACTORS}
        for name, move in factor_moves.items():
            self._factor[name] += move
        for ccy, (vol, bloc, bloc_load, equity_load) in CURRENCY_DRIVERS.items():
            own = math.sqrt(max(0.0, 1.0 - bloc_load * bloc_load - equity_load * equity_load))
            self._ccy[ccy] += vol * (
                bloc_load * factor_moves.get(bloc, 0.0)
                + equity_load * factor_moves["equity"]
                + own * root * gauss(0.0, 1.0)
            )
        self.news = ()
        forced = self._news(dt)

        seconds_of_day = (self.now_msc // 1000) % 86_400
        rollover = ROLLOVER_START <= seconds_of_day < ROLLOVER_END
        widening = (VOLATILE_SPREADS if volatile else 1.0) * (ROLLOVER_SPREADS if rollover else 1.0)
        self.spreads_widened = widening > self._widening
        self._widening = widening
        tick_mult = (VOLATILE_TICKS if volatile else 1.0) * (ROLLOVER_TICKS if rollover else 1.0)
        quotes: list[Quote] = []
        jumps: list[Jump] = []
        random_ = rng.random
        for sym in self._order:
            name = sym.listing.spec.name
            if name not in forced and random_() >= 1.0 - math.exp(-sym.tick_rate * tick_mult * dt):
                continue
            time_msc = self.now_msc - rng.randrange(step_ms)
            new = self._price(sym, time_msc, volatile, rollover)
            old = sym.quote
            if new.bid == old.bid and new.ask == old.ask:
                continue
            if name in forced and abs(new.bid - old.bid) > JUMP_SPREADS * sym.spread * sym.tick:
                jumps.append(Jump(name, old, new))
            sym.quote = new
            quotes.append(new)
        self.jumps = tuple(jumps)
        return tuple(quotes)

    def _switch_regime(self, dt: float) -> None:
        mean = VOLATILE_MEAN_SECONDS if self.regime is Regime.VOLATILE else CALM_MEAN_SECONDS
        if self._rng.random() < 1.0 - math.exp(-dt / mean):
            self.regime = Regime.CALM if self.regime is Regime.VOLATILE else Regime.VOLATILE

    def _news(self, dt: float) -> set[str]:
        """Maybe gap one driver; return the symbols it moves (they must tick this step) and
        publish the release as `news`, the simulator's calendar entry."""
        moved = self._gap_driver(dt)
        if moved:
            self.news = (NewsEvent(self.now_msc, self._release, tuple(sorted(moved))),)
        return moved

    def _gap_driver(self, dt: float) -> set[str]:
        rng = self._rng
        if rng.random() >= 1.0 - math.exp(-dt / self._news_every):
            return set()
        size = rng.choice((-1.0, 1.0)) * rng.uniform(0.02, 0.06) * self._scale
        self.regime = Regime.VOLATILE
        kind = rng.random()
        if kind < 0.5:
            ccy = rng.choice(tuple(CURRENCY_DRIVERS))
            self._ccy[ccy] += CURRENCY_DRIVERS[ccy][0] * size
            self._release = f"{ccy} data"
            return {n for n, s in self._symbols.items() if ccy in (s.base, s.quote_ccy)}
        if kind < 0.85:
            factor = rng.choice(("equity", "oil", "metals"))
            self._release = f"{factor} news"
            self._factor[factor] += size
            for ccy, (vol, _bloc, _load, equity_load) in CURRENCY_DRIVERS.items():
                if factor == "equity":
                    self._ccy[ccy] += vol * equity_load * size
            return {n for n, s in self._symbols.items() if s.listing.factor == factor}
        stocks = [s for s in self._order if s.listing.spec.asset_class == "stock"]
        if not stocks:
            return set()
        stock = rng.choice(stocks)
        self._release = f"{stock.listing.spec.name} company news"
        stock.shift += stock.listing.volatility * size
        return {stock.listing.spec.name}

    def _mid(self, sym: _Symbol) -> float:
        listing = sym.listing
        if listing.is_fx:
            return listing.price * math.exp(self._ccy[sym.base] - self._ccy[sym.quote_ccy])
        lag = self._clock - sym.idio_clock
        if lag > 0.0:
            sym.idio += math.sqrt(lag) * self._scale * self._rng.gauss(0.0, 1.0)
            sym.idio_clock = self._clock
        share = listing.factor_share
        common = self._factor[listing.factor] if listing.factor else 0.0
        log_move = listing.volatility * (math.sqrt(share) * common + math.sqrt(1.0 - share) * sym.idio)
        return math.exp(sym.log_start + log_move + sym.shift)

    def _price(self, sym: _Symbol, time_msc: int, volatile: bool = False, rollover: bool = False) -> Quote:
        widen = (VOLATILE_SPREADS if volatile else 1.0) * (ROLLOVER_SPREADS if rollover else 1.0)
        ticks = max(1, round(sym.spread * widen * self._rng.uniform(0.8, 1.25)))
        tick = sym.tick
        bid_ticks = max(1, round(self._mid(sym) / tick - ticks / 2))
        bid = round(bid_ticks * tick, sym.digits)
        ask = round((bid_ticks + ticks) * tick, sym.digits)
        return Quote(sym.listing.spec.name, bid, ask, time_msc)
