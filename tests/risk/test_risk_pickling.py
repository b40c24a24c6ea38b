"""Checkpoints pickle the risk core's frozen dataclasses by field values, not by state walks."""

from __future__ import annotations

import pickle
import pickletools

import pytest

from veles.risk.conversion import Conversion, Leg
from veles.risk.events import (
    AccountSnapshot,
    Deal,
    DealEntry,
    DealKind,
    Position,
    PositionSwap,
    Quote,
    Side,
)
from veles.risk.instruments import CalcMode, MarginRates, SymbolSpec


def _opcodes(blob: bytes) -> set[str]:
    return {op.name for op, _arg, _pos in pickletools.genops(blob)}


SAMPLES = [
    Leg("EURUSD", True),
    Conversion("EUR", "JPY", (Leg("EURUSD", False), Leg("USDJPY", False))),
    MarginRates(1.5, 0.5),
    SymbolSpec("XAUUSD", CalcMode.CFD, contract_size=100.0, digits=2, tick_size=0.01,
               buy_rates=MarginRates(2.0), swap_day_multipliers=(0.0, 1.0, 1.0, 3.0, 1.0, 1.0, 0.0)),
    Quote("EURUSD", 1.1, 1.1002, 1_790_000_000_000),
    Position(7, "EURUSD", Side.BUY, 0.1, 1.1, -0.5, -0.7, 1.1001),
    PositionSwap(1001, 7, -1.25, 1_790_000_000_000),
    AccountSnapshot(1001, "EUR", 200, 1000.0, positions=(Position(7, "EURUSD", Side.SELL, 0.2, 1.2),)),
    Deal(9, 1001, DealKind.BUY, 1_790_000_000_000, DealEntry.IN, "EURUSD", 0.1, 1.1, 7),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_round_trips_by_field_values(value: object) -> None:
    """Equal after a round trip, and pickled as constructor + arguments: no BUILD opcode, which is
    the per-object `__setstate__` walk over `dataclasses.fields` that made checkpoints slow."""
    blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(blob) == value  # noqa: S301 (our own bytes)
    assert "BUILD" not in _opcodes(blob)

