"""Latency arbitrage: entries at a quote the market had already left, and markout after fills.

Published (TOXIC-FLOW.md): Brokerpilot flags trades opened during a quote gap and closed soon at
a profit; Cartea, Duran-Martin and Sanchez-Betancourt ("Detecting toxic flow") call a client buy
toxic when the bid rises above the fill within a horizon (the client could close at a profit),
and measure the mid-price move after each fill at several horizons.

For each entry Veles measures
* the edge at fill: how far the fill is on the client's side of the broker's own current
  quote, in spreads (a buy filled below the current bid has a positive edge; an ordinary buy at
  the ask has -1) - a positive edge is a stale-quote entry;
* the markout at 1 s, 5 s and 60 s: the mid-price move in the client's favour after the fill, in
  spreads of the fill's quote, and whether the client could have closed at a profit.

A fill is toxic when its edge is positive or the client could close at a profit 1 s later. The
detector fires after `min_toxic` toxic fills that are at least `share` of the account's entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from veles.risk.flow.evidence import Finding, Label, Tickets, ratio_strength
from veles.risk.flow.trades import Entry

HORIZONS_S = (1, 5, 60)


@dataclass(frozen=True, slots=True)
class LatencyRule:
    """Thresholds of the latency-arbitrage detector."""

    min_toxic: int = 3
    share: float = 0.25


class LatencyDetector:
    """Stale entries and markouts of one account."""

    __slots__ = ("_pending_toxic", "_rule", "_since", "_tickets", "entries", "markout_n",
                 "markout_sum", "stale", "toxic")

    def __init__(self, rule: LatencyRule) -> None:
        self._rule = rule
        self.entries = 0
        self.stale = 0
        self.toxic = 0
        self.markout_sum = [0.0] * len(HORIZONS_S)
        self.markout_n = [0] * len(HORIZONS_S)
        self._pending_toxic: set[int] = set()  # entries already counted toxic (stale at fill)
        self._tickets = Tickets()
        self._since = 0

    def on_entry(self, entry: Entry, edge_spreads: float) -> None:
        """Count an entry and its edge at fill over the broker's current quote."""
        self.entries += 1
        if edge_spreads > 0.0:
            self.stale += 1
            self._count_toxic(entry)

    def on_markout(self, entry: Entry, horizon: int, spreads: float, closeable: bool) -> None:
        """Take the markout of an entry at HORIZONS_S[horizon]."""
        self.markout_sum[horizon] += spreads
        self.markout_n[horizon] += 1
        if horizon == 0 and closeable:
            self._count_toxic(entry)
        if horizon == 0:
            self._pending_toxic.discard(entry.ticket)

    def _count_toxic(self, entry: Entry) -> None:
        if entry.ticket in self._pending_toxic:
            return
        self._pending_toxic.add(entry.ticket)
        self.toxic += 1
        self._tickets.add(entry.ticket)
        if not self._since and self._fires():
            self._since = entry.time_msc

    def _fires(self) -> bool:
        rule = self._rule
        return self.toxic >= rule.min_toxic and self.toxic >= rule.share * self.entries

    def finding(self) -> Finding:
        """The verdict with the toxic fills as evidence and the markout curve as numbers."""
        rule = self._rule
        share = self.toxic / self.entries if self.entries else 0.0
        numbers: dict[str, float] = {
            "entries": self.entries,
            "stale_entries": self.stale,
            "toxic_fills": self.toxic,
            "toxic_share": round(share, 4),
        }
        for i, horizon in enumerate(HORIZONS_S):
            n = self.markout_n[i]
            numbers[f"markout_{horizon}s_spreads"] = round(self.markout_sum[i] / n, 3) if n else 0.0
        strength = ratio_strength(share, rule.share) * ratio_strength(self.toxic, rule.min_toxic)
        return Finding("latency_arbitrage", Label.LATENCY_ARB, self._fires(), strength, numbers,
                       self._tickets.get(), since_msc=self._since)
