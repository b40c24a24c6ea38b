"""Stress test of the simulated broker's book: the `veles stress` command and `veles bench stress`.

The book is a seeded `SimulatedBroker` after its warm-up (accounts hold the positions its traders
opened), at the market's current quotes. The benchmark times one whole-book stress with cascade
(`veles.risk.stress.run_stress`) and, in the same run on the same book, one plain revaluation: an
`AccountState` built at the current quotes for every account, the cost of recomputing the book
from scratch, as the baseline of the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from veles.mt5.catalog import LISTINGS
from veles.mt5.simulator import SimulatedBroker
from veles.risk.account import AccountState
from veles.risk.events import AccountSnapshot, Quote
from veles.risk.instruments import SymbolSpec
from veles.risk.money import from_minor
from veles.risk.stress import Shock, StressResult, parse_scenario, run_stress

DEFAULT_BENCH_SCENARIO = "all -4%, USD +2% against all"
START_MSC = 1_700_000_000_000  # fixed, so a seed gives the same book on every run


def simulated_book(
    accounts: int, seed: int
) -> tuple[list[AccountSnapshot], dict[str, SymbolSpec], dict[str, Quote]]:
    """The simulated broker's accounts, symbols and current quotes."""
    broker = SimulatedBroker(accounts=accounts, seed=seed, start_msc=START_MSC)
    symbols = {spec.name: spec for spec in broker.symbols()}
    return list(broker.accounts()), symbols, dict(broker.market.quotes())


def catalog_symbols() -> dict[str, SymbolSpec]:
    """The simulated broker's symbols, known before its book is built (to check scenarios first)."""
    return {listing.spec.name: listing.spec for listing in LISTINGS}


def shocks_of(scenarios: Sequence[str], symbols: dict[str, SymbolSpec]) -> tuple[Shock, ...]:
    """Every shock of every scenario string, in order (they compose)."""
    return tuple(shock for text in scenarios for shock in parse_scenario(text, symbols))


def bench(
    accounts: int, seed: int, scenarios: Sequence[str], progress: Callable[[str], None]
) -> dict[str, object]:
    """Time one plain revaluation and one stress with cascade of the same book."""
    shocks = shocks_of(scenarios, catalog_symbols())
    progress(f"building the simulated book of {accounts} accounts (seed {seed})")
    snapshots, symbols, quotes = simulated_book(accounts, seed)
    started = time.perf_counter()
    for snapshot in snapshots:
        AccountState(snapshot, symbols, quotes).figures()
    revaluation_s = time.perf_counter() - started
    started = time.perf_counter()
    result = run_stress(snapshots, symbols, quotes, shocks)
    stress_s = time.perf_counter() - started
    return {
        "scenario": [str(s) for s in shocks],
        "accounts": len(snapshots),
        "positions": sum(len(s.positions) for s in snapshots),
        "stopped_out": len(result.stopped_out),
        "positions_closed": result.positions_closed,
        "stress_s": round(stress_s, 3),
        "revaluation_s": round(revaluation_s, 3),
        "ratio": round(stress_s / revaluation_s, 2) if revaluation_s > 0 else None,
    }


def _money(minor: dict[str, int]) -> str:
    return ", ".join(f"{from_minor(v):,.2f} {c}" for c, v in minor.items()) or "0"


def table(result: StressResult) -> str:
    """A dealer's summary: totals, then stopped-out accounts, then exposure after the shock."""
    lines = [
        f"scenario              {', '.join(str(s) for s in result.shocks)}",
        f"accounts              {len(result.accounts)}",
        f"stopped out           {len(result.stopped_out)}",
        f"positions closed      {result.positions_closed}",
        f"incomplete            {len(result.incomplete)}  (accounts lacking a quote: not stressed)",
        f"negative balances     {_money(result.absorbed())}  (what the broker absorbs)",
        f"B-book for broker     {_money(result.b_book_for_broker())}",
        f"B-book against broker {_money(result.b_book_against_broker())}",
        "",
        f"{'login':>9} {'book':>4} {'cur':>4} {'equity before':>15} {'equity after':>15}"
        f" {'closed':>6} {'absorbed':>12}",
    ]
    for a in result.stopped_out:
        lines.append(
            f"{a.login:>9} {a.book:>4} {a.currency:>4} {from_minor(a.equity_before):>15,.2f} "
            f"{from_minor(a.equity_after):>15,.2f} {len(a.closed):>6} {from_minor(a.absorbed):>12,.2f}"
        )
    lines += ["", f"{'symbol':<8} {'net lots':>12} {'USD notional':>16}  (after the shock, all books)"]
    for symbol, (lots, cents) in result.exposure_after().items():
        lines.append(f"{symbol:<8} {lots:>12,.2f} {from_minor(cents):>16,.2f}")
    return "\n".join(lines)
