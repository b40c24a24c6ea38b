"""Benchmark of the risk core: incremental price updates versus naive full recomputation.

For each book size (total open positions) we build a seeded synthetic broker - accounts of ~10
positions over a mix of Forex, metal, index and futures symbols, in USD and EUR - then feed single
quotes of random symbols:

* incremental: each quote goes only to the accounts whose `symbols_needed` contain it
  (`AccountState.apply_quotes`), and each changed account replaces its contribution in the `Book`;
* naive: every account is rebuilt from its snapshot with the current quotes and the book is
  re-summed from scratch (`book_from_accounts`), as a system without incremental state would do.

Both run in the same process on the same book, one after the other, each for a fixed time budget.
Incremental cost is proportional to the accounts a quote changes (those holding the symbol or
using it for a conversion), never to the untouched positions: the report shows the cost per
changed account, which stays flat as the book grows, while the naive cost grows with the whole
book. This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from veles.risk.account import AccountState
from veles.risk.book import Book, book_from_accounts
from veles.risk.events import AccountSnapshot, MarginMode, Position, Quote, Side
from veles.risk.instruments import CalcMode, SymbolSpec

DEFAULT_SIZES = (1_000, 10_000, 100_000)
POSITIONS_PER_ACCOUNT = 10
_MAX_TICKS = 50_000  # more than any path applies within its time budget on current hardware


def _fx(name: str, digits: int = 5) -> SymbolSpec:
    return SymbolSpec(
        name,
        base_currency=name[:3],
        profit_currency=name[3:],
        digits=digits,
        tick_size=10.0**-digits,
    )


SYMBOLS: dict[str, SymbolSpec] = {
    spec.name: spec
    for spec in (
        _fx("EURUSD"),
        _fx("GBPUSD"),
        _fx("AUDUSD"),
        _fx("NZDUSD"),
        _fx("USDJPY", 3),
        _fx("USDCHF"),
        _fx("USDCAD"),
        _fx("EURGBP"),
        _fx("EURJPY", 3),
        _fx("GBPJPY", 3),
        SymbolSpec(
            "XAUUSD",
            CalcMode.CFD_LEVERAGE,
            100.0,
            2,
            0.01,
            1.0,
            "XAU",
            "USD",
            "USD",
            margin_hedged=100.0,
            asset_class="metal",
        ),
        SymbolSpec(
            "US500",
            CalcMode.CFD_INDEX,
            1.0,
            1,
            0.1,
            0.1,
            "USD",
            "USD",
            "USD",
            margin_hedged=1.0,
            asset_class="index",
        ),
        SymbolSpec(
            "DE40",
            CalcMode.CFD,
            1.0,
            1,
            0.1,
            0.1,
            "EUR",
            "EUR",
            "EUR",
            margin_hedged=1.0,
            asset_class="index",
        ),
        SymbolSpec(
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
            margin_hedged=2500.0,
            asset_class="energy",
        ),
    )
}

PRICES = {
    "EURUSD": 1.085,
    "GBPUSD": 1.27,
    "AUDUSD": 0.66,
    "NZDUSD": 0.61,
    "USDJPY": 150.0,
    "USDCHF": 0.88,
    "USDCAD": 1.36,
    "EURGBP": 0.855,
    "EURJPY": 162.7,
    "GBPJPY": 190.5,
    "XAUUSD": 2300.0,
    "US500": 5200.0,
    "DE40": 18000.0,
    "BRENT": 82.0,
}


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One book size: updates per second both ways and what an incremental update touched."""

    positions: int
    accounts: int
    incremental_per_s: float
    naive_per_s: float
    accounts_per_update: float  # mean accounts a price update changed (holders + conversion users)
    us_per_account_update: float  # AccountState.apply_quotes + Book.apply, per changed account

    @property
    def ratio(self) -> float:
        return self.incremental_per_s / self.naive_per_s


def _quote(rng: random.Random, name: str, around: float) -> Quote:
    spec = SYMBOLS[name]
    mid = around * (1.0 + rng.uniform(-0.002, 0.002))
    half = spec.tick_size * 5
    return Quote(name, round(mid - half, spec.digits), round(mid + half, spec.digits))


