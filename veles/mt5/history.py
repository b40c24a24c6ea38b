"""Seeded daily closes for the simulated trade server: years of history for VaR and backtests.

The live `Market` only knows the session it simulates; risk models that look back (historical
VaR, its backtest) need daily closes. This module draws them from a linear factor model with the
catalog's own loadings, at a daily horizon of 252 trading days a year:

* FX pairs come from per-currency log values (`CURRENCY_DRIVERS`: own volatility, a regional bloc
  factor, the equity risk-on factor), so a pair's return is base minus quote currency and the
  crosses stay consistent with the majors; EURUSD and GBPUSD share the europe bloc and the dollar.
* Other symbols load on their common factor (equity, oil, metals) with `factor_share` of their
  variance; indices move together, oil with oil.
* Metals are quoted against the dollar and trade as its alternative: their USD price also carries
  minus the dollar's own move (`METALS_DOLLAR_LOADING`), so XAUUSD rises with EURUSD and falls with
  USDJPY, as on the real market.
* One common volatility multiplier follows a log-AR(1) process normalised to a mean square of 1:
  calm and stormy stretches cluster and daily returns have fat tails (what separates historical
  from parametric VaR), while the unconditional covariance stays `target_covariance`.

The covariance the model targets is computed from the same loading matrix the draws use, so
tests measure the simulated volatility and correlation against it. Closes end at the prices
given (the simulator's current mids): the returns are drawn, then compounded backwards.
Randomness comes only from `numpy.random.default_rng(seed)`: the same seed gives the same
returns on any machine.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from veles.mt5.catalog import CURRENCY_DRIVERS, Listing
from veles.mt5.market import FACTORS

TRADING_DAYS = 252
DEFAULT_DAYS = 3 * TRADING_DAYS  # closes; at least two years is what VaR backtests need
METALS_DOLLAR_LOADING = 1.0
VOL_PERSISTENCE = 0.94  # log-volatility AR(1) coefficient per day
VOL_OF_VOL = 0.07  # daily shock to log volatility


@dataclass(frozen=True, slots=True)
class DailyHistory:
    """Daily closes, oldest first: `closes[symbol][i]` is the close of `dates[i]` (ISO dates,
    business days); the last close of every symbol is the price the history was anchored to."""

    dates: tuple[str, ...]
    closes: Mapping[str, tuple[float, ...]]


def _currencies() -> tuple[str, ...]:
    return tuple(CURRENCY_DRIVERS)


def loading_matrix(listings: Sequence[Listing]) -> np.ndarray:
    """Annualised loadings of each symbol's log return (rows, catalog order) on independent unit
    shocks (columns: factors, each currency's own shock, each non-FX symbol's own shock)."""
    currencies = _currencies()
    others = [listing for listing in listings if not listing.is_fx]
    n_shocks = len(FACTORS) + len(currencies) + len(others)
    factor_col = {name: index for index, name in enumerate(FACTORS)}
    own_col = {ccy: len(FACTORS) + index for index, ccy in enumerate(currencies)}
    ccy_rows: dict[str, np.ndarray] = {}
    for ccy, (vol, bloc, bloc_load, equity_load) in CURRENCY_DRIVERS.items():
        row = np.zeros(n_shocks)
        if bloc:
            row[factor_col[bloc]] += vol * bloc_load
        row[factor_col["equity"]] += vol * equity_load
        row[own_col[ccy]] += vol * math.sqrt(
            max(0.0, 1.0 - bloc_load * bloc_load - equity_load * equity_load)
        )
        ccy_rows[ccy] = row
    rows: list[np.ndarray] = []
    next_own = len(FACTORS) + len(currencies)
    for listing in listings:
        spec = listing.spec
        if listing.is_fx:
            rows.append(ccy_rows[spec.base_currency] - ccy_rows[spec.profit_currency])
            continue
        row = np.zeros(n_shocks)
        share = listing.factor_share
        if listing.factor:
            row[factor_col[listing.factor]] += listing.volatility * math.sqrt(share)
        row[next_own] += listing.volatility * math.sqrt(1.0 - share)
        next_own += 1
        if spec.asset_class == "metal" and spec.profit_currency == "USD":
            row = row - METALS_DOLLAR_LOADING * ccy_rows["USD"]
        rows.append(row)
    return np.vstack(rows)


def target_covariance(listings: Sequence[Listing]) -> np.ndarray:
    """Annualised covariance of log returns the model draws from (symbols in catalog order)."""
    loadings = loading_matrix(listings)
    return loadings @ loadings.T


def _business_days(end: dt.date, count: int) -> tuple[str, ...]:
    """`count` Monday-Friday dates ending on `end` (moved back to a Friday at weekends)."""
    day = end
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    dates: list[str] = []
    while len(dates) < count:
        if day.weekday() < 5:
            dates.append(day.isoformat())
        day -= dt.timedelta(days=1)
    return tuple(reversed(dates))


def daily_history(
    listings: Sequence[Listing],
    end_prices: Mapping[str, float],
    seed: int,
    days: int = DEFAULT_DAYS,
    end_date: dt.date | None = None,
) -> DailyHistory:
    """`days` daily closes per listing ending at `end_prices[symbol]` (rounded to the symbol's
    digits), dated on business days up to `end_date` (today UTC by default)."""
    if days < 2:
        raise ValueError(f"days: need at least 2 closes, got {days}")
    missing = [listing.spec.name for listing in listings if listing.spec.name not in end_prices]
    if missing:
        raise ValueError(f"end_prices: no price for {', '.join(missing)}")
    rng = np.random.default_rng([seed % 2**63, 0x48])  # its own stream, any int seed
    loadings = loading_matrix(listings) / math.sqrt(TRADING_DAYS)
    n_returns = days - 1
    shocks = rng.standard_normal((n_returns, loadings.shape[1]))
    # Common volatility regime: E[m^2] = 1 keeps the unconditional covariance on target.
    stationary_var = VOL_OF_VOL**2 / (1.0 - VOL_PERSISTENCE**2)
    log_m = np.empty(n_returns)
    level = rng.standard_normal() * math.sqrt(stationary_var)
    innovations = rng.standard_normal(n_returns) * VOL_OF_VOL
    for index in range(n_returns):
        level = VOL_PERSISTENCE * level + innovations[index]
        log_m[index] = level
    multiplier = np.exp(log_m - stationary_var)
    returns = (shocks @ loadings.T) * multiplier[:, None]  # (returns, symbols): daily log returns
    # Compound backwards from the anchor: log close[i] = log end - sum of returns after day i.
    after = np.vstack([np.cumsum(returns[::-1], axis=0)[::-1], np.zeros((1, returns.shape[1]))])
    closes: dict[str, tuple[float, ...]] = {}
    for column, listing in enumerate(listings):
        spec = listing.spec
        path = end_prices[spec.name] * np.exp(-after[:, column])
        closes[spec.name] = tuple(round(float(price), spec.digits) for price in path)
    end = end_date or dt.datetime.now(dt.UTC).date()
    return DailyHistory(dates=_business_days(end, days), closes=closes)
