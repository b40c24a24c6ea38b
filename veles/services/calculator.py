"""The what-if calculator as a service: an account snapshot in, MT5 margin and profit out.

The risk core (`veles.risk.calculator`) does the work and validates strictly; this module gives
callers typed results instead of dicts, so the API documents them and the portal can rely on
their shape. `CalcError` (a ValueError with `field`) passes through unchanged: it already names
the offending field, e.g. `positions[0].volume`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from actors.tenant_host import TenantNotHosted
from veles.config import Settings
from veles.risk.account import AccountState
from veles.risk.calculator import CalcError, CalcInput, calculate
from veles.risk.events import AccountSnapshot, Quote
from veles.risk.instruments import SymbolSpec
from veles.risk.stress import BookPart
from veles.services.ray_runtime import tenant_actor

__all__ = ["CalcInput", "WhatIf", "what_if"]

MAX_MAGNITUDE = 1e15  # beyond any balance, price, volume or rate an MT5 account carries


class AccountResult(BaseModel):
    """The account's totals after the what-if."""

    currency: str
    leverage: int
    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    free_margin: float
    margin_level: float | None
    state: str


class PositionResult(BaseModel):
    """One position's own margin and floating profit."""

    ticket: int
    symbol: str
    type: str
    volume: float
    price_open: float
    price_current: float
    margin: float
    margin_rate: float  # margin currency -> deposit currency: fixed at opening, or the current one
    profit: float
    swap: float
    commission: float


class WhatIf(BaseModel):
    """The calculator's answer."""

    account: AccountResult
    positions: list[PositionResult]


def _check_magnitudes(value: Any, path: str) -> None:
    """Refuse numbers no account holds (e.g. a balance of 1e307, which overflows the integer
    minor units the risk core computes in), naming the field as the risk core does."""
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        raise CalcError(path, f"must be between -{MAX_MAGNITUDE:g} and {MAX_MAGNITUDE:g}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_magnitudes(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_magnitudes(item, f"{path}[{index}]")


def what_if(document: CalcInput | Mapping[str, Any]) -> WhatIf:
    """Figures of one account snapshot (see `veles.risk.calculator.calculate`)."""
    data = document.model_dump(mode="json") if isinstance(document, CalcInput) else document
    _check_magnitudes(data, "")
    return WhatIf.model_validate(calculate(data))


# -- a live account as a what-if document -----------------------------------------------------------

class AccountNotFound(LookupError):
    """The tenant has no such login (another tenant's logins are answered the same way)."""


def document_of(snapshot: AccountSnapshot, symbols: Mapping[str, SymbolSpec],
                quotes: Mapping[str, Quote]) -> dict[str, Any]:
    """The calculator document of an account as it stands: its settings, its open positions (with
    the margin rates MT5 fixed at opening), the specs of the symbols it holds and the quotes its
    figures need (held symbols and conversion pairs), so the calculator gives the engine's figures
    before anything is changed."""
    needed = AccountState(snapshot, symbols, quotes).symbols_needed | {p.symbol for p in snapshot.positions}
    held = {p.symbol for p in snapshot.positions}
    return {
        "account": {
            "login": snapshot.login, "currency": snapshot.currency, "leverage": snapshot.leverage,
            "balance": snapshot.balance, "credit": snapshot.credit, "margin_mode": snapshot.margin_mode.value,
            "hedged_margin_larger_leg": snapshot.hedged_margin_larger_leg,
            "margin_call": snapshot.margin_call, "stop_out": snapshot.stop_out,
            "stopout_mode": snapshot.stopout_mode.value,
        },
        "symbols": {name: _symbol_in(symbols[name]) for name in sorted(held | needed) if name in symbols},
        "quotes": {name: {"bid": quotes[name].bid, "ask": quotes[name].ask} for name in sorted(needed)
                   if name in quotes},
        "positions": [
            {"ticket": p.ticket, "symbol": p.symbol, "type": p.side.value, "volume": p.volume,
             "price_open": p.price_open, "swap": p.swap, "commission": p.commission,
             "margin_rate": p.margin_rate}
            for p in sorted(snapshot.positions, key=lambda p: p.ticket)
        ],
    }


def _symbol_in(spec: SymbolSpec) -> dict[str, Any]:
    """A spec in the calculator's terms. A CFD's base "currency" is its own name on MT5 servers
    (US500), which the calculator does not take: its margin currency is what counts there."""
    base = spec.base_currency if len(spec.base_currency) == 3 and spec.base_currency.isalpha() else ""
    return {
        "calc_mode": spec.calc_mode.value, "contract_size": spec.contract_size,
        "base_currency": base, "margin_currency": spec.margin_currency or spec.base_currency,
        "profit_currency": spec.profit_currency, "digits": spec.digits, "tick_size": spec.tick_size,
        "tick_value": spec.tick_value, "margin_rate": 1.0, "buy_margin_rate": spec.buy_rates.initial,
        "sell_margin_rate": spec.sell_rates.initial, "initial_margin": spec.margin_initial,
        "maintenance_margin": spec.margin_maintenance, "hedged_margin": spec.margin_hedged,
    }


def _number(text: object, field: str, positive: bool) -> float:
    try:
        value = float(str(text).replace(",", "").strip())
    except ValueError:
        raise CalcError(field, f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise CalcError(field, "must be > 0" if positive else "must be >= 0 (0 closes the position)")
    return value


def apply_edits(document: Mapping[str, Any], edits: Mapping[str, str]) -> dict[str, Any]:
    """The document with the dealer's changes: `volume-<ticket>` (0 closes the position),
    `bid-<symbol>` and `ask-<symbol>`. CalcError names a bad entry (by ticket or symbol)."""
    result = json.loads(json.dumps(document))
    positions = []
    for position in result.get("positions", []):
        key = f"volume-{position['ticket']}"
        if key in edits:
            volume = _number(edits[key], f"positions[ticket {position['ticket']}].volume", positive=False)
            if volume == 0:
                continue
            position["volume"] = volume
        positions.append(position)
    result["positions"] = positions
    for name, quote in result.get("quotes", {}).items():
        for side in ("bid", "ask"):
            if f"{side}-{name}" in edits:
                quote[side] = _number(edits[f"{side}-{name}"], f"quotes.{name}.{side}", positive=True)
        if quote["bid"] > quote["ask"]:
            raise CalcError(f"quotes.{name}", f"bid {quote['bid']} is above ask {quote['ask']}")
    return result


async def live_document(settings: Settings, tenant_id: int, login: int) -> dict[str, Any]:
    """A live account of the tenant as a calculator document (asked of its own supervisor)."""
    supervisor = await tenant_actor(settings, tenant_id, "supervisor")
    if supervisor is None:
        raise AccountNotFound(f"No account {login}: this broker's engine runs no connection.")
    try:
        part: BookPart | None = await supervisor.account_part.remote(login)
    except TenantNotHosted:  # let go meanwhile (its last connection went)
        part = None
    if part is None:
        raise AccountNotFound(f"No account {login} on this broker's servers.")
    return document_of(part.snapshots[0], part.symbols, part.quotes)
