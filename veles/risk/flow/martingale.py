"""Martingale and grid: adding to a losing position, in bigger lots (martingale) or at regular
price steps (grid).

Published (TOXIC-FLOW.md): fxproptech's risk engine and tradeonyx describe martingale as lots
multiplied over consecutive losses in the same direction and measure the correlation of the
previous trade's P&L sign with this trade's size (r < -0.3 martingale); grids average into a loss
with equidistant orders. Veles follows each (symbol, side) basket of an account: an entry on the
same symbol and side as open exposure, at a worse price than the basket's last entry, in lots
multiplied by at least `escalation` (martingale) or equal to the last entry's (grid), is an
averaging add; a basket's depth is its entries since it opened, as long as every add qualified
(an entry that does not breaks the run).

The detector fires on at least `min_adds` averaging adds when either
* `min_adds` of them were made in baskets at least `min_depth` entries deep, and the adds are at
  least `share` of the account's entries or at least `stacked_share` of its stacked entries
  (entries made while it held the same symbol and side); or
* there are `min_shallow` of them, one loss deep each (a martingale multiplying its lots after a
  loss, the published "lot multiplied over consecutive losses in the same direction", or a grid
  adding equal lots a step against it, whose baskets take profit after one add), and they are at
  least `stacked_share` of the stacked entries.
The stacked share is what tells averaging into losers apart from stacking in general: a
martingale or grid trader stacks only to average down, while a scalper or a pyramider with
several positions open stacks at better prices and in random sizes about as often as at worse
ones; toxic traders who mix ordinary trades in keep it high though their adds are a small share
of all their entries. The correlation r is reported as evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from veles.risk.events import Side
from veles.risk.flow.evidence import Finding, Label, Tickets, ratio_strength
from veles.risk.flow.trades import Entry, RoundTrip


@dataclass(frozen=True, slots=True)
class MartingaleRule:
    """Thresholds of the martingale / grid detector."""

    min_adds: int = 2
    min_depth: int = 3
    share: float = 0.25
    escalation: float = 1.3  # lot ratio that counts as multiplying
    stacked_share: float = 0.75  # of the entries made onto open same-side exposure, the adds' share
    min_shallow: int = 2  # averaging adds that fire without a basket min_depth deep


@dataclass(slots=True)
class _Basket:
    volume: float = 0.0
    last_price: float = 0.0
    last_volume: float = 0.0
    depth: int = 0
    adds: list[int] = field(default_factory=list)  # tickets of averaging adds


class MartingaleDetector:
    """Averaging-down baskets of one account."""

    __slots__ = ("_baskets", "_prev_loss", "_r", "_rule", "_since", "_tickets", "adds",
                 "deep_adds", "entries", "escalating", "max_depth", "stacked")

    def __init__(self, rule: MartingaleRule) -> None:
        self._rule = rule
        self._baskets: dict[tuple[str, Side], _Basket] = {}
        self.entries = 0
        self.stacked = 0  # entries made while the account held the same symbol and side
        self.adds = 0
        self.deep_adds = 0
        self.escalating = 0
        self.max_depth = 0
        self._prev_loss: float | None = None
        # running sums for r(previous trade lost, this entry's size / previous size)
        self._r = [0, 0.0, 0.0, 0.0, 0.0, 0.0]  # n, sx, sy, sxx, syy, sxy
        self._tickets = Tickets()
        self._since = 0

    def on_entry(self, entry: Entry) -> None:
        """An entry: an averaging add when it extends a basket at a worse price."""
        rule = self._rule
        self.entries += 1
        key = (entry.symbol, entry.side)
        basket = self._baskets.get(key)
        if basket is None:
            basket = self._baskets[key] = _Basket()
        ratio = entry.volume / basket.last_volume if basket.last_volume > 0.0 else 0.0
        worse = basket.volume > 0.0 and (
            entry.price < basket.last_price if entry.side is Side.BUY else entry.price > basket.last_price
        ) and (ratio >= rule.escalation or abs(ratio - 1.0) < 1e-6)
        if basket.volume > 0.0:
            self.stacked += 1
        if basket.volume > 0.0 and basket.last_volume > 0.0 and self._prev_loss is not None:
            self._add_pair(self._prev_loss, entry.volume / basket.last_volume)
        if worse:
            basket.depth += 1
            basket.adds.append(entry.ticket)
            self.adds += 1
            if entry.volume >= rule.escalation * basket.last_volume:
                self.escalating += 1
            if basket.depth == rule.min_depth:
                self.deep_adds += len(basket.adds)
                self._tickets.add(*basket.adds)
            elif basket.depth > rule.min_depth:
                self.deep_adds += 1
                self._tickets.add(entry.ticket)
        else:
            basket.depth = 1
            basket.adds = []
        basket.volume += entry.volume
        basket.last_price = entry.price
        basket.last_volume = entry.volume
        self.max_depth = max(self.max_depth, basket.depth)
        if not self._since and self._fires():
            self._since = entry.time_msc

    def exposed(self, symbol: str, side: Side) -> bool:
        """Whether the account holds exposure on (symbol, side): an entry now adds to it."""
        basket = self._baskets.get((symbol, side))
        return basket is not None and basket.volume > 0.0

    def on_exit(self, symbol: str, closed_side: Side, volume: float) -> None:
        """Exposure on (symbol, side) shrank by `volume` lots; an emptied basket starts afresh."""
        basket = self._baskets.get((symbol, closed_side))
        if basket is None:
            return
        basket.volume = round(basket.volume - volume, 8)
        if basket.volume <= 0.0:
            del self._baskets[(symbol, closed_side)]

    def on_trip(self, trip: RoundTrip) -> None:
        """Remember whether the last closed trade lost (for the published correlation)."""
        self._prev_loss = 1.0 if trip.profit < 0.0 else 0.0

    def _add_pair(self, x: float, y: float) -> None:
        r = self._r
        r[0] += 1
        r[1] += x
        r[2] += y
        r[3] += x * x
        r[4] += y * y
        r[5] += x * y

    def correlation(self) -> float:
        """Pearson r of (previous trade lost) with (size relative to the previous entry); 0 when
        undefined. Martingale sizes up after losses, which the published rule reads as r < -0.3
        on the P&L sign, i.e. r > 0.3 on the loss indicator used here."""
        n, sx, sy, sxx, syy, sxy = self._r
        if n < 3:
            return 0.0
        vx, vy = n * sxx - sx * sx, n * syy - sy * sy
        if vx <= 0 or vy <= 0:
            return 0.0
        return (n * sxy - sx * sy) / math.sqrt(vx * vy)

    def _fires(self) -> bool:
        rule = self._rule
        if self.adds < rule.min_adds:
            return False
        averaging = self.adds >= rule.stacked_share * self.stacked  # nearly every stacked entry
        if self.deep_adds >= rule.min_adds:
            return averaging or self.adds >= rule.share * self.entries
        return averaging and self.adds >= rule.min_shallow

    def finding(self) -> Finding:
        """The verdict with the averaging adds as evidence."""
        rule = self._rule
        return Finding(
            "martingale_grid", Label.MARTINGALE_GRID, self._fires(),
            ratio_strength(self.deep_adds, rule.min_adds)
            * ratio_strength(self.adds / self.entries if self.entries else 0.0, rule.share),
            {
                "entries": self.entries,
                "stacked_entries": self.stacked,
                "averaging_adds": self.adds,
                "adds_in_deep_baskets": self.deep_adds,
                "escalating_adds": self.escalating,
                "max_basket_depth": self.max_depth,
                "r_loss_vs_size": round(self.correlation(), 3),
            },
            self._tickets.get(), since_msc=self._since,
        )
