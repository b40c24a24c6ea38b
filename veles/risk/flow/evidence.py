"""What a detector returns: whether it fired, how strongly, and the trades and numbers why.

A dealer must be able to show a liquidity provider or an auditor why an account was flagged, so
every finding carries the deal tickets that made it and the figures it compared with its
thresholds, never only a score.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

#: Evidence tickets kept per detector and account: enough to show, bounded in memory.
EVIDENCE_TICKETS = 12


class Label(StrEnum):
    """What an account's flow looks like, as a dealer names it."""

    SCALPER = "scalper"
    LATENCY_ARB = "latency_arbitrage"
    MARTINGALE_GRID = "martingale_grid"
    NEWS = "news"
    HEDGED_PAIR = "hedged_pair"
    SYNDICATE = "syndicate"
    ORDINARY = "ordinary"


@dataclass(frozen=True, slots=True)
class Finding:
    """One detector's verdict on one account.

    `strength` is 0..1 and reaches 1 exactly when the detector's thresholds are met (`fired`);
    `numbers` are the measured figures the thresholds apply to; `tickets` the deals that show it;
    `linked` other logins involved (cross-account detectors); `since_msc` when it first fired.
    """

    detector: str
    label: Label | None
    fired: bool
    strength: float
    numbers: dict[str, float] = field(default_factory=dict)
    tickets: tuple[int, ...] = ()
    linked: tuple[int, ...] = ()
    since_msc: int = 0


class Tickets:
    """The latest evidence tickets of one detector (bounded)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque[int] = deque(maxlen=EVIDENCE_TICKETS)

    def add(self, *tickets: int) -> None:
        """Remember tickets as evidence (oldest drop out)."""
        self._items.extend(tickets)

    def get(self) -> tuple[int, ...]:
        """The evidence tickets, oldest first."""
        return tuple(self._items)


def ratio_strength(value: float, threshold: float) -> float:
    """0..1: how far a measured value is towards its threshold (1 at or beyond it)."""
    if threshold <= 0.0:
        return 1.0
    return 0.0 if value <= 0.0 else min(1.0, value / threshold)
