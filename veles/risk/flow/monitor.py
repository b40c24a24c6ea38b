"""`FlowMonitor`: every detector of one book, fed the quotes, deals and calendar an engine sees.

Per account it keeps a trade ledger and the account's own detectors (scalping, latency, martingale
and grid, news, sharp deals); per book the quote board for markouts, the news calendar and the
cross-account matcher. Everything is incremental: a quote costs a dict store, a deal costs its
account's detectors plus one scan of the symbol's recent entries, and markouts are settled from
time-ordered queues as the clock advances. No I/O, no wall clock: same events, same verdicts.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from veles.risk.events import Deal, DealEntry, DealKind, Quote, Side
from veles.risk.flow.cross import CrossDetector, CrossRule
from veles.risk.flow.evidence import Finding
from veles.risk.flow.latency import HORIZONS_S, LatencyDetector, LatencyRule
from veles.risk.flow.martingale import MartingaleDetector, MartingaleRule
from veles.risk.flow.news import Calendar, NewsDetector, NewsEvent, NewsRule
from veles.risk.flow.scalping import ScalpingDetector, ScalpingRule
from veles.risk.flow.scoring import Toxicity, toxicity
from veles.risk.flow.sharp import SharpDetector, SharpRule
from veles.risk.flow.trades import Entry, TradeLedger, deal_side


@dataclass(frozen=True, slots=True)
class FlowRules:
    """Every detector's thresholds (defaults: see each detector's module and the README)."""

    scalping: ScalpingRule = field(default_factory=ScalpingRule)
    latency: LatencyRule = field(default_factory=LatencyRule)
    martingale: MartingaleRule = field(default_factory=MartingaleRule)
    news: NewsRule = field(default_factory=NewsRule)
    sharp: SharpRule = field(default_factory=SharpRule)
    cross: CrossRule = field(default_factory=CrossRule)


def _quote_time(quote: Quote) -> int:
    return quote.time_msc


#: Upper bounds (seconds) of the holding-time histogram's bins; the last bin is everything longer.
HOLD_BINS_S = (1, 5, 15, 60, 300, 3600)


class AccountFlow:
    """One account's ledger and own detectors, with the round trips' holding times and results
    (a profile page's histogram, and the B-book's P/L by label)."""

    __slots__ = ("holds", "latency", "ledger", "martingale", "news", "realized", "scalping", "sharp")

    def __init__(self, rules: FlowRules) -> None:
        self.holds = [0] * (len(HOLD_BINS_S) + 1)
        self.realized = 0.0  # the client's closed result while monitored, deposit currency
        self.ledger = TradeLedger()
        self.scalping = ScalpingDetector(rules.scalping)
        self.latency = LatencyDetector(rules.latency)
        self.martingale = MartingaleDetector(rules.martingale)
        self.news = NewsDetector(rules.news)
        self.sharp = SharpDetector(rules.sharp)

    def findings(self) -> tuple[Finding, ...]:
        """The account's own detectors' findings."""
        return (self.scalping.finding(), self.latency.finding(), self.martingale.finding(),
                self.news.finding(), self.sharp.finding())


class FlowMonitor:
    """Toxic-flow detection over one book (see the module docstring)."""

    def __init__(self, rules: FlowRules | None = None) -> None:
        self.rules = rules or FlowRules()
        self.calendar = Calendar(self.rules.news)
        self.cross = CrossDetector(self.rules.cross)
        self._accounts: dict[int, AccountFlow] = {}
        self._quotes: dict[str, Quote] = {}
        # per horizon: (due_msc, entry, quote at fill) in due order, settled by `advance`
        self._markouts: tuple[deque[tuple[int, Entry, Quote]], ...] = tuple(deque() for _ in HORIZONS_S)
        self.now_msc = 0
        self._dirty: set[int] = set()

    def take_changed(self) -> set[int]:
        """The accounts whose toxicity may have changed since the last call (a deal, a settled
        markout, a cross-account match): a live book recomputes only those."""
        changed = self._dirty | self.cross.take_touched()
        self._dirty = set()
        return changed

    def account(self, login: int) -> AccountFlow:
        """One account's detectors (created on first use)."""
        flow = self._accounts.get(login)
        if flow is None:
            flow = self._accounts[login] = AccountFlow(self.rules)
        return flow

    def logins(self) -> list[int]:
        """Every account seen."""
        return list(self._accounts)

    def on_news(self, events: Iterable[NewsEvent]) -> None:
        """Releases on the calendar (before the quotes of the batch they came in: the board
        still holds the prices before them)."""
        self.calendar.add(events, self._quotes, self.now_msc)

    def on_quotes(self, quotes: Iterable[Quote]) -> None:
        """New prices, in time order: markouts that came due before a quote are settled at the
        prices that held until then."""
        board = self._quotes
        for quote in sorted(quotes, key=_quote_time):
            if quote.time_msc > self.now_msc:
                self.advance(quote.time_msc - 1)
            board[quote.symbol] = quote

    def on_deals(self, deals: Iterable[Deal]) -> None:
        """Trade deals of any account (balance and credit deals are ignored)."""
        for deal in deals:
            if deal.kind is DealKind.BUY or deal.kind is DealKind.SELL:
                self._on_trade(deal)

    def advance(self, now_msc: int) -> None:
        """Move the clock and settle the markouts that came due (at the latest quote: a symbol
        that did not tick kept its price)."""
        if now_msc > self.now_msc:
            self.now_msc = now_msc
        board = self._quotes
        for horizon, queue in enumerate(self._markouts):
            while queue and queue[0][0] <= self.now_msc:
                _, entry, at_fill = queue.popleft()
                quote = board[entry.symbol]
                mid = (quote.bid + quote.ask) / 2
                spread = at_fill.ask - at_fill.bid
                if entry.side is Side.BUY:
                    move, closeable = mid - entry.price, quote.bid > entry.price
                else:
                    move, closeable = entry.price - mid, quote.ask < entry.price
                flow = self._accounts.get(entry.login)
                if flow is not None:
                    self._dirty.add(entry.login)
                    flow.latency.on_markout(entry, horizon, move / spread if spread > 0 else 0.0, closeable)

    def _on_trade(self, deal: Deal) -> None:
        if deal.time_msc > self.now_msc:
            self.advance(deal.time_msc)
        flow = self.account(deal.login)
        self._dirty.add(deal.login)
        if deal.entry is not DealEntry.IN:
            # exposure on the closed side shrinks for the basket tracker
            closed_side = Side.SELL if deal_side(deal) is Side.BUY else Side.BUY
            flow.martingale.on_exit(deal.symbol, closed_side, deal.volume)
        entry, trip = flow.ledger.apply(deal)
        if trip is not None:
            flow.holds[bisect_left(HOLD_BINS_S, trip.hold_ms / 1000)] += 1
            flow.realized += trip.profit
            flow.scalping.on_trip(trip)
            flow.sharp.on_trip(trip)
            flow.martingale.on_trip(trip)
        if entry is None:
            return
        event = self.calendar.around(entry.symbol, entry.time_msc, entry.side, entry.price)
        flow.news.on_entry(entry, event)
        if event is None and not flow.martingale.exposed(entry.symbol, entry.side):
            self.cross.on_entry(entry)  # adds to a position are the account's own pattern
        flow.martingale.on_entry(entry)
        quote = self._quotes.get(entry.symbol)
        if quote is None:
            return
        spread = quote.ask - quote.bid
        edge = quote.bid - entry.price if entry.side is Side.BUY else entry.price - quote.ask
        flow.latency.on_entry(entry, edge / spread if spread > 0 else 0.0)
        for horizon, seconds in enumerate(HORIZONS_S):
            self._markouts[horizon].append((entry.time_msc + seconds * 1000, entry, quote))

    def toxicity(self, login: int) -> Toxicity:
        """One account's score, labels and breakdown as of now."""
        flow = self.account(login)
        return toxicity(login, (*flow.findings(), *self.cross.findings(login)))
