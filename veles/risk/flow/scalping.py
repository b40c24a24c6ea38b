"""Scalping / HFT: the share of an account's trades (and volume) closed within N seconds.

Published definitions (TOXIC-FLOW.md): prop-firm rules call holds under 15 s "tick scalping" and
warn at 10% / breach at 50% of volume; the product Veles grew from tracks the share of trades
closed within 60 s; one vendor scores "average hold < 60 s and > 20 trades a day". Veles fires
when at least `min_trades` round trips were closed within `hold_s` and they are at least `share`
of the account's closed trades.
"""

from __future__ import annotations

from dataclasses import dataclass

from veles.risk.flow.evidence import Finding, Label, Tickets, ratio_strength
from veles.risk.flow.trades import RoundTrip


@dataclass(frozen=True, slots=True)
class ScalpingRule:
    """Thresholds of the scalping detector."""

    hold_s: float = 60.0
    share: float = 0.5
    min_trades: int = 8


class ScalpingDetector:
    """Counts short round trips of one account."""

    __slots__ = ("_first_msc", "_last_msc", "_rule", "_since", "_tickets", "short", "short_volume",
                 "trips", "volume")

    def __init__(self, rule: ScalpingRule) -> None:
        self._rule = rule
        self.trips = 0
        self.short = 0
        self.volume = 0.0
        self.short_volume = 0.0
        self._tickets = Tickets()
        self._first_msc = 0
        self._last_msc = 0
        self._since = 0

    def on_trip(self, trip: RoundTrip) -> None:
        """Count one closed round trip."""
        self.trips += 1
        self.volume += trip.volume
        if not self._first_msc:
            self._first_msc = trip.close_msc
        self._last_msc = trip.close_msc
        if trip.hold_ms <= self._rule.hold_s * 1000:
            self.short += 1
            self.short_volume += trip.volume
            self._tickets.add(trip.close_ticket)
        if not self._since and self._fires():
            self._since = trip.close_msc

    def _fires(self) -> bool:
        rule = self._rule
        return self.short >= rule.min_trades and self.short >= rule.share * self.trips

    def finding(self) -> Finding:
        """The verdict with the short trades as evidence."""
        rule = self._rule
        share = self.short / self.trips if self.trips else 0.0
        hours = max((self._last_msc - self._first_msc) / 3_600_000, 1 / 60)
        strength = ratio_strength(share, rule.share) * ratio_strength(self.short, rule.min_trades)
        return Finding(
            "scalping", Label.SCALPER, self._fires(), strength,
            {
                "trades": self.trips,
                "short_trades": self.short,
                "short_share": round(share, 4),
                "short_volume_share": round(self.short_volume / self.volume, 4) if self.volume else 0.0,
                "trades_per_hour": round(self.trips / hours, 1),
                "hold_threshold_s": rule.hold_s,
            },
            self._tickets.get(), since_msc=self._since,
        )
