"""Currency conversion for margin and profit, with MT5's choice of Bid or Ask.

A conversion from currency S to currency D uses, in this order of preference:

1. nothing, when S == D;
2. the direct pair SD (multiply) or the inverse pair DS (divide), whichever the server knows
   (a traded symbol, or any quote keyed by a six-letter pair such as "GBPUSD", traded or not);
3. a cross through USD: S -> USD then USD -> D, each leg direct or inverse as above.

When neither orientation of a pair is known yet we pick the market-convention one (EURUSD, not
USDEUR; USDJPY, not JPYUSD) so the caller can subscribe to it before the first quote arrives.

Which side of each quote is used:

* margin: the Ask for buy positions and the Bid for sell positions, on every leg, as the MT5
  administrator help states ("The Ask price is used for buy deals, and the Bid price is used for
  sell deals", Retail Forex, CFD, Futures - Netting/Hedging, "Converting into Deposit Currency");
* profit: the rate least favourable to the client - a profit converts at the Bid of a direct pair
  (1/Ask of an inverse one), a loss at the Ask (1/Bid). This is what MT5 servers do (profit at Bid,
  loss at Ask) and it keeps the broker's view of equity conservative;
* reporting (book totals in USD): the mid price, since no side is "right" for an aggregate.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from veles.risk.errors import MissingQuoteError
from veles.risk.events import Quote
from veles.risk.pickling import pickle_as_fields

USD = "USD"

# Base-currency precedence in market convention: the earlier currency is quoted first.
_CONVENTION = (
    "XAU",
    "XAG",
    "XPT",
    "XPD",
    "BTC",
    "ETH",
    "EUR",
    "GBP",
    "AUD",
    "NZD",
    "USD",
    "CAD",
    "CHF",
    "JPY",
)


@dataclass(frozen=True, slots=True)
class Leg:
    """One quote used in a conversion: multiply by its price (direct) or divide by it (inverse)."""

    pair: str
    inverse: bool


@dataclass(frozen=True, slots=True)
class Conversion:
    """How to turn an amount in `source` into `target`: zero (identity), one or two legs."""

    source: str
    target: str
    legs: tuple[Leg, ...] = ()

    @property
    def pairs(self) -> tuple[str, ...]:
        """The quotes this conversion reads."""
        return tuple(leg.pair for leg in self.legs)

    def _quote(self, quotes: Mapping[str, Quote], leg: Leg) -> Quote:
        quote = quotes.get(leg.pair)
        if quote is None:
            raise MissingQuoteError(leg.pair, self.source, self.target)
        return quote

    def margin_rate(self, quotes: Mapping[str, Quote], buy: bool) -> float:
        """Rate for a margin amount: Ask on every leg for buys, Bid for sells."""
        rate = 1.0
        for leg in self.legs:
            quote = self._quote(quotes, leg)
            price = quote.ask if buy else quote.bid
            rate = rate / price if leg.inverse else rate * price
        return rate

    def profit_rates(self, quotes: Mapping[str, Quote]) -> tuple[float, float]:
        """(rate for a profit, rate for a loss): each the one least favourable to the client."""
        gain = loss = 1.0
        for leg in self.legs:
            quote = self._quote(quotes, leg)
            if leg.inverse:
                gain /= quote.ask
                loss /= quote.bid
            else:
                gain *= quote.bid
                loss *= quote.ask
        return gain, loss

    def mid_rate(self, quotes: Mapping[str, Quote]) -> float:
        """Rate at mid prices, for reporting aggregates."""
        rate = 1.0
        for leg in self.legs:
            quote = self._quote(quotes, leg)
            mid = (quote.bid + quote.ask) * 0.5
            rate = rate / mid if leg.inverse else rate * mid
        return rate

    def convert_profit(self, amount: float, quotes: Mapping[str, Quote]) -> float:
        """`amount` (a profit if positive, a loss if negative) in the target currency."""
        gain, loss = self.profit_rates(quotes)
        return amount * (gain if amount >= 0.0 else loss)


for _cls in (Leg, Conversion):  # thousands in every checkpoint (see veles/risk/pickling.py)
    pickle_as_fields(_cls)


def _rank(currency: str) -> int:
    try:
        return _CONVENTION.index(currency)
    except ValueError:
        return len(_CONVENTION)


def conventional_pair(a: str, b: str) -> str:
    """The market-convention name of the pair of currencies `a` and `b`."""
    return a + b if _rank(a) <= _rank(b) else b + a


def _leg(source: str, target: str, known: Container[str]) -> Leg:
    if source + target in known:
        return Leg(source + target, inverse=False)
    if target + source in known:
        return Leg(target + source, inverse=True)
    pair = conventional_pair(source, target)
    return Leg(pair, inverse=pair != source + target)


def resolve(source: str, target: str, known: Container[str]) -> Conversion:
    """The conversion from `source` to `target`, preferring pairs in `known` (symbols and quotes)."""
    if source == target:
        return Conversion(source, target)
    direct_known = source + target in known or target + source in known
    if direct_known or USD in (source, target):
        return Conversion(source, target, (_leg(source, target, known),))
    return Conversion(source, target, (_leg(source, USD, known), _leg(USD, target, known)))
