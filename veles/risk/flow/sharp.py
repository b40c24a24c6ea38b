"""Sharp deals and run-ups: profits far above what the account usually makes.

Published (TOXIC-FLOW.md): Brokerpilot's sharp deals ("few deals, each very profitable relative
to the account") and run-uppers (sum of ln|profit| of wins over sum of ln|loss| of losses over
the last N = 5 trades, sensitivity 2.0). A closing trade is sharp when its profit is at least
`multiple` times the median absolute result of the account's earlier trades (after
`min_history` of them); the detector fires after `min_sharp` sharp trades. It feeds the score and
the evidence, not a label of its own: the issue's labels name behaviours, and a sharp deal is an
outcome any of them can have.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from statistics import median

from veles.risk.flow.evidence import Finding, Tickets, ratio_strength
from veles.risk.flow.trades import RoundTrip

HISTORY = 50  # closed trades whose results form the account's norm


@dataclass(frozen=True, slots=True)
class SharpRule:
    """Thresholds of the sharp-deal and run-up detector."""

    multiple: float = 8.0
    min_history: int = 5
    min_sharp: int = 3
    run_up_window: int = 5
    run_up_ratio: float = 2.0


class SharpDetector:
    """Tracks one account's closed-trade results."""

    __slots__ = ("_results", "_rule", "_since", "_tickets", "run_up", "sharp")

    def __init__(self, rule: SharpRule) -> None:
        self._rule = rule
        self._results: deque[float] = deque(maxlen=HISTORY)
        self._tickets = Tickets()
        self.sharp = 0
        self.run_up = 0.0
        self._since = 0

    def on_trip(self, trip: RoundTrip) -> None:
        """Compare one closed trade with the account's norm, then add it to the norm."""
        rule = self._rule
        if len(self._results) >= rule.min_history and trip.profit > 0.0:
            norm = median(abs(r) for r in self._results)
            if norm > 0.0 and trip.profit >= rule.multiple * norm:
                self.sharp += 1
                self._tickets.add(trip.close_ticket)
                if not self._since and self.sharp >= rule.min_sharp:
                    self._since = trip.close_msc
        self._results.append(trip.profit)
        recent = list(self._results)[-rule.run_up_window:]
        wins = sum(math.log1p(r) for r in recent if r > 0)
        losses = sum(math.log1p(-r) for r in recent if r < 0)
        self.run_up = wins / losses if losses > 0 else (wins and float(rule.run_up_window))

    def finding(self) -> Finding:
        """The verdict with the sharp trades as evidence."""
        rule = self._rule
        fired = self.sharp >= rule.min_sharp
        return Finding(
            "sharp_deals", None, fired, ratio_strength(self.sharp, rule.min_sharp),
            {"sharp_trades": self.sharp, "multiple": rule.multiple, "run_up_ratio": round(self.run_up, 3)},
            self._tickets.get(), since_msc=self._since,
        )
