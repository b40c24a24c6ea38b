"""The what-if calculator as a service: an account snapshot in, MT5 margin and profit out.

The risk core (`veles.risk.calculator`) does the work and validates strictly; this module gives
callers typed results instead of dicts, so the API documents them and the portal can rely on
their shape. `CalcError` (a ValueError with `field`) passes through unchanged: it already names
the offending field, e.g. `positions[0].volume`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from veles.risk.calculator import CalcError, CalcInput, calculate

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
