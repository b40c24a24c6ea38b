"""The simulated MT5 trade server: turns traders' market orders into deals and books them.

It plays the part the real server plays for a connector: it fills orders at the current quote
(buys at ask, sells at bid, or at a stale price a slow bridge still shows), decides the deal entry
(IN, OUT or a netting INOUT reversal), numbers deals with one increasing ticket sequence per server,
charges commission by group, and keeps every account's book. Deals queue up until the simulator
collects them into the next batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from veles.mt5.ledger import VOLUME_DIGITS, AccountBook
from veles.mt5.market import Market
from veles.risk.events import AccountSnapshot, Deal, DealEntry, DealKind, Position, Side
from veles.risk.instruments import SymbolSpec

#: Commission per lot per side in the deposit currency, by group, on FX and metals; "standard"
#: accounts pay through the spread instead, which is how most retail brokers price them.
COMMISSION_PER_LOT: Mapping[str, float] = {"real\\pro": 3.5, "real\\vip": 2.5}
COMMISSIONED_CLASSES = frozenset({"fx", "metal"})


def normalise_volume(spec: SymbolSpec, volume: float) -> float:
    """Round a wanted volume down to the symbol's step and cap it; 0.0 when below the minimum."""
    steps = int(volume / spec.volume_step + 1e-9)
    lots = round(min(steps * spec.volume_step, spec.volume_max), VOLUME_DIGITS)
    return lots if lots >= spec.volume_min else 0.0


class TradeServer:
    """Books of every account plus order execution against the market."""

    def __init__(self, market: Market, symbols: Iterable[SymbolSpec], first_ticket: int) -> None:
        self._market = market
        self.specs: dict[str, SymbolSpec] = {s.name: s for s in symbols}
        self._books: dict[int, AccountBook] = {}
        self._next_ticket = first_ticket
        self._pending: list[Deal] = []

    # -- accounts ------------------------------------------------------------------------------

    def add_account(self, snapshot: AccountSnapshot) -> None:
        """Open a book for an account (its snapshot may already hold positions)."""
        self._books[snapshot.login] = AccountBook(snapshot)

    def logins(self) -> list[int]:
        """Every account login, in the order they were added."""
        return list(self._books)

    def book(self, login: int) -> AccountBook:
        """The live book of one account; KeyError when the login is unknown."""
        return self._books[login]

    def positions(self, login: int) -> list[Position]:
        """Open positions of one account."""
        return self._books[login].positions()

    def take_deals(self) -> tuple[Deal, ...]:
        """Deals booked since the last call, in ticket order."""
        deals, self._pending = tuple(self._pending), []
        return deals

    # -- orders --------------------------------------------------------------------------------

    def market_order(
        self, login: int, symbol: str, side: Side, volume: float, comment: str = "", price: float = 0.0
    ) -> Deal | None:
        """Fill a market order: hedging opens a new position; netting adds to, reduces or reverses
        the symbol's position. `price` overrides the fill (a stale quote). None when the volume
        rounds to nothing."""
        book = self._books[login]
        spec = self.specs[symbol]
        lots = normalise_volume(spec, volume)
        if lots == 0.0:
            return None
        fill = price or self._fill_price(symbol, side)
        current = book.position_on(symbol) if book.netting else None
        if current is None or current.side is side:
            position_id = current.ticket if current else 0
            return self._book(book, spec, side, lots, fill, DealEntry.IN, position_id, comment)
        entry = DealEntry.INOUT if lots > current.volume else DealEntry.OUT
        return self._book(book, spec, side, lots, fill, entry, current.ticket, comment)

    def close_position(
        self, login: int, ticket: int, volume: float = 0.0, comment: str = "", price: float = 0.0
    ) -> Deal | None:
        """Close all (volume 0) or part of one position with an opposite OUT deal; None when the
        position is no longer open."""
        book = self._books[login]
        position = book.position(ticket)
        if position is None:
            return None
        spec = self.specs[position.symbol]
        lots = position.volume if volume <= 0 else min(position.volume, normalise_volume(spec, volume))
        if lots <= 0:
            return None
        side = Side.SELL if position.side is Side.BUY else Side.BUY
        fill = price or self._fill_price(position.symbol, side)
        return self._book(book, spec, side, lots, fill, DealEntry.OUT, ticket, comment)

    def balance(self, login: int, amount: float, comment: str) -> Deal:
        """A deposit (positive) or withdrawal (negative)."""
        return self._money(login, DealKind.BALANCE, amount, comment)

    def credit(self, login: int, amount: float, comment: str) -> Deal:
        """Credit given (positive) or taken back (negative)."""
        return self._money(login, DealKind.CREDIT, amount, comment)

    # -- internals -----------------------------------------------------------------------------

    def _fill_price(self, symbol: str, side: Side) -> float:
        quote = self._market.quote(symbol)
        return quote.ask if side is Side.BUY else quote.bid

    def _commission(self, book: AccountBook, spec: SymbolSpec, lots: float) -> float:
        if spec.asset_class not in COMMISSIONED_CLASSES:
            return 0.0
        return round(-COMMISSION_PER_LOT.get(book.settings.group, 0.0) * lots, 2) + 0.0  # no -0.0

    def _book(
        self,
        book: AccountBook,
        spec: SymbolSpec,
        side: Side,
        lots: float,
        price: float,
        entry: DealEntry,
        position_id: int,
        comment: str,
    ) -> Deal:
        ticket = self._take_ticket()
        deal = Deal(
            ticket=ticket,
            login=book.login,
            kind=DealKind.BUY if side is Side.BUY else DealKind.SELL,
            time_msc=self._market.now_msc,
            entry=entry,
            symbol=spec.name,
            volume=lots,
            price=price,
            position_id=position_id or ticket,  # a new position takes its opening deal's ticket
            commission=self._commission(book, spec, lots),
            comment=comment,
        )
        return self._record(book, deal)

    def _money(self, login: int, kind: DealKind, amount: float, comment: str) -> Deal:
        book = self._books[login]
        deal = Deal(
            ticket=self._take_ticket(),
            login=login,
            kind=kind,
            time_msc=self._market.now_msc,
            amount=round(amount, 2),
            comment=comment,
        )
        return self._record(book, deal)

    def _record(self, book: AccountBook, deal: Deal) -> Deal:
        book.apply(deal)
        self._pending.append(deal)
        return deal

    def _take_ticket(self) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        return ticket
