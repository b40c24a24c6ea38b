"""Account books as an MT5 trade server keeps them: balance, credit and open positions, moved only
by deals.

The simulator books every deal it emits here, and the replay gateway books every deal it plays
back, so `account(login)` of either gateway is always exactly "the start snapshot plus the deals
emitted so far" - the invariant the engine relies on when it re-synchronises an account actor.

Rules follow MT5: in hedging mode every IN deal opens its own position (`position_id` = the
opening deal's ticket) and an OUT deal closes part or all of one position; in netting mode there is
at most one position per symbol, IN deals add to it at the volume-weighted average price, OUT deals
reduce it and an INOUT deal closes it and opens the remainder the other way under the same id.
Rollover swaps accumulate in a position's `swap` (`set_swap`); the deal that closes (part of) it
carries that (part of the) swap, which then leaves the position. Trade deals move the balance by
their profit, commission and swap (so a position's own
`commission` stays 0: the opening commission is already booked, and the risk core would count a
position's commission as not yet booked); balance and credit operations move it by their amount.
Deals with a ticket at or below `last_deal_ticket` are already reflected and are ignored, which is
how a book survives a duplicated deal. A position keeps the margin conversion rate its opening deal
carries (`Deal.margin_rate`, MT5's RateMargin; volume-weighted when a netting deal adds to it), so a
replayed book's snapshot re-synchronises an engine with the rates the server fixed.

`ServerAccount` pairs a book with the risk core's `AccountState`, which the server needs for what
a book cannot know: the profit of a closing deal, margin and free margin, the stop-out order, and
MT5's margin conversion rate fixed when a position opens. The book stays the server's own record
so that the risk core is checked against an independent implementation, not against itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from veles.risk.account import AccountFigures, AccountState
from veles.risk.events import (
    AccountSnapshot,
    Deal,
    DealEntry,
    DealKind,
    MarginMode,
    Position,
    PositionSwap,
    Quote,
    Side,
)
from veles.risk.instruments import SymbolSpec
from veles.risk.money import from_minor, to_minor

VOLUME_DIGITS = 8  # lots are kept to 1e-8 so that 0.1 + 0.2 closes against 0.3


class LedgerError(ValueError):
    """A deal that cannot happen to this book (closing a position that is not open, ...)."""


@dataclass(slots=True)
class _Open:
    ticket: int
    symbol: str
    side: Side
    volume: float
    price_open: float
    swap: float = 0.0
    commission: float = 0.0
    margin_rate: float = 0.0
    time_msc: int = 0
    sl: float = 0.0
    tp: float = 0.0

    def frozen(self) -> Position:
        return Position(
            self.ticket,
            self.symbol,
            self.side,
            self.volume,
            self.price_open,
            self.swap,
            self.commission,
            self.margin_rate,
            self.time_msc,
            self.sl,
            self.tp,
        )


def deal_side(kind: DealKind) -> Side:
    """The direction of a trade deal."""
    if kind is DealKind.BUY:
        return Side.BUY
    if kind is DealKind.SELL:
        return Side.SELL
    raise LedgerError(f"{kind} deals have no side")


class AccountBook:
    """One account: the settings of its snapshot plus a balance, credit and positions kept current."""

    def __init__(self, snapshot: AccountSnapshot) -> None:
        self._settings = snapshot
        self.login = snapshot.login
        self.balance = snapshot.balance
        self.credit = snapshot.credit
        self.last_deal_ticket = snapshot.last_deal_ticket
        self.netting = snapshot.margin_mode is MarginMode.NETTING
        self._positions: dict[int, _Open] = {
            p.ticket: _Open(
                p.ticket, p.symbol, p.side, p.volume, p.price_open, p.swap, p.commission, p.margin_rate,
                p.time_msc, p.sl, p.tp,
            )
            for p in snapshot.positions
        }

    @property
    def settings(self) -> AccountSnapshot:
        """The snapshot the book started from (currency, leverage, group, levels...)."""
        return self._settings

    def positions(self) -> list[Position]:
        """Open positions in opening order."""
        return [p.frozen() for p in self._positions.values()]

    def position(self, ticket: int) -> Position | None:
        """One open position, or None once it is closed."""
        found = self._positions.get(ticket)
        return found.frozen() if found else None

    def position_on(self, symbol: str) -> Position | None:
        """The position on a symbol (netting mode has at most one)."""
        for p in self._positions.values():
            if p.symbol == symbol:
                return p.frozen()
        return None

    @property
    def has_positions(self) -> bool:
        """Whether anything is open (only then can prices move the account)."""
        return bool(self._positions)

    def set_swap(self, ticket: int, swap: float) -> None:
        """Record an open position's accumulated swap (after a rollover charged it)."""
        self._positions[ticket].swap = swap

    def fix_margin_rate(self, ticket: int, rate: float) -> None:
        """Record MT5's margin conversion rate of an open position (fixed when it opened)."""
        self._positions[ticket].margin_rate = rate

    def snapshot(self) -> AccountSnapshot:
        """The account as of the last booked deal."""
        s = self._settings
        return AccountSnapshot(
            login=s.login,
            currency=s.currency,
            leverage=s.leverage,
            balance=self.balance,
            credit=self.credit,
            margin_mode=s.margin_mode,
            hedged_margin_larger_leg=s.hedged_margin_larger_leg,
            margin_call=s.margin_call,
            stop_out=s.stop_out,
            stopout_mode=s.stopout_mode,
            group=s.group,
            book=s.book,
            name=s.name,
            country=s.country,
            positions=tuple(p.frozen() for p in self._positions.values()),
            last_deal_ticket=self.last_deal_ticket,
        )

    def apply(self, deal: Deal) -> bool:
        """Book one deal; False when it was already reflected (a duplicate), True otherwise."""
        if deal.login != self.login:
            raise LedgerError(f"deal {deal.ticket} is for {deal.login}, not {self.login}")
        if deal.ticket <= self.last_deal_ticket:
            return False
        if deal.kind is DealKind.BALANCE:
            self.balance = round(self.balance + deal.amount, 2)
        elif deal.kind is DealKind.CREDIT:
            self.credit = round(self.credit + deal.amount, 2)
        else:
            self._trade(deal)
            self.balance = round(self.balance + deal.profit + deal.commission + deal.swap, 2)
        self.last_deal_ticket = deal.ticket
        return True

    def _trade(self, deal: Deal) -> None:
        side = deal_side(deal.kind)
        current = self._positions.get(deal.position_id)
        if deal.entry is DealEntry.IN:
            if current is None:
                if self.netting and self.position_on(deal.symbol) is not None:
                    raise LedgerError(
                        f"deal {deal.ticket}: netting account already has a {deal.symbol} position"
                    )
                self._positions[deal.position_id] = _Open(
                    deal.position_id, deal.symbol, side, deal.volume, deal.price,
                    margin_rate=deal.margin_rate, time_msc=deal.time_msc, sl=deal.sl, tp=deal.tp,
                )
                return
            if not self.netting or current.side is not side or current.symbol != deal.symbol:
                raise LedgerError(f"deal {deal.ticket} cannot add to position {deal.position_id}")
            total = round(current.volume + deal.volume, VOLUME_DIGITS)
            current.price_open = (current.price_open * current.volume + deal.price * deal.volume) / total
            if current.margin_rate > 0.0:  # volume-weighted, as the risk core merges them
                rate = deal.margin_rate or current.margin_rate
                current.margin_rate = (current.volume * current.margin_rate + deal.volume * rate) / total
            current.volume = total
            current.sl, current.tp = deal.sl or current.sl, deal.tp or current.tp  # stops the deal sets
            return
        if current is None or current.side is side or current.symbol != deal.symbol:
            raise LedgerError(
                f"deal {deal.ticket} closes position {deal.position_id}, which is not open against it"
            )
        left = round(current.volume - deal.volume, VOLUME_DIGITS)
        if deal.entry is DealEntry.OUT:
            if left < 0:
                raise LedgerError(f"deal {deal.ticket} closes more than position {deal.position_id} holds")
            if left == 0:
                del self._positions[deal.position_id]
            else:
                current.volume = left
                current.swap = from_minor(to_minor(current.swap) - to_minor(deal.swap))  # booked part leaves
            return
        if not self.netting or left >= 0:
            raise LedgerError(f"deal {deal.ticket}: INOUT must reverse a netting position")
        current.side = side
        current.volume = -left
        current.price_open = deal.price
        current.swap = 0.0
        current.commission = 0.0
        current.margin_rate = deal.margin_rate
        current.time_msc, current.sl, current.tp = deal.time_msc, deal.sl, deal.tp


