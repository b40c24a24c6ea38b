"""News trading: entries clustered around scheduled releases on the symbols they move.

Published (TOXIC-FLOW.md): tradeonyx and fundyourfx flag entries inside a window around
high-impact events, ±2 to ±30 minutes. Those windows suit a real calendar of a few releases a
day; the simulated broker's calendar has a release every few minutes, where such windows would
cover the whole session, so Veles' default window is `before_s` before to `after_s` after the
release (both configurable). An entry counts when its symbol is one the release moves and, when
it came after the release, it went the way the release moved the price: a buy filled above the
symbol's last mid before the release, a sell below it (a news trader follows the move; an
ordinary entry that happens to fall in the window goes either way). The mid before the release is
the one on the quote board when the release reaches the calendar, so it is known only for releases
added as they happen (at most `before_s` ahead); entries at releases without it, and entries
before a release (positioning for it), count without the direction. The detector fires after
`min_entries` news entries that are at least `share` of the account's entries.

Tuned on the simulator's seeds 101-103 and 111-112 (README): a news trader who takes only two or
three releases an hour and mixes ordinary trades in stays under the old four-entry, 30% rule,
while inside a few seconds of a release on the moved symbol, in the move's direction, an ordinary
trader's entries fall rarely enough that two such entries a fifth of the account's are news.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from veles.risk.events import NewsEvent, Quote, Side
from veles.risk.flow.evidence import Finding, Label, Tickets, ratio_strength
from veles.risk.flow.trades import Entry

__all__ = ["CALENDAR_EVENTS", "Calendar", "NewsDetector", "NewsEvent", "NewsRule"]

CALENDAR_EVENTS = 2_000  # releases remembered: days of the simulator's rate


@dataclass(frozen=True, slots=True)
class NewsRule:
    """Window and thresholds of the news detector."""

    before_s: float = 2.0
    after_s: float = 5.0
    min_entries: int = 2
    share: float = 0.25


def _event_time(item: tuple[NewsEvent, Mapping[str, float]]) -> int:
    return item[0].time_msc


class Calendar:
    """Releases in time order (bounded), each with the mids of its symbols just before it when
    known; answers which release, if any, explains an entry."""

    __slots__ = ("_events", "_rule")

    def __init__(self, rule: NewsRule) -> None:
        self._rule = rule
        self._events: deque[tuple[NewsEvent, Mapping[str, float]]] = deque(maxlen=CALENDAR_EVENTS)

    def add(self, events: Iterable[NewsEvent], board: Mapping[str, Quote] | None = None,
            now_msc: int = 0) -> None:
        """Add releases (scheduled ahead or published as they happen), keeping time order. With
        the quote board and clock as of the release's arrival, a release at most `before_s`
        ahead keeps its symbols' mids as the prices before it."""
        ahead = self._rule.before_s * 1000
        for event in events:
            before: dict[str, float] = {}
            if board is not None and event.time_msc - now_msc <= ahead:
                for symbol in event.symbols:
                    quote = board.get(symbol)
                    if quote is not None and quote.time_msc <= event.time_msc:
                        before[symbol] = (quote.bid + quote.ask) / 2
            item = (event, before)
            if self._events and event.time_msc < self._events[-1][0].time_msc:
                items = sorted((*self._events, item), key=_event_time)
                self._events = deque(items, maxlen=CALENDAR_EVENTS)
            else:
                self._events.append(item)

    def around(self, symbol: str, time_msc: int, side: Side | None = None,
               price: float = 0.0) -> NewsEvent | None:
        """The release on `symbol` whose window holds `time_msc`, newest first; with the entry's
        `side` and `price`, only one the entry followed (see the module docstring)."""
        earliest = time_msc - self._rule.after_s * 1000
        latest = time_msc + self._rule.before_s * 1000
        for event, before in reversed(self._events):
            if event.time_msc < earliest:
                return None
            if event.time_msc <= latest and symbol in event.symbols:
                mid = before.get(symbol)
                if side is None or mid is None or time_msc < event.time_msc:
                    return event
                if (price > mid) if side is Side.BUY else (price < mid):
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
