"""Property tests: incremental account and book figures equal a from-scratch recomputation.

Tolerance: none. Every rounded amount is kept in integer minor units (see veles.risk.money), so
after any sequence of deals and price batches the incremental AccountState and Book must be
*exactly* equal to ones rebuilt from the current positions, balances and quotes. The only
tolerance is between the book (which rounds each account's USD amounts to the cent before summing)
and a float sum of the accounts: at most half a cent per account and field.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veles.risk.account import AccountFigures, AccountState
from veles.risk.book import Book, book_from_accounts
from veles.risk.errors import RejectedEvent
from veles.risk.events import AccountSnapshot, Deal, DealEntry, DealKind, MarginMode, Quote, Side
from veles.risk.instruments import CalcMode, MarginRates, SymbolSpec

SYMBOLS = {
    "EURUSD": SymbolSpec("EURUSD", base_currency="EUR", profit_currency="USD", sell_rates=MarginRates(1.5)),
    "USDJPY": SymbolSpec("USDJPY", base_currency="USD", profit_currency="JPY", digits=3, tick_size=0.001),
    "XAUUSD": SymbolSpec(
        "XAUUSD", CalcMode.CFD_LEVERAGE, 100.0, 2, 0.01, 1.0, "XAU", "USD", "USD", margin_hedged=50.0
    ),
    "DE40": SymbolSpec("DE40", CalcMode.CFD, 1.0, 1, 0.1, 0.1, "EUR", "EUR", "EUR", margin_hedged=0.5),
    "US500": SymbolSpec(
        "US500", CalcMode.CFD_INDEX, 1.0, 2, 0.25, 0.5, "USD", "USD", "USD", margin_hedged=1.0
    ),
    "BRENT": SymbolSpec(
        "BRENT",
        CalcMode.FUTURES,
        1000.0,
        2,
        0.01,
        10.0,
        "USD",
        "USD",
        "USD",
        margin_initial=5000.0,
        margin_maintenance=4000.0,
        margin_hedged=2500.0,
    ),
}
MIDS = {"EURUSD": 1.1, "USDJPY": 150.0, "XAUUSD": 2300.0, "DE40": 18000.0, "US500": 5200.0, "BRENT": 80.0}
VOLUMES = (0.01, 0.1, 0.3, 1.0, 2.5)


def _quote(symbol: str, mid: float, msc: int) -> Quote:
    spec = SYMBOLS[symbol]
    half = spec.tick_size * 3
    return Quote(symbol, round(mid - half, spec.digits), round(mid + half, spec.digits), msc)


def _rebuilt(state: AccountState, snapshot: AccountSnapshot, market: dict[str, Quote]) -> AccountState:
    figures = state.figures()
    fresh = replace(
        snapshot,
        balance=figures.balance,
        credit=figures.credit,
        positions=state.positions(),
        last_deal_ticket=state.last_deal_ticket,
    )
    return AccountState(fresh, SYMBOLS, market, analytics=state.analytics())


class _Harness:
    """A few accounts fed from one market; deals are valid MT5 deals built from the current state."""

    def __init__(self, rng: random.Random, accounts: list[AccountSnapshot]) -> None:
        self.rng = rng
        self.msc = 1
        self.market = {name: _quote(name, mid, 0) for name, mid in MIDS.items()}
        self.snapshots = {s.login: s for s in accounts}
        self.states = {s.login: AccountState(s, SYMBOLS, self.market) for s in accounts}
        self.book = Book()
        self.latest: dict[int, AccountFigures] = {}
        self.ticket = 1000
        self.position_id = 1
        for state in self.states.values():
            self._publish(state.figures())

    def _publish(self, figures: AccountFigures) -> None:
        self.book.apply(figures)
        self.latest[figures.login] = figures

    def quotes(self, symbols: list[str], moves: list[float]) -> None:
        batch = []
        for symbol, move in zip(symbols, moves, strict=False):
            mid = (self.market[symbol].bid + self.market[symbol].ask) / 2 * (1.0 + move)
            self.msc += 1
            batch.append(_quote(symbol, mid, self.msc))
        for quote in batch:
            self.market[quote.symbol] = quote
        for state in self.states.values():
            figures = state.apply_quotes(batch)
            if figures is not None:
                assert figures == state.figures()
                self._publish(figures)

    def deal(self, login: int, action: str, symbol: str, volume: float, amount: float) -> None:
        state = self.states[login]
        self.ticket += 1
        self.msc += 1
        quote = self.market[symbol]
        hedging = self.snapshots[login].margin_mode is MarginMode.HEDGING
        positions = state.positions()
        if action == "money":
            # credit only grows here: taking back more credit than given is a rejection, tested apart
            kind = DealKind.CREDIT if amount > 0 and self.rng.random() < 0.3 else DealKind.BALANCE
            deal = Deal(self.ticket, login, kind, self.msc, amount=amount)
        elif action == "close" and positions:
            position = self.rng.choice(positions)
            close_volume = min(volume, position.volume)
            buy = position.side is Side.SELL
            price = self.market[position.symbol].ask if buy else self.market[position.symbol].bid
            deal = Deal(
                self.ticket,
                login,
                DealKind.BUY if buy else DealKind.SELL,
                self.msc,
                entry=DealEntry.OUT,
                symbol=position.symbol,
                volume=close_volume,
                price=price,
                position_id=position.ticket,
                profit=state.close_profit(position.ticket, close_volume, price),
                commission=-round(close_volume * 3.5, 2),
            )
        else:
            buy = self.rng.random() < 0.5
            entry = DealEntry.IN
            profit = 0.0
            held = next((p for p in positions if p.symbol == symbol), None)
            price = quote.ask if buy else quote.bid
            if not hedging and held is not None and (held.side is Side.BUY) != buy:
                entry = DealEntry.INOUT if volume > held.volume + 1e-9 else DealEntry.OUT
                closed = min(volume, held.volume)
                profit = state.close_profit(held.ticket, closed, price)
            self.position_id += 1
            deal = Deal(
                self.ticket,
                login,
                DealKind.BUY if buy else DealKind.SELL,
                self.msc,
                entry=entry,
                symbol=symbol,
                volume=volume,
                price=price,
                position_id=self.position_id if entry is not DealEntry.OUT else held.ticket,  # type: ignore[union-attr]
                profit=profit,
                commission=-round(volume * 3.5, 2),
            )
        figures = state.apply_deal(deal)
        assert figures == state.figures()
        self._publish(figures)

    def check(self) -> None:
        for login, state in self.states.items():
            assert _rebuilt(state, self.snapshots[login], self.market).figures() == state.figures()
            assert self.latest[login] == state.figures()
        assert self.book.snapshot(top_n=5) == book_from_accounts(self.latest.values(), top_n=5)
        book = self.book.snapshot()
        accounts = list(self.latest.values())
        for field in ("balance", "credit", "equity", "profit", "margin", "free_margin"):
            float_sum = sum(getattr(f, field) * f.usd_rate for f in accounts)
            assert abs(getattr(book, field) - float_sum) <= 0.005 * len(accounts) + 1e-6
        lots: dict[str, float] = {}
        for f in accounts:
            for e in f.exposure:
                lots[e.symbol] = lots.get(e.symbol, 0.0) + e.net_lots
        for e in book.exposure:
            assert abs(e.net_lots - lots[e.symbol]) < 1e-9
            assert (
                e.net_lots == e.a_net_lots + e.b_net_lots
                or abs(e.net_lots - e.a_net_lots - e.b_net_lots) < 1e-9
            )
        assert all(abs(v) < 1e-9 for s, v in lots.items() if s not in {e.symbol for e in book.exposure})


_accounts = st.lists(
    st.builds(
        AccountSnapshot,
        login=st.just(0),
        currency=st.sampled_from(["USD", "EUR"]),
        leverage=st.sampled_from([30, 100, 500]),
        balance=st.sampled_from([500.0, 5_000.0, 50_000.0]),
        margin_mode=st.sampled_from(list(MarginMode)),
        hedged_margin_larger_leg=st.booleans(),
        book=st.sampled_from(["A", "B"]),
        last_deal_ticket=st.just(1000),
    ),
    min_size=1,
    max_size=3,
)
_steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("quotes"),
            st.lists(st.sampled_from(sorted(MIDS)), min_size=1, max_size=4),
            st.lists(st.floats(-0.03, 0.03), min_size=4, max_size=4),
        ),
        st.tuples(
            st.just("deal"),
            st.integers(0, 2),
            st.sampled_from(["open", "open", "close", "money"]),
            st.sampled_from(sorted(MIDS)),
            st.sampled_from(VOLUMES),
            st.sampled_from([-300.0, -50.0, 100.0, 2000.0]),
        ),
    ),
    max_size=40,
)


def _apply(harness: _Harness, logins: list[int], step: tuple) -> None:
    """Feed one drawn step (a quote move or a deal on one of `logins`) to the harness."""
    if step[0] == "quotes":
        harness.quotes(step[1], step[2])
    else:
        _, who, action, symbol, volume, amount = step
        harness.deal(logins[who % len(logins)], action, symbol, volume, amount)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accounts=_accounts, steps=_steps, seed=st.integers(0, 2**16))
def test_incremental_equals_from_scratch(
    accounts: list[AccountSnapshot], steps: list[tuple], seed: int
) -> None:
    accounts = [replace(a, login=100 + i) for i, a in enumerate(accounts)]
    harness = _Harness(random.Random(seed), accounts)
    logins = [a.login for a in accounts]
    for step in steps:
        _apply(harness, logins, step)
        harness.check()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accounts=_accounts, steps=_steps, seed=st.integers(0, 2**16), cut=st.integers(0, 40))
def test_a_checkpointed_account_goes_on_exactly(
    accounts: list[AccountSnapshot], steps: list[tuple], seed: int, cut: int
) -> None:
    """Pickled mid-stream (as a host checkpoints it, its caches left out and rebuilt on load) and
    fed the rest, every account still equals the from-scratch figures after every step."""
    import pickle

    accounts = [replace(a, login=100 + i) for i, a in enumerate(accounts)]
    harness = _Harness(random.Random(seed), accounts)
    logins = [a.login for a in accounts]
    for n, step in enumerate(steps):
        if n == cut:  # the market travels with the states, as a host's board does in a checkpoint
            harness.market, harness.states = pickle.loads(pickle.dumps((harness.market, harness.states)))  # noqa: S301
        _apply(harness, logins, step)
        harness.check()


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["deal", "quote"]), st.sampled_from(sorted(MIDS)), st.sampled_from(VOLUMES)
        ),
        max_size=15,
    ),
    bad=st.sampled_from(["duplicate", "nan_price", "zero_volume", "unknown_position", "unknown_symbol"]),
)
def test_rejected_events_leave_the_state_unchanged(steps: list[tuple[str, str, float]], bad: str) -> None:
    import pickle

    harness = _Harness(random.Random(1), [AccountSnapshot(login=5, balance=10_000.0, last_deal_ticket=1000)])
    for kind, symbol, volume in steps:
        if kind == "deal":
            harness.deal(5, "open", symbol, volume, 0.0)
        else:
            harness.quotes([symbol], [0.01])
    state = harness.states[5]
    before = pickle.dumps(state)
    last = state.last_deal_ticket
    deals = {
        "duplicate": Deal(last, 5, DealKind.BALANCE, 1, amount=1.0),
        "nan_price": Deal(last + 1, 5, DealKind.BUY, 1, symbol="EURUSD", volume=1.0, price=float("nan")),
        "zero_volume": Deal(last + 1, 5, DealKind.BUY, 1, symbol="EURUSD", volume=0.0, price=1.1),
        "unknown_position": Deal(
            last + 1,
            5,
            DealKind.SELL,
            1,
            entry=DealEntry.OUT,
            symbol="EURUSD",
            volume=1.0,
            price=1.1,
            position_id=999_999,
        ),
        "unknown_symbol": Deal(last + 1, 5, DealKind.BUY, 1, symbol="NOPE", volume=1.0, price=1.1),
    }
    try:
        state.apply_deal(deals[bad])
    except RejectedEvent:
        pass
    else:
        raise AssertionError(f"{bad} was accepted")
    assert pickle.dumps(state) == before
