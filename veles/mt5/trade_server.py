"""The simulated MT5 trade server: turns traders' market orders into deals and books them.

It plays the part the real server plays for a connector: it fills orders at the current quote
(buys at ask, sells at bid, or at a stale price a slow bridge still shows), decides the deal entry
(IN, OUT or a netting INOUT reversal), numbers deals with one increasing ticket sequence per server,
books the realised profit of closing deals and charges commission by group, refuses orders the
free margin cannot carry, and stops accounts out. Deals queue up until the simulator collects them
into the next batch.

Money comes from the risk core (`veles.risk`): the profit of a closing deal is
`AccountState.close_profit`, the margin an order needs is MT5's formula from `veles.risk.margin`
converted with `veles.risk.conversion`, and stop-out follows `AccountState.stop_out_order`. The
server adds no money arithmetic of its own beyond commissions.

Stop-out works as on MT5: when prices bring an account's margin level (or equity, in money mode)
to its stop-out level, the position with the largest loss is closed, then the level is checked
again, one position at a time until the account recovers or is flat. The closing deals carry
MT5's "[so 43.21%]" comment. A gap that leaves the account flat with a negative balance is
compensated by a balance deal (negative balance protection, mandatory for EU retail clients).

To keep a poll cheap, an account far from its stop-out level is re-checked less often: every 1 s
above 4x its stop-out level, every 2 s above 10x (shorter when volatility is scaled up), every
step when closer, after each of its own deals, and every account at once on a step where prices
gapped or spreads widened. Ordinary moves cannot cover those distances within the wait, so
stop-outs still happen at the first prices beyond the level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from veles.mt5.ledger import VOLUME_DIGITS, AccountBook, LiveQuotes, ServerAccount
from veles.mt5.market import Market
from veles.risk.account import AccountFigures, closed_swap
from veles.risk.conversion import resolve
from veles.risk.events import (
    AccountSnapshot,
    Deal,
    DealEntry,
    DealKind,
    Position,
    PositionSwap,
    Quote,
    Side,
    StopoutMode,
)
from veles.risk.instruments import SymbolSpec
from veles.risk.margin import base_margin, margin_rate
from veles.risk.money import from_minor, to_minor
from veles.risk.score import STATE_STOP_OUT
from veles.risk.swap import rollover_swap

#: Commission per lot per side in the deposit currency, by group, on FX and metals; "standard"
#: accounts pay through the spread instead, which is how most retail brokers price them.
COMMISSION_PER_LOT: Mapping[str, float] = {"real\\pro": 3.5, "real\\vip": 2.5}
COMMISSIONED_CLASSES = frozenset({"fx", "metal"})


def normalise_volume(spec: SymbolSpec, volume: float) -> float:
    """Round a wanted volume down to the symbol's step and cap it; 0.0 when below the minimum."""
    steps = int(volume / spec.volume_step + 1e-9)
    lots = round(min(steps * spec.volume_step, spec.volume_max), VOLUME_DIGITS)
    return lots if lots >= spec.volume_min else 0.0


def _check_delay_ms(settings: AccountSnapshot, figures: AccountFigures, volatility: float) -> int:
    """How long an account's stop-out check can wait: an account at 4x its stop-out level would
    need to lose most of its margin in a second, which takes a many-sigma move even at 1:500;
    the wait shrinks as the market's volatility is scaled up."""
    if figures.margin_level is None:
        return round(2000 / volatility)
    measure = figures.margin_level if settings.stopout_mode is StopoutMode.PERCENT else figures.equity
    ratio = measure / max(settings.stop_out, 1e-9)
    return round((2000 if ratio > 10.0 else 1000 if ratio > 4.0 else 0) / volatility)


