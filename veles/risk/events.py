"""Events that flow from an MT5 gateway into the risk core.

They mirror MetaTrader 5's own records (ticks, deals, positions, account settings) closely enough
that a real connector (terminal package, Manager API, Web API) can fill them without guessing.
All are frozen, slotted dataclasses: cheap to pickle across Ray and safe to share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from veles.risk.pickling import pickle_as_fields


class Side(StrEnum):
    """Direction of a position or of a trade deal."""

    BUY = "buy"
    SELL = "sell"


class DealKind(StrEnum):
    """MT5 deal types that the risk core understands (DEAL_TYPE_*)."""

    BUY = "buy"
    SELL = "sell"
    BALANCE = "balance"  # deposits, withdrawals, realised adjustments
    CREDIT = "credit"  # credit given or taken back


class DealEntry(StrEnum):
    """MT5 deal entry (DEAL_ENTRY_*): opens, closes or reverses a position."""

    IN = "in"
    OUT = "out"
    INOUT = "inout"  # netting reversal: closes the position and opens the opposite


class MarginMode(StrEnum):
    """Account margin accounting (ACCOUNT_MARGIN_MODE_RETAIL_*)."""

    HEDGING = "hedging"
    NETTING = "netting"


class StopoutMode(StrEnum):
    """Whether margin-call and stop-out levels are percents of margin or money amounts."""

    PERCENT = "percent"
    MONEY = "money"


@dataclass(frozen=True, slots=True)
class Quote:
    """Best bid and ask of one symbol at a moment (milliseconds since the epoch, server time)."""

    symbol: str
    bid: float
    ask: float
    time_msc: int = 0


@dataclass(frozen=True, slots=True)
class Position:
    """An open position as the MT5 server reports it."""

    ticket: int
    symbol: str
    side: Side
    volume: float  # lots
    price_open: float
    swap: float = 0.0  # accumulated swap, deposit currency
    commission: float = 0.0  # deposit currency (negative is a charge)
    # MT5's position "Margin rate": margin currency -> deposit currency rate fixed when the position
    # opened (Ask for buys, Bid for sells). 0 = unknown: the risk core then uses the current rate.
    margin_rate: float = 0.0
    # When it opened (the server's clock, ms; 0 = not known) and its stop loss and take profit
    # prices (0 = none), as the terminal's position list shows them.
    time_msc: int = 0
    sl: float = 0.0
    tp: float = 0.0


@dataclass(frozen=True, slots=True)
class Deal:
    """One MT5 deal: a trade (opening, closing or reversing a position) or a balance/credit operation.

    For trade deals `position_id` names the position the deal belongs to (in hedging mode each
    position has its own id; in netting mode one position per symbol). `profit` is the realised
    profit the server booked for a closing deal, in the deposit currency; the risk core trusts it
    because the MT5 server is the source of truth for balances. For balance and credit operations
    `amount` carries the money and `symbol` is empty.

    `margin_rate` is the deal's margin conversion rate as the server fixed it (MT5's deal
    `RateMargin`: margin currency -> deposit currency at the deal's moment). A position opened (or
    added to, or reversed) by the deal keeps that rate for its volume, so the engine's margin is
    the server's to the cent even when it applies the deal at other quotes (batches merged behind
    a slow consumer, a conversion pair not yet quoted). 0 = not given: the risk core then fixes
    the rate from the quotes it holds when it applies the deal.
    """

    ticket: int
    login: int
    kind: DealKind
    time_msc: int
    entry: DealEntry = DealEntry.IN
    symbol: str = ""
    volume: float = 0.0
    price: float = 0.0
    position_id: int = 0
    profit: float = 0.0
    commission: float = 0.0
    swap: float = 0.0
    amount: float = 0.0
    comment: str = ""
    margin_rate: float = 0.0  # last: pickles and recordings made before it still load
    # MT5's deal PriceSL / PriceTP: the stops of the order that made it (0 = none); a position this
    # deal opens starts with them (a later change on the server reaches the engine at re-snapshot)
    sl: float = 0.0
    tp: float = 0.0


@dataclass(frozen=True, slots=True)
class PositionSwap:
    """An open position's accumulated swap as the server now holds it, sent when a rollover
    changed it (MT5 charges swap to the position's swap field, POSITION_SWAP / the Web API
    position's `Storage`, and books it to the balance only with the deal that closes the position).

    The value is absolute, not the day's charge, so applying it twice changes nothing, and it is
    the server's figure: the engine takes it as it takes a deal's profit (MT5 is the source of
    truth for money), whatever swap settings the broker's group overrides.
    """

    login: int
    position_id: int
    swap: float  # deposit currency
    time_msc: int = 0


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """An account's settings and open positions: what a (re)synchronisation starts from."""

    login: int
    currency: str = "USD"
    leverage: int = 100
    balance: float = 0.0
    credit: float = 0.0
    margin_mode: MarginMode = MarginMode.HEDGING
    hedged_margin_larger_leg: bool = False
    margin_call: float = 100.0
    stop_out: float = 50.0
    stopout_mode: StopoutMode = StopoutMode.PERCENT
    group: str = "real\\standard"
    book: str = "B"  # "A" (passed to liquidity) or "B" (kept in house)
    name: str = ""
    country: str = ""  # the client's country as the server's user record has it ("" if none)
    server: str = ""  # the engine's connection id this account is fed by (the supervisor stamps it)
    positions: tuple[Position, ...] = ()
    last_deal_ticket: int = 0  # highest deal ticket already reflected in this snapshot


@dataclass(frozen=True, slots=True)
class NewsEvent:
    """A release on the feed's economic calendar: when, what it is, and the symbols it moves
    (what the news-trading detector, veles.risk.flow.news, times entries against)."""

    time_msc: int
    title: str
    symbols: tuple[str, ...]  # sorted: a set's order (and so its repr) changes from process to process


@dataclass(frozen=True, slots=True)
class Batch:
    """What a gateway emits every ~100-250 ms for one MT5 connection.

    `seq` increases by one per batch of a connection; `sent_at` is the gateway's wall clock
    (seconds) when the batch left it, used to measure latency to the browser. Order of
    application: quotes, then swaps (their values are as of after every earlier batch's deals and
    before this batch's), then deals.
    """

    connection_id: str
    seq: int
    sent_at: float
    quotes: tuple[Quote, ...] = ()
    deals: tuple[Deal, ...] = field(default=())
    swaps: tuple[PositionSwap, ...] = ()
    news: tuple[NewsEvent, ...] = ()  # releases published since the previous batch (its calendar)


def merge_runs(batches: list[Batch]) -> list[Batch]:
    """Fold consecutive batches into as few as keep the order of events: a batch carrying swaps
    starts a new run, because its swaps must apply after every earlier batch's deals (a position
    opened or partly closed just before a rollover) and before its own. Rollovers are daily, so
    this costs one extra batch a day."""
    runs: list[list[Batch]] = []
    for batch in batches:
        if batch.swaps or not runs:
            runs.append([batch])
        else:
            runs[-1].append(batch)
    return [merge_batches(run) for run in runs]


def merge_batches(batches: list[Batch]) -> Batch:
    """Fold consecutive batches of one connection into one, for a consumer that fell behind.

    Quotes are latest-wins per symbol (an old price is worthless once a newer one is known);
    deals and calendar releases are kept, all of them, in order. `sent_at` is the earliest, so
    latency measured from a merged batch honestly includes the time spent catching up. Only the
    first batch may carry swaps (split with `merge_runs`).
    """
    if len(batches) == 1:
        return batches[0]
    if any(b.swaps for b in batches[1:]):
        raise ValueError("only the first of merged batches may carry swaps: split them with merge_runs")
    quotes: dict[str, Quote] = {}
    deals: list[Deal] = []
    news: list[NewsEvent] = []
    for batch in batches:
        for quote in batch.quotes:
            quotes[quote.symbol] = quote
        deals.extend(batch.deals)
        news.extend(batch.news)
    last = batches[-1]
    return Batch(
        connection_id=last.connection_id,
        seq=last.seq,
        sent_at=min(b.sent_at for b in batches),
        quotes=tuple(quotes.values()),
        deals=tuple(deals),
        swaps=batches[0].swaps,
        news=tuple(news),
    )


for _cls in (Quote, Position, PositionSwap, Deal, AccountSnapshot):
    pickle_as_fields(_cls)