class LiveQuotes(dict[str, Quote]):
    """The latest quote of every symbol, with a version that moves whenever any quote does, so an
    account can tell in O(1) whether its prices are current."""

    def __init__(self, quotes: Iterable[Quote] = ()) -> None:
        super().__init__((q.symbol, q) for q in quotes)
        self.version = 0

    def __bool__(self) -> bool:
        # A live source is never "no quotes", even before the first tick: AccountState treats a
        # falsy mapping as absent and would swap in a private empty dict, losing the link.
        return True

    def update_from(self, quotes: Iterable[Quote]) -> None:
        """Take newer quotes (the caller guarantees they are valid)."""
        for quote in quotes:
            self[quote.symbol] = quote
        self.version += 1


class ServerAccount:
    """One account on the server: its book and the risk core's state of it.

    The state is brought to the live prices lazily (`refresh`), only when something reads it:
    an order, a figures request or a stop-out check. Feeding every quote to every account would
    make a poll cost grow with accounts x quotes for no visible difference.
    """

    def __init__(
        self, snapshot: AccountSnapshot, symbols: Mapping[str, SymbolSpec], market: LiveQuotes
    ) -> None:
        self.book = AccountBook(snapshot)
        self.state = AccountState(snapshot, symbols, market)
        self._market = market
        self._seen = market.version
        self.next_check_msc = 0  # when the server next looks at this account's stop-out level

    def refresh(self) -> AccountFigures:
        """Apply the live prices of everything the account depends on; its figures now."""
        market = self._market
        if self._seen != market.version:
            self._seen = market.version
            needed = [market[name] for name in self.state.symbols_needed if name in market]
            if needed:
                return self.state.apply_quotes(needed) or self.state.figures()
        return self.state.figures()

    def apply_swap(self, update: PositionSwap) -> None:
        """Set a position's accumulated swap in both (RejectedEvent when it is not open)."""
        self.refresh()
        self.state.apply_swap(update)
        self.book.set_swap(update.position_id, update.swap)

    def apply(self, deal: Deal) -> bool:
        """Book a deal in both at the live prices; False when it was already reflected."""
        if deal.ticket <= self.book.last_deal_ticket:
            return False
        self.refresh()
        self.state.apply_deal(deal)
        self.book.apply(deal)
        if deal.entry is not DealEntry.OUT and deal.kind in (DealKind.BUY, DealKind.SELL):
            for position in self.state.positions():
                if position.ticket == deal.position_id:
                    self.book.fix_margin_rate(position.ticket, position.margin_rate)
        return True
