"""Simulated prices are sane, deterministic and alive."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from veles.mt5.catalog import LISTINGS, LISTINGS_BY_NAME
from veles.mt5.market import Market, Regime

START = 1_710_000_000_000


def run(seed: int, steps: int, volatility: float = 1.0) -> list[tuple]:
    market = Market(LISTINGS, random.Random(seed), START, volatility=volatility)
    return [market.step(0.25) for _ in range(steps)]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32), volatility=st.sampled_from([0.5, 1.0, 5.0]))
def test_quotes_are_finite_positive_uncrossed_and_on_the_tick_grid(seed: int, volatility: float) -> None:
    for quotes in run(seed, 600, volatility):
        for q in quotes:
            spec = LISTINGS_BY_NAME[q.symbol].spec
            assert math.isfinite(q.bid)
            assert math.isfinite(q.ask)
            assert 0 < q.bid < q.ask
            for price in (q.bid, q.ask):
                assert round(price, spec.digits) == price
                ticks = price / spec.tick_size
                assert math.isclose(ticks, round(ticks), abs_tol=1e-6)


def test_same_seed_same_prices_and_different_seed_different_prices() -> None:
    assert run(3, 400) == run(3, 400)
    assert run(3, 400) != run(4, 400)


def test_only_some_symbols_tick_each_step_and_time_moves_by_the_step() -> None:
    market = Market(LISTINGS, random.Random(1), START)
    counts = []
    for i in range(1, 401):
        quotes = market.step(0.25)
        assert market.now_msc == START + 250 * i
        assert all(market.now_msc - 250 < q.time_msc <= market.now_msc for q in quotes)
        counts.append(len(quotes))
    assert 0 < sum(counts) / len(counts) < len(LISTINGS) / 2


def test_regimes_switch_and_gaps_happen_within_a_quarter_of_an_hour() -> None:
    market = Market(LISTINGS, random.Random(11), START)
    regimes, jumps = set(), 0
    for _ in range(4 * 900):
        market.step(0.25)
        regimes.add(market.regime)
        jumps += len(market.jumps)
        for jump in market.jumps:
            assert jump.before.symbol == jump.after.symbol == jump.symbol
            assert jump.direction == (1 if jump.after.bid > jump.before.bid else -1)
    assert regimes == {Regime.CALM, Regime.VOLATILE}
    assert jumps > 0


def test_spreads_widen_at_rollover() -> None:
    rollover_start = (START // 86_400_000) * 86_400_000 + (20 * 60 + 58) * 60_000  # 20:58 UTC that day
    calm = Market(LISTINGS, random.Random(5), rollover_start - 3_600_000, news_every=1e12)
    rollover = Market(LISTINGS, random.Random(5), rollover_start, news_every=1e12)

    def mean_spread(market: Market) -> float:
        spreads = [q.ask - q.bid for _ in range(400) for q in market.step(0.25) if q.symbol == "EURUSD"]
        return sum(spreads) / len(spreads)

    assert mean_spread(rollover) > 2 * mean_spread(calm)


def test_crosses_stay_consistent_with_majors() -> None:
    market = Market(LISTINGS, random.Random(2), START, volatility=3.0)
    for _ in range(4 * 600):
        market.step(0.25)
    mid = {n: (q.bid + q.ask) / 2 for n, q in market.quotes().items()}
    assert math.isclose(mid["EURJPY"], mid["EURUSD"] * mid["USDJPY"], rel_tol=5e-4)
    assert math.isclose(mid["GBPCHF"], mid["GBPUSD"] * mid["USDCHF"], rel_tol=5e-4)
