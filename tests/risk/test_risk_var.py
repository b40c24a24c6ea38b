"""VaR of the B-book (veles/risk/var.py) against figures worked out by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from veles.risk.var import (
    VarInputError,
    backtest,
    chi2_1_survival,
    historical_var,
    kupiec,
    scenario_matrix,
    tail_rank,
    value_at_risk,
)

# Daily simple returns in percent of three symbols over 20 days, and the broker's USD exposure.
R_A = [1, -2, 0.5, 3, -1, 0, 2, -3, 1, -0.5, 0.5, -1.5, 2, -2.5, 1, 0, -1, 1.5, -0.5, 0.5]
R_B = [0.5, -1, 0, 2, 1, -1, 1, -2, 0, 0.5, -0.5, 1, 1, -1, 0, 0.5, -0.5, 1, 0, -1]
R_C = [2, -3, 1, 0, -2, 1, 0, -4, 2, 1, 0, -1, 1, -2, 0, 1, -1, 0, 2, -1]
EXPOSURE = {"A": 100_000.0, "B": -50_000.0, "C": 20_000.0}
# P/L of day t = 1000 rA - 500 rB + 200 rC (r in percent):
# 1150 -2100 700 2000 -1900 700 1500 -2800 1400 -550 750 -2200 1700 -2400 1000 -50 -950 1000 -100 800
# Losses, largest first: 2800 (day 8), 2400 (day 14), 2200 (day 12), 2100 (day 2), 1900 (day 5), 950 ...


def _closes(returns_pct: list[float], start: float = 100.0) -> list[float]:
    closes = [start]
    for r in returns_pct:
        closes.append(closes[-1] * (1 + r / 100))
    return closes


HISTORY = {"A": _closes(R_A), "B": _closes(R_B, 50.0), "C": _closes(R_C, 20.0)}


def _figure(method: str, confidence: float, figures: list) -> object:
    return next(f for f in figures if f.method == method and f.confidence == confidence)


def test_historical_var_is_the_hand_computed_quantile() -> None:
    figures = value_at_risk(EXPOSURE, HISTORY, (0.95, 0.99, 0.90, 0.80))
    # 20 scenarios: k = ceil(20 x 5%) = 1 and ceil(20 x 1%) = 1 -> the worst loss, 2800 (day 8).
    worst = _figure("historical", 0.95, figures)
    assert worst.var == pytest.approx(2800.0)
    assert worst.scenario == 7  # 0-based index of day 8's return
    # Day 8: A -3% on +100,000 loses 3000, B -2% on -50,000 gains 1000, C -4% on +20,000 loses 800.
    assert worst.contributions == pytest.approx({"A": 3000.0, "B": -1000.0, "C": 800.0})
    assert _figure("historical", 0.99, figures).var == pytest.approx(2800.0)
    # k = ceil(20 x 10%) = 2: the second-largest loss, 2400 (day 14).
    assert _figure("historical", 0.90, figures).var == pytest.approx(2400.0)
    # k = ceil(20 x 20%) = 4 (20 x 0.2 is 4.000000000000001 in floating point, rounded first): 2100.
    ninety = _figure("historical", 0.80, figures)
    assert ninety.var == pytest.approx(2100.0)
    assert sum(ninety.contributions.values()) == pytest.approx(2100.0)


def test_quantile_convention_is_numpy_inverted_cdf() -> None:
    symbols, weights, returns = scenario_matrix(EXPOSURE, HISTORY)
    pnl = returns @ weights
    # Where 20 x (1 - c) is not a whole number, numpy's inverted_cdf agrees exactly ...
    for confidence in (0.97, 0.93, 0.77, 0.62, 0.5):
        expected = -np.quantile(pnl, 1 - confidence, method="inverted_cdf")
        assert historical_var(symbols, weights, returns, confidence).var == pytest.approx(expected)
    # ... where it is, numpy's floating point (20 x 0.050000000000000044 > 1) moves one loss up.
    assert -np.quantile(pnl, 1 - 0.95, method="inverted_cdf") == pytest.approx(2400.0)
    assert historical_var(symbols, weights, returns, 0.95).var == pytest.approx(2800.0)
    assert tail_rank(500, 0.99) == 5  # 500 x 1% is 5.000000000000004 before rounding
    assert tail_rank(755, 0.99) == 8
    assert tail_rank(10, 0.99) == 1


def test_parametric_var_is_sigma_times_z() -> None:
    # The portfolio's sample variance w'Sw is the sample variance of the daily P/L above:
    # sum = -350, mean = -17.5; sum of squares = 44,282,500; variance = (44,282,500 - 20 x 17.5^2) / 19.
    sum_squares = sum(x * x for x in (1150, 2100, 700, 2000, 1900, 700, 1500, 2800, 1400, 550,
                                      750, 2200, 1700, 2400, 1000, 50, 950, 1000, 100, 800))  # fmt: skip
    assert sum_squares == 44_282_500
    sigma = math.sqrt((44_282_500 - 20 * 17.5**2) / 19)  # 1526.54...
    figures = value_at_risk(EXPOSURE, HISTORY)
    assert _figure("parametric", 0.95, figures).var == pytest.approx(1.6448536 * sigma, rel=1e-7)
    assert _figure("parametric", 0.99, figures).var == pytest.approx(2.3263479 * sigma, rel=1e-7)


def test_component_var_sums_to_the_total() -> None:
    rng = np.random.default_rng(5)
    closes = {s: list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))) for s in "PQRST"}
    exposure = {"P": 1e6, "Q": -2.5e5, "R": 4e5, "S": -7e5, "T": 1.2e5}
    for figure in value_at_risk(exposure, closes, (0.95, 0.975, 0.99)):
        assert figure.var > 0
        assert sum(figure.contributions.values()) == pytest.approx(figure.var, rel=1e-9)
        assert set(figure.contributions) == set(exposure)


def test_flat_book_has_zero_parametric_var() -> None:
    figures = value_at_risk({"A": 0.0}, HISTORY)
    assert _figure("parametric", 0.99, figures).var == 0.0
    assert _figure("historical", 0.99, figures).var == 0.0


def test_kupiec_known_cases() -> None:
    # 5 exceptions in 250 days at 99%: LR = -2 [245 ln 0.99 + 5 ln 0.01] + 2 [245 ln 0.98 + 5 ln 0.02]
    #   = 50.97636 - 49.01958 = 1.95678; P(chi2_1 > 1.95678) = 0.1619.
    lr, p_value = kupiec(5, 250, 0.99)
    assert lr == pytest.approx(1.95678, abs=1e-4)
    assert p_value == pytest.approx(0.1619, abs=1e-4)
    # No exception in 250 days: LR = -2 x 250 ln 0.99 = 5.02517, p = 0.02498: rejected at 5%.
    lr, p_value = kupiec(0, 250, 0.99)
    assert lr == pytest.approx(5.02517, abs=1e-4)
    assert p_value == pytest.approx(0.02498, abs=1e-4)
    # Exactly the expected count: LR 0, p 1.
    assert kupiec(25, 500, 0.95) == pytest.approx((0.0, 1.0))
    # Every day an exception: LR = -2 n ln p.
    assert kupiec(10, 10, 0.95)[0] == pytest.approx(-20 * math.log(0.05))
    # The chi-square(1) tail at the textbook 5% and 1% critical values.
    assert chi2_1_survival(3.841459) == pytest.approx(0.05, abs=1e-6)
    assert chi2_1_survival(6.634897) == pytest.approx(0.01, abs=1e-6)


def test_backtest_counts_out_of_sample_exceptions() -> None:
    # Window 10, last 10 days: at 95% k = ceil(10 x 5%) = 1, so day t is an exception when its
    # loss beats the worst loss of the 10 days before it. Days 11-18 have day 8's 2800 in their
    # window and lose at most 2400 (day 14); days 19-20 (worst before: 2400) lose 100, gain 800.
    # No exception: LR = -2 x 10 ln 0.95 = 1.02587, p = 0.3112.
    _symbols, weights, returns = scenario_matrix(EXPOSURE, HISTORY)
    pnl = returns @ weights
    assert sum(-pnl[t] > -np.min(pnl[t - 10 : t]) for t in range(10, 20)) == 0  # the same, brute force
    results = {(r.method, r.confidence): r for r in backtest(EXPOSURE, HISTORY, days=10, window=10)}
    hist = results[("historical", 0.95)]
    assert hist.exceptions == 0
    assert hist.days == 10
    assert hist.expected == pytest.approx(0.5)
    assert hist.lr == pytest.approx(1.02587, abs=1e-5)
    assert hist.p_value == pytest.approx(0.3112, abs=1e-4)
    assert set(results) == {(m, c) for m in ("historical", "parametric") for c in (0.95, 0.99)}


@pytest.mark.parametrize(
    ("exposure", "history", "field"),
    [
        ({}, HISTORY, "exposure"),
        ({"A": float("nan")}, HISTORY, "exposure.A"),
        ({"A": 1.0, "D": 1.0}, HISTORY, "history.D"),
        ({"A": 1.0}, {"A": []}, "history.A"),
        ({"A": 1.0, "B": 1.0}, {"A": HISTORY["A"], "B": HISTORY["B"][:-1]}, "history.B"),
        ({"A": 1.0}, {"A": [100.0, -1.0, 100.0]}, "history.A[1]"),
        ({"A": 1.0}, {"A": [100.0, 101.0]}, "history"),
    ],
)
def test_bad_inputs_name_the_field(exposure: dict, history: dict, field: str) -> None:
    with pytest.raises(VarInputError) as caught:
        value_at_risk(exposure, history)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_mismatched_lengths_say_both() -> None:
    with pytest.raises(VarInputError, match=r"history.B: 20 closes where history.A has 21"):
        value_at_risk({"A": 1.0, "B": 1.0}, {"A": HISTORY["A"], "B": HISTORY["B"][:-1]})


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5, 95, float("nan")])
def test_confidence_outside_the_unit_interval_is_refused(confidence: float) -> None:
    with pytest.raises(VarInputError, match=r"^confidences\[1\]: must be strictly between 0 and 1"):
        value_at_risk(EXPOSURE, HISTORY, (0.95, confidence))
    with pytest.raises(VarInputError, match=r"^confidence: "):
        kupiec(1, 10, confidence)


def test_backtest_refuses_too_short_history() -> None:
    with pytest.raises(VarInputError, match=r"^backtest_days: 15 days after a 10-day window need 25"):
        backtest(EXPOSURE, HISTORY, days=15, window=10)
    with pytest.raises(VarInputError, match=r"^window: "):
        backtest(EXPOSURE, HISTORY, days=5, window=1)
    with pytest.raises(VarInputError, match=r"^exceptions: "):
        kupiec(11, 10, 0.99)
