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

from veles.risk.calculator import CalcInput, calculate

__all__ = ["CalcInput", "WhatIf", "what_if"]


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
    profit: float
    swap: float
    commission: float


class WhatIf(BaseModel):
    """The calculator's answer."""

    account: AccountResult
    positions: list[PositionResult]


def what_if(document: CalcInput | Mapping[str, Any]) -> WhatIf:
    """Figures of one account snapshot (see `veles.risk.calculator.calculate`)."""
    data = document.model_dump(mode="json") if isinstance(document, CalcInput) else document
    return WhatIf.model_validate(calculate(data))
