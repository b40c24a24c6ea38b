"""1-day VaR of a tenant's live B-book (`veles.risk.var`) over the daily closes its engine keeps.

The broker's exposure is summed from every live account's figures at its connection's latest
quotes (the book as the engine sums it, per connection, so equal logins on two servers stay two
accounts); the history is the `daily_close` table (`actors/close_keeper.py`): the days on which
every symbol with exposure has a close, the latest `DEFAULT_DAYS` of them. Database reads and the
computation run in worker threads.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel import col, select

from models.db import tenant_session
from models.market import DailyClose
from veles.config import Settings
from veles.mt5.history import DEFAULT_DAYS
from veles.risk.account import AccountState
from veles.risk.book import book_from_accounts
from veles.risk.stress import BookPart
from veles.risk.var import backtest, broker_exposure, value_at_risk
from veles.services.stress import live_parts

BACKTEST_DAYS = 250
WINDOW = 250


class VarUnavailable(ValueError):
    """VaR cannot be measured now (a flat B-book, too little history); the message says why."""


def book_exposure(parts: Sequence[BookPart]) -> dict[str, float]:
    """The broker's USD exposure per symbol (minus its B-book clients' net notional)."""
    total: dict[str, float] = defaultdict(float)
    for part in parts:
        book = book_from_accounts(AccountState(s, part.symbols, part.quotes).figures()
                                  for s in part.snapshots)
        for symbol, usd in broker_exposure(book).items():
            total[symbol] += usd
    return {symbol: usd for symbol, usd in sorted(total.items()) if usd}


def load_closes(url: str, tenant_id: int, symbols: Sequence[str],
                days: int = DEFAULT_DAYS) -> tuple[list[date], dict[str, list[float]]]:
    """The latest `days` days on which every one of `symbols` has a stored close, oldest first.
    VarUnavailable names the symbols that have none at all."""
    by_day: dict[date, dict[str, float]] = defaultdict(dict)
    with tenant_session(url, tenant_id) as session:
        rows = session.exec(select(DailyClose).where(
            col(DailyClose.tenant_id) == tenant_id, col(DailyClose.symbol).in_(list(symbols))))
        for row in rows:
            by_day[row.day][row.symbol] = row.close
    seen = {symbol for closes in by_day.values() for symbol in closes}
    lacking = sorted(set(symbols) - seen)
    if lacking:
        raise VarUnavailable(f"no daily close is stored yet for {', '.join(lacking)}: the engine keeps one a "
                             "day from the live feed")
    complete = sorted(day for day, closes in by_day.items() if len(closes) == len(symbols))[-days:]
    return complete, {symbol: [by_day[day][symbol] for day in complete] for symbol in symbols}


def var_view(
    exposure: dict[str, float], dates: Sequence[date], closes: dict[str, list[float]]
) -> dict[str, Any]:
    """Historical and parametric VaR at 95% and 99% with each symbol's contribution, and the
    out-of-sample backtest when the history is long enough."""
    if not exposure:
        raise VarUnavailable("the B-book is flat: the broker holds no exposure to measure")
    if len(dates) < 3:
        raise VarUnavailable(f"{len(dates)} common days of closes stored; VaR needs at least 3 (the engine "
                             "keeps one a day from the live feed)")
    figures = value_at_risk(exposure, closes)
    returns = len(dates) - 1
    tests = backtest(exposure, closes, BACKTEST_DAYS, WINDOW) if returns >= BACKTEST_DAYS + WINDOW else []
    return {
        "history": {"days": len(dates), "first": dates[0].isoformat(), "last": dates[-1].isoformat()},
        "exposure_usd": {symbol: round(value, 2) for symbol, value in exposure.items()},
        "var": [
            {"method": f.method, "confidence": f.confidence, "var_usd": round(f.var, 2),
             "scenario_date": dates[f.scenario + 1].isoformat() if f.scenario is not None else None,
             "contributions_usd": {s: round(v, 2) for s, v in f.contributions.items()}}
            for f in figures
        ],
        "backtest": [
            {"method": t.method, "confidence": t.confidence, "days": t.days, "window": WINDOW,
             "exceptions": t.exceptions, "expected": round(t.expected, 2), "lr": round(t.lr, 4),
             "p_value": round(t.p_value, 4)}
            for t in tests
        ],
    }


async def var_live(settings: Settings, tenant_id: int) -> dict[str, Any]:
    """VaR of the tenant's live B-book now."""
    parts = await live_parts(settings, tenant_id)
    exposure = await asyncio.to_thread(book_exposure, parts)
    if not exposure:
        raise VarUnavailable("the B-book is flat: the broker holds no exposure to measure")
    dates, closes = await asyncio.to_thread(load_closes, settings.database_url, tenant_id, list(exposure))
    return await asyncio.to_thread(var_view, exposure, dates, closes)
