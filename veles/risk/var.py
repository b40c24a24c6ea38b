"""1-day Value at Risk of the B-book's net exposure: historical simulation, variance-covariance,
and a rolling out-of-sample backtest with Kupiec's proportion-of-failures test. No I/O.

The broker is the counterparty of its B-book clients, so its position in a symbol is minus the
clients' net B-book USD notional (`BookExposure.b_usd_notional`). A day's P/L scenario applies each
symbol's simple daily return of the history to today's position: P/L_t = sum_i w_i * r_i,t, where
w_i is the broker's USD exposure and r_i,t = close_t / close_t-1 - 1. This is the first-order P/L
of the position (a non-USD quoted symbol's profit also moves with its currency, a second-order
effect on the floating profit, left out).

Quantile convention (historical): the T scenarios' P/L form an empirical distribution F and VaR at
confidence c is minus its lower (1 - c) quantile, inf{x : F(x) >= 1 - c}: with k = ceil(T (1 - c))
(computed on T (1 - c) rounded to 9 decimals, so 500 x 1% is 5, not 6), VaR is the k-th largest
loss. It is numpy's quantile(method="inverted_cdf") without its floating-point surprise (given
1 - 0.95 = 0.050000000000000044, numpy takes 20 x that > 1 to the second-largest loss). Losses
strictly larger than VaR occur on k - 1 < T (1 - c) days. No interpolation: VaR is a loss that happened.

Variance-covariance: VaR = z_c * sigma_p with sigma_p^2 = w' S w, S the sample covariance of the
returns (ddof = 1) and the mean P/L taken as zero (means of daily returns are noise at this
horizon). Component VaR_i = z_c * w_i (S w)_i / sigma_p: the components sum to the total (Euler).
For historical VaR the contribution of a symbol is its P/L in the scenario that sets the VaR (the
k-th worst day): they sum to minus the VaR exactly.

The backtest keeps today's exposure, estimates VaR on the `window` days before each of the last
`days` days and counts the days whose loss exceeds it (out of sample). Kupiec's likelihood ratio
LR = -2 ln[(1-p)^(n-x) p^x / ((1-x/n)^(n-x) (x/n)^x)] is chi-square with 1 degree of freedom under
a correct model; its p-value P(chi2_1 > LR) = erfc(sqrt(LR / 2)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from veles.risk.book import BookFigures


class VarInputError(ValueError):
    """Input VaR cannot be computed from; `field` names it, nothing was computed."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VarFigure:
    """VaR at one confidence by one method: a positive loss in USD, and each symbol's share."""

    method: str  # "historical" or "parametric"
    confidence: float
    var: float
    contributions: Mapping[str, float]  # sums to `var`
    scenario: int | None = None  # historical: index of the return (day) that sets the VaR


@dataclass(frozen=True, slots=True)
class KupiecTest:
    """Out-of-sample exceptions of one VaR model against Kupiec's proportion-of-failures test."""

    method: str
    confidence: float
    days: int
    exceptions: int
    expected: float
    lr: float
    p_value: float


def broker_exposure(book: BookFigures) -> dict[str, float]:
    """The broker's USD exposure per symbol from its B-book: minus the clients' net notional."""
    return {e.symbol: -e.b_usd_notional for e in book.exposure if e.b_usd_notional}


def _check_confidence(confidence: float, field: str = "confidence") -> None:
    if not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise VarInputError(field, f"must be strictly between 0 and 1, got {confidence!r}")