def build_book(positions: int, seed: int) -> tuple[list[AccountSnapshot], dict[str, Quote]]:
    """A synthetic broker of `positions` open positions, ~10 per account, deterministic per seed."""
    rng = random.Random(seed)
    quotes = {name: _quote(rng, name, price) for name, price in PRICES.items()}
    names = list(SYMBOLS)
    snapshots = []
    ticket = 0
    login = 1000
    while ticket < positions:
        count = min(POSITIONS_PER_ACCOUNT, positions - ticket)
        held = []
        for _ in range(count):
            ticket += 1
            name = rng.choice(names)
            buy = rng.random() < 0.5
            quote = quotes[name]
            held.append(
                Position(
                    ticket,
                    name,
                    Side.BUY if buy else Side.SELL,
                    round(rng.choice((0.01, 0.1, 0.5, 1.0, 2.0)), 2),
                    (quote.ask if buy else quote.bid) * (1.0 + rng.uniform(-0.01, 0.01)),
                )
            )
        login += 1
        snapshots.append(
            AccountSnapshot(
                login=login,
                currency="EUR" if rng.random() < 0.2 else "USD",
                leverage=rng.choice((30, 100, 500)),
                balance=round(rng.uniform(2_000, 200_000), 2),
                margin_mode=MarginMode.HEDGING,
                book="A" if rng.random() < 0.3 else "B",
                positions=tuple(held),
            )
        )
    return snapshots, quotes


def _incremental(
    states: Sequence[AccountState], book: Book, ticks: Sequence[Quote], budget_s: float
) -> tuple[int, float, int]:
    """Apply ticks until the budget is spent: (updates applied, seconds, account updates)."""
    users: dict[str, list[AccountState]] = {}
    for state in states:
        for name in state.symbols_needed:
            users.setdefault(name, []).append(state)
    done = changed = 0
    start = time.process_time()
    deadline = start + budget_s
    for quote in ticks:
        batch = (quote,)
        for state in users.get(quote.symbol, ()):
            figures = state.apply_quotes(batch)
            if figures is not None:
                book.apply(figures)
                changed += 1
        done += 1
        if time.process_time() >= deadline:
            break
    return done, time.process_time() - start, changed


def _naive(
    snapshots: Sequence[AccountSnapshot], quotes: dict[str, Quote], ticks: Sequence[Quote], budget_s: float
) -> tuple[int, float]:
    """Rebuild every account and the book from scratch per tick until the budget is spent."""
    done = 0
    start = time.process_time()
    deadline = start + budget_s
    for quote in ticks:
        quotes[quote.symbol] = quote
        book_from_accounts(AccountState(snapshot, SYMBOLS, quotes).figures() for snapshot in snapshots)
        done += 1
        if time.process_time() >= deadline:
            break
    return done, time.process_time() - start


def run(
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    seconds: float = 4.0,
    seed: int = 7,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Measure each book size, spending about `seconds` on each of the two paths."""
    results = []
    for size in sizes:
        progress(f"{size:>7} positions: building the book")
        snapshots, quotes = build_book(size, seed)
        rng = random.Random(seed + size)
        names = list(SYMBOLS)
        ticks = [
            replace(_quote(rng, name, PRICES[name]), time_msc=i + 1)
            for i, name in enumerate(rng.choice(names) for _ in range(_MAX_TICKS))
        ]
        states = [AccountState(snapshot, SYMBOLS, quotes) for snapshot in snapshots]
        book = Book()
        for state in states:
            book.apply(state.figures())
        progress(f"{size:>7} positions: incremental updates ({seconds:.0f} s)")
        done, elapsed, changed = _incremental(states, book, ticks, seconds)
        progress(f"{size:>7} positions: naive full recomputation ({seconds:.0f} s)")
        naive_done, naive_elapsed = _naive(snapshots, dict(quotes), ticks, seconds)
        results.append(
            BenchResult(
                positions=size,
                accounts=len(snapshots),
                incremental_per_s=done / elapsed,
                naive_per_s=naive_done / naive_elapsed,
                accounts_per_update=changed / done,
                us_per_account_update=elapsed / max(changed, 1) * 1e6,
            )
        )
    return results


def report(results: Sequence[BenchResult]) -> str:
    """A plain-text table of the results."""
    lines = [
        f"{'positions':>9} {'accounts':>8} {'incremental/s':>14} {'naive/s':>10} {'ratio':>8}"
        f" {'accounts/update':>16} {'us/account update':>18}"
    ]
    for r in results:
        lines.append(
            f"{r.positions:>9} {r.accounts:>8} {r.incremental_per_s:>14.1f} {r.naive_per_s:>10.2f}"
            f" {r.ratio:>7.0f}x {r.accounts_per_update:>16.1f} {r.us_per_account_update:>18.2f}"
        )
    return "\n".join(lines)
