"""Turns one account's deals into entries and round trips, the units every detector reasons in.

MT5 sends deals, not trades: an IN deal opens (or, in netting, adds to) a position, an OUT deal
closes all or part of it, an INOUT deal closes and reverses. Detectors want "a trade was entered
at this price" and "a trade was held this long and made this much", so this ledger pairs them by
position id. Positions opened before monitoring started have no known entry and yield no round
trip (their hold time is unknown); they never invent one.
"""

from __future__ import annotations

from dataclasses import dataclass

from veles.risk.events import Deal, DealEntry, DealKind, Side


@dataclass(frozen=True, slots=True)
class Entry:
    """A deal that opened or added to a position."""

    ticket: int
    login: int
    time_msc: int
    symbol: str
    side: Side
    volume: float
    price: float
    position_id: int


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A closed (part of a) position: from its first entry to this closing deal."""

    open_ticket: int
    close_ticket: int
    symbol: str
    side: Side
    volume: float
    hold_ms: int
    profit: float  # the closing deal's profit + commission + swap, deposit currency
    close_msc: int


@dataclass(slots=True)
class _Open:
    ticket: int
    time_msc: int
    symbol: str
    side: Side
    volume: float


def deal_side(deal: Deal) -> Side:
    """The direction of a trade deal."""
    return Side.BUY if deal.kind is DealKind.BUY else Side.SELL


class TradeLedger:
    """Open positions of one account as the detectors see them (ticket and time of first entry)."""

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[int, _Open] = {}

    @property
    def open_count(self) -> int:
        """Positions opened while monitored and still open."""
        return len(self._open)

    def apply(self, deal: Deal) -> tuple[Entry | None, RoundTrip | None]:
        """Book a trade deal; return the entry it makes and the round trip it closes (either may
        be None). Balance and credit deals return (None, None)."""
        if deal.kind not in (DealKind.BUY, DealKind.SELL) or deal.volume <= 0.0:
            return None, None
        side = deal_side(deal)
        entry = Entry(
            deal.ticket, deal.login, deal.time_msc, deal.symbol, side, deal.volume, deal.price,
            deal.position_id,
        )
        if deal.entry is DealEntry.IN:
            current = self._open.get(deal.position_id)
            if current is None:
                opened = _Open(deal.ticket, deal.time_msc, deal.symbol, side, deal.volume)
                self._open[deal.position_id] = opened
            else:
                current.volume += deal.volume
            return entry, None
        current = self._open.get(deal.position_id)
        if current is None:
            return (entry if deal.entry is DealEntry.INOUT else None), None
        closed = min(current.volume, deal.volume)
        trip = RoundTrip(
            current.ticket, deal.ticket, current.symbol, current.side, closed,
            deal.time_msc - current.time_msc, deal.profit + deal.commission + deal.swap, deal.time_msc,
        )
        if deal.entry is DealEntry.INOUT:
            rest = round(deal.volume - current.volume, 8)
            self._open[deal.position_id] = _Open(deal.ticket, deal.time_msc, deal.symbol, side, rest)
            return entry, trip
        current.volume = round(current.volume - closed, 8)
        if current.volume <= 0.0:
            del self._open[deal.position_id]
        return None, trip
