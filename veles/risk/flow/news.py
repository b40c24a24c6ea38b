"""News trading: entries clustered around scheduled releases on the symbols they move.

Published (TOXIC-FLOW.md): tradeonyx and fundyourfx flag entries inside a window around
high-impact events, ±2 to ±30 minutes. Those windows suit a real calendar of a few releases a
day; the simulated broker's calendar has a release every few minutes, where such windows would
cover the whole session, so Veles' default window is `before_s` before to `after_s` after the
release (both configurable). An entry counts when its symbol is one the release moves. The
detector fires after `min_entries` news entries that are at least `share` of the account's
entries.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from veles.risk.events import NewsEvent
from veles.risk.flow.evidence import Finding, Label, Tickets, ratio_strength
from veles.risk.flow.trades import Entry

__all__ = ["CALENDAR_EVENTS", "Calendar", "NewsDetector", "NewsEvent", "NewsRule"]

CALENDAR_EVENTS = 2_000  # releases remembered: days of the simulator's rate


@dataclass(frozen=True, slots=True)
class NewsRule:
    """Window and thresholds of the news detector."""

    before_s: float = 10.0
    after_s: float = 30.0
    min_entries: int = 4
    share: float = 0.3


class Calendar:
    """Releases in time order (bounded); answers which release, if any, explains an entry."""

    __slots__ = ("_events", "_rule")

    def __init__(self, rule: NewsRule) -> None:
        self._rule = rule
        self._events: deque[NewsEvent] = deque(maxlen=CALENDAR_EVENTS)

    def add(self, events: Iterable[NewsEvent]) -> None:
        """Add releases (scheduled ahead or published as they happen), keeping time order."""
        for event in events:
            if self._events and event.time_msc < self._events[-1].time_msc:
                items = sorted((*self._events, event), key=lambda e: e.time_msc)
                self._events = deque(items, maxlen=CALENDAR_EVENTS)
            else:
                self._events.append(event)

    def around(self, symbol: str, time_msc: int) -> NewsEvent | None:
        """The release on `symbol` whose window holds `time_msc`, newest first."""
        earliest = time_msc - self._rule.after_s * 1000
        latest = time_msc + self._rule.before_s * 1000
        for event in reversed(self._events):
            if event.time_msc < earliest:
                return None
            if event.time_msc <= latest and symbol in event.symbols:
                return event
        return None


class NewsDetector:
    """Entries of one account inside release windows."""

    __slots__ = ("_rule", "_since", "_tickets", "entries", "news_entries")

    def __init__(self, rule: NewsRule) -> None:
        self._rule = rule
        self.entries = 0
        self.news_entries = 0
        self._tickets = Tickets()
        self._since = 0

    def on_entry(self, entry: Entry, event: NewsEvent | None) -> None:
        """Count an entry and whether a release explains it."""
        self.entries += 1
        if event is not None:
            self.news_entries += 1
            self._tickets.add(entry.ticket)
            if not self._since and self._fires():
                self._since = entry.time_msc

    def _fires(self) -> bool:
        rule = self._rule
        return self.news_entries >= rule.min_entries and self.news_entries >= rule.share * self.entries

    def finding(self) -> Finding:
        """The verdict with the news entries as evidence."""
        rule = self._rule
        share = self.news_entries / self.entries if self.entries else 0.0
        strength = ratio_strength(share, rule.share) * ratio_strength(self.news_entries, rule.min_entries)
        return Finding(
            "news", Label.NEWS, self._fires(), strength,
            {"entries": self.entries, "news_entries": self.news_entries, "news_share": round(share, 4),
             "window_before_s": rule.before_s, "window_after_s": rule.after_s},
            self._tickets.get(), since_msc=self._since,
        )