class TradeServer:
    """Every account of the server plus order execution against the market."""

    def __init__(self, market: Market, symbols: Iterable[SymbolSpec], first_ticket: int) -> None:
        self._market = market
        self.specs: dict[str, SymbolSpec] = {s.name: s for s in symbols}
        self._quotes = LiveQuotes(market.quotes().values())
        self._accounts: dict[int, ServerAccount] = {}
        self._next_ticket = first_ticket
        self._pending: list[Deal] = []
        self._swaps: list[PositionSwap] = []
        self.refused = 0  # orders refused for lack of free margin, for tests and tuning

    # -- accounts ------------------------------------------------------------------------------

    def add_account(self, snapshot: AccountSnapshot) -> None:
        """Open an account (its snapshot may already hold positions)."""
        self._accounts[snapshot.login] = ServerAccount(snapshot, self.specs, self._quotes)

    def logins(self) -> list[int]:
        """Every account login, in the order they were added."""
        return list(self._accounts)

    def book(self, login: int) -> AccountBook:
        """The live book of one account; KeyError when the login is unknown."""
        return self._accounts[login].book

    def figures(self, login: int) -> AccountFigures:
        """Equity, margin, free margin, level and state of one account at the latest prices."""
        return self._accounts[login].refresh()

    def quote(self, symbol: str) -> Quote:
        """The latest price of a symbol: what market orders fill at."""
        return self._quotes[symbol]

    def positions(self, login: int) -> list[Position]:
        """Open positions of one account."""
        return self._accounts[login].book.positions()

    def take_deals(self) -> tuple[Deal, ...]:
        """Deals booked since the last call, in ticket order."""
        deals, self._pending = tuple(self._pending), []
        return deals

    def take_swaps(self) -> tuple[PositionSwap, ...]:
        """Positions whose swap a rollover changed since the last call, with their new swap."""
        swaps, self._swaps = tuple(self._swaps), []
        return swaps

    # -- rollover ------------------------------------------------------------------------------

    def rollover(self, weekday: int) -> None:
        """Charge the rollover at the end of `weekday` (0 = Sunday) to every open position, at the
        latest prices: MT5's swap of each symbol's mode and long/short rate, times the weekday's
        multiplier (triple on the symbol's triple day), converted into the deposit currency
        (`veles.risk.swap`), added to the position's swap. Nothing reaches the balance until the
        position closes; the feed carries each position's new swap (`take_swaps`)."""
        now = self._market.now_msc
        for login, account in self._accounts.items():
            book = account.book
            if not book.has_positions:
                continue
            currency = book.settings.currency
            for position in book.positions():
                charge = rollover_swap(
                    self.specs[position.symbol], position.side, position.volume, position.price_open,
                    weekday=weekday, deposit_currency=currency, quotes=self._quotes, known=self.specs,
                )
                if charge == 0.0:
                    continue
                total = from_minor(to_minor(position.swap) + to_minor(charge))
                update = PositionSwap(login, position.ticket, total, now)
                account.apply_swap(update)
                self._swaps.append(update)
            account.next_check_msc = 0  # swaps moved the equity: look again at the next prices

    # -- prices --------------------------------------------------------------------------------

    def on_quotes(self, quotes: tuple[Quote, ...], gapped: bool = False) -> None:
        """Take new prices and stop out the accounts they bring to their stop-out level;
        `gapped` (prices jumped, or spreads widened with a regime change) checks every account
        with positions at once."""
        if quotes:
            self._quotes.update_from(quotes)
        now = self._market.now_msc
        volatility = max(1.0, self._market.volatility)
        for account in self._accounts.values():
            if not account.book.has_positions or (now < account.next_check_msc and not gapped):
                continue
            figures = account.refresh()
            if figures.state == STATE_STOP_OUT:
                self._stop_out(account, figures)
            account.next_check_msc = now + _check_delay_ms(account.book.settings, figures, volatility)

    def _stop_out(self, account: ServerAccount, figures: AccountFigures) -> None:
        login = account.book.login
        while figures.state == STATE_STOP_OUT and account.book.has_positions:
            level = figures.margin_level or 0.0
            ticket = account.state.stop_out_order()[0]
            self.close_position(login, ticket, comment=f"[so {level:.2f}%]")
            figures = account.state.figures()
        if not account.book.has_positions and account.book.balance < 0:
            self.balance(login, -account.book.balance, "negative balance protection")

    # -- orders --------------------------------------------------------------------------------

    def market_order(
        self, login: int, symbol: str, side: Side, volume: float, comment: str = "", price: float = 0.0
    ) -> Deal | None:
        """Fill a market order: hedging opens a new position; netting adds to, reduces or reverses
        the symbol's position. `price` overrides the fill (a stale quote). None when the volume
        rounds to nothing or the free margin cannot carry the new exposure."""
        account = self._accounts[login]
        account.refresh()
        book = account.book
        spec = self.specs[symbol]
        lots = normalise_volume(spec, volume)
        if lots == 0.0:
            return None
        fill = price or self._fill_price(symbol, side)
        current = book.position_on(symbol) if book.netting else None
        if current is None or current.side is side:
            if not self._margin_allows(account, spec, side, lots, fill):
                return None
            position_id = current.ticket if current else 0
            return self._book(account, spec, side, lots, fill, DealEntry.IN, position_id, comment)
        if lots > current.volume:
            reverse = round(lots - current.volume, VOLUME_DIGITS)
            if not self._margin_allows(account, spec, side, reverse, fill):
                return None
            profit = account.state.close_profit(current.ticket, current.volume, fill)
            return self._book(
                account, spec, side, lots, fill, DealEntry.INOUT, current.ticket, comment, profit,
                current.swap,
            )
        profit = account.state.close_profit(current.ticket, lots, fill)
        swap = closed_swap(current.swap, lots, current.volume)
        return self._book(
            account, spec, side, lots, fill, DealEntry.OUT, current.ticket, comment, profit, swap
        )

    def close_position(
        self, login: int, ticket: int, volume: float = 0.0, comment: str = "", price: float = 0.0
    ) -> Deal | None:
        """Close all (volume 0) or part of one position with an opposite OUT deal; None when the
        position is no longer open."""
        account = self._accounts[login]
        position = account.book.position(ticket)
        if position is None:
            return None
        account.refresh()
        spec = self.specs[position.symbol]
        lots = position.volume if volume <= 0 else min(position.volume, normalise_volume(spec, volume))
        if lots <= 0:
            return None
        side = Side.SELL if position.side is Side.BUY else Side.BUY
        fill = price or self._fill_price(position.symbol, side)
        profit = account.state.close_profit(ticket, lots, fill)
        swap = closed_swap(position.swap, lots, position.volume)
        return self._book(account, spec, side, lots, fill, DealEntry.OUT, ticket, comment, profit, swap)

    def balance(self, login: int, amount: float, comment: str) -> Deal:
        """A deposit (positive) or withdrawal (negative)."""
        return self._money(login, DealKind.BALANCE, amount, comment)

    def credit(self, login: int, amount: float, comment: str) -> Deal:
        """Credit given (positive) or taken back (negative)."""
        return self._money(login, DealKind.CREDIT, amount, comment)

    # -- internals -----------------------------------------------------------------------------

    def _fill_price(self, symbol: str, side: Side) -> float:
        quote = self._quotes[symbol]
        return quote.ask if side is Side.BUY else quote.bid

    def initial_margin(self, login: int, symbol: str, side: Side, lots: float, price: float = 0.0) -> float:
        """MT5's initial margin of a new exposure in the account's deposit currency, at `price`
        (default: the current fill price), before any hedge offset."""
        settings = self._accounts[login].book.settings
        spec = self.specs[symbol]
        buy = side is Side.BUY
        needed = base_margin(
            spec, lots, price or self._fill_price(symbol, side), settings.leverage, maintenance=False
        )
        needed *= margin_rate(spec, buy, maintenance=False)
        conversion = resolve(spec.effective_margin_currency, settings.currency, self.specs)
        return needed * conversion.margin_rate(self._quotes, buy)

    def _margin_allows(
        self, account: ServerAccount, spec: SymbolSpec, side: Side, lots: float, price: float
    ) -> bool:
        """MT5's check before a fill: the initial margin of the new exposure must fit in the free
        margin. Hedge offsets are not credited, so a lock on a stressed account may be refused
        where MT5 would accept it - the simulator errs towards fewer, not impossible, positions."""
        needed = self.initial_margin(account.book.login, spec.name, side, lots, price)
        if needed <= account.refresh().free_margin:
            return True
        self.refused += 1
        return False

    def _commission(self, settings: AccountSnapshot, spec: SymbolSpec, lots: float) -> float:
        if spec.asset_class not in COMMISSIONED_CLASSES:
            return 0.0
        return round(-COMMISSION_PER_LOT.get(settings.group, 0.0) * lots, 2) + 0.0  # no -0.0

    @staticmethod
    def _stops(ticket: int, side: Side, price: float, digits: int) -> tuple[float, float]:
        """The stop loss and take profit a simulated client puts on an order: fixed by the ticket
        (apart from the seeded stream, so the simulation moves as before), some with both, some
        with one, a third with none; a stop loss 0.5-3% from the fill, a take profit 1.5 times as
        far. The simulated server records them on the deal and the position, as MT5 does; its
        traders close by their own rules, so it does not trigger them."""
        mix = ticket * 2_654_435_761 >> 5
        kind = mix % 6  # 0-1: both, 2: SL only, 3: TP only, 4-5: none
        if kind >= 4:
            return 0.0, 0.0
        away = (0.005, 0.01, 0.02, 0.03)[(mix >> 3) % 4]
        sign = 1.0 if side is Side.BUY else -1.0
        sl = round(price * (1.0 - sign * away), digits) if kind in (0, 1, 2) else 0.0
        tp = round(price * (1.0 + sign * 1.5 * away), digits) if kind in (0, 1, 3) else 0.0
        return sl, tp

    def _book(
        self,
        account: ServerAccount,
        spec: SymbolSpec,
        side: Side,
        lots: float,
        price: float,
        entry: DealEntry,
        position_id: int,
        comment: str,
        profit: float = 0.0,
        swap: float = 0.0,
    ) -> Deal:
        ticket = self._take_ticket()
        sl, tp = self._stops(ticket, side, price, spec.digits) if entry is not DealEntry.OUT else (0.0, 0.0)
        deal = Deal(
            ticket=ticket,
            login=account.book.login,
            kind=DealKind.BUY if side is Side.BUY else DealKind.SELL,
            time_msc=self._market.now_msc,
            entry=entry,
            symbol=spec.name,
            volume=lots,
            price=price,
            position_id=position_id or ticket,  # a new position takes its opening deal's ticket
            profit=profit,
            commission=self._commission(account.book.settings, spec, lots),
            swap=swap,
            comment=comment,
            # MT5's deal RateMargin: the conversion fixed now, at the prices this fill saw, so an
            # engine applying the deal at other quotes fixes the same rate (`Deal.margin_rate`)
            margin_rate=account.state.opening_rate(spec.name, side is Side.BUY),
            sl=sl,
            tp=tp,
        )
        return self._record(account, deal)

    def _money(self, login: int, kind: DealKind, amount: float, comment: str) -> Deal:
        account = self._accounts[login]
        deal = Deal(
            ticket=self._take_ticket(),
            login=login,
            kind=kind,
            time_msc=self._market.now_msc,
            amount=round(amount, 2),
            comment=comment,
        )
        return self._record(account, deal)

    def _record(self, account: ServerAccount, deal: Deal) -> Deal:
        account.apply(deal)
        account.next_check_msc = 0  # the level just moved: look again at the next prices
        self._pending.append(deal)
        return deal

    def _take_ticket(self) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        return ticket