def scenario_matrix(
    exposure: Mapping[str, float], closes: Mapping[str, Sequence[float]]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Validated inputs as arrays: the symbols (exposure order), their exposure w and the simple
    daily returns (days x symbols). Raises VarInputError naming the bad field."""
    if not exposure:
        raise VarInputError("exposure", "empty: no position to measure")
    symbols = list(exposure)
    weights = np.empty(len(symbols))
    for index, symbol in enumerate(symbols):
        value = exposure[symbol]
        if not math.isfinite(value):
            raise VarInputError(f"exposure.{symbol}", f"not a finite number: {value!r}")
        weights[index] = value
    length: int | None = None
    first = ""
    columns = []
    for symbol in symbols:
        if symbol not in closes:
            raise VarInputError(f"history.{symbol}", "no daily closes for a symbol with exposure")
        series = np.asarray(closes[symbol], dtype=float)
        if series.ndim != 1 or series.size == 0:
            raise VarInputError(f"history.{symbol}", "empty: no daily closes")
        if length is None:
            length, first = series.size, symbol
        elif series.size != length:
            raise VarInputError(
                f"history.{symbol}",
                f"{series.size} closes where history.{first} has {length}: lengths must match",
            )
        bad = np.flatnonzero(~np.isfinite(series) | (series <= 0.0))
        if bad.size:
            raise VarInputError(
                f"history.{symbol}[{int(bad[0])}]", f"close must be a positive number, got {series[bad[0]]!r}"
            )
        columns.append(series)
    assert length is not None
    if length < 3:
        raise VarInputError("history", f"{length} closes give fewer than 2 daily returns")
    prices = np.column_stack(columns)
    return symbols, weights, prices[1:] / prices[:-1] - 1.0


def tail_rank(scenarios: int, confidence: float) -> int:
    """k of the convention: VaR is the k-th largest loss of `scenarios` (see module docstring)."""
    _check_confidence(confidence)
    if scenarios < 1:
        raise VarInputError("history", "no scenario")
    return max(1, math.ceil(round(scenarios * (1.0 - confidence), 9)))


def historical_var(
    symbols: Sequence[str], weights: np.ndarray, returns: np.ndarray, confidence: float
) -> VarFigure:
    """Historical-simulation VaR of today's exposure over every return row."""
    k = tail_rank(returns.shape[0], confidence)
    per_symbol = returns * weights  # P/L per day and symbol
    pnl = per_symbol.sum(axis=1)
    order = np.argsort(pnl, kind="stable")  # worst day first
    day = int(order[k - 1])
    contributions = {symbol: float(-per_symbol[day, i]) for i, symbol in enumerate(symbols)}
    return VarFigure("historical", confidence, float(-pnl[day]), contributions, scenario=day)


def parametric_var(
    symbols: Sequence[str], weights: np.ndarray, returns: np.ndarray, confidence: float
) -> VarFigure:
    """Variance-covariance VaR (zero mean, sample covariance) with Euler component VaR."""
    _check_confidence(confidence)
    z = NormalDist().inv_cdf(confidence)
    cov = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    marginal = cov @ weights
    sigma = math.sqrt(max(0.0, float(weights @ marginal)))
    if sigma == 0.0:
        return VarFigure("parametric", confidence, 0.0, dict.fromkeys(symbols, 0.0))
    contributions = {symbol: float(z * weights[i] * marginal[i] / sigma) for i, symbol in enumerate(symbols)}
    return VarFigure("parametric", confidence, z * sigma, contributions)


def value_at_risk(
    exposure: Mapping[str, float],
    closes: Mapping[str, Sequence[float]],
    confidences: Sequence[float] = (0.95, 0.99),
) -> list[VarFigure]:
    """Historical and parametric 1-day VaR of `exposure` (USD per symbol, the broker's side) over
    the daily `closes` (oldest first, equal lengths), at each confidence."""
    for index, confidence in enumerate(confidences):
        _check_confidence(confidence, f"confidences[{index}]")
    symbols, weights, returns = scenario_matrix(exposure, closes)
    figures = [historical_var(symbols, weights, returns, c) for c in confidences]
    figures += [parametric_var(symbols, weights, returns, c) for c in confidences]
    return figures


def chi2_1_survival(x: float) -> float:
    """P(X > x) for X chi-square with one degree of freedom: X = Z^2, so erfc(sqrt(x / 2))."""
    return math.erfc(math.sqrt(max(0.0, x) / 2.0))


def kupiec(exceptions: int, days: int, confidence: float) -> tuple[float, float]:
    """Kupiec's proportion-of-failures likelihood ratio and its p-value for `exceptions` days
    out of `days` where the loss exceeded VaR at `confidence`."""
    _check_confidence(confidence)
    if days < 1:
        raise VarInputError("days", f"need at least one backtest day, got {days}")
    if not 0 <= exceptions <= days:
        raise VarInputError("exceptions", f"must be between 0 and days ({days}), got {exceptions}")
    p = 1.0 - confidence
    x, n = exceptions, days
    observed = x / n

    def log_likelihood(rate: float) -> float:
        value = 0.0
        if n - x:
            value += (n - x) * math.log(1.0 - rate)
        if x:
            value += x * math.log(rate)
        return value

    lr = max(0.0, -2.0 * (log_likelihood(p) - log_likelihood(observed)))
    return lr, chi2_1_survival(lr)


def backtest(
    exposure: Mapping[str, float],
    closes: Mapping[str, Sequence[float]],
    days: int,
    window: int,
    confidences: Sequence[float] = (0.95, 0.99),
) -> list[KupiecTest]:
    """Rolling out-of-sample backtest of both methods over the last `days` daily returns, each
    day's VaR estimated from the `window` returns before it, with today's exposure."""
    for index, confidence in enumerate(confidences):
        _check_confidence(confidence, f"confidences[{index}]")
    symbols, weights, returns = scenario_matrix(exposure, closes)
    if days < 1:
        raise VarInputError("backtest_days", f"must be at least 1, got {days}")
    if window < 2:
        raise VarInputError("window", f"must be at least 2 returns, got {window}")
    if days + window > returns.shape[0]:
        raise VarInputError(
            "backtest_days",
            f"{days} days after a {window}-day window need {days + window} daily returns, "
            f"the history has {returns.shape[0]}",
        )
    pnl = returns @ weights
    start = returns.shape[0] - days
    counts = {(m, c): 0 for m in ("historical", "parametric") for c in confidences}
    for t in range(start, returns.shape[0]):
        sample = returns[t - window : t]
        for c in confidences:
            for figure in (
                historical_var(symbols, weights, sample, c),
                parametric_var(symbols, weights, sample, c),
            ):
                if -pnl[t] > figure.var:
                    counts[(figure.method, c)] += 1
    results = []
    for (method, c), x in counts.items():
        lr, p_value = kupiec(x, days, c)
        results.append(KupiecTest(method, c, days, x, days * (1.0 - c), lr, p_value))
    return results
