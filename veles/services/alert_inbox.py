"""The bounded inbox between a tenant's alert sources and one alert consumer.

`LiveFeed.alert_stream` feeds it from two sources: the aggregator's recent alerts, re-read over Ray
every second, and (with Redis) the alert topic. Before this inbox the stream put every alert the
poll read into an unbounded queue, seen or not, and only the consumer dropped repeats: behind a
slow consumer (an SMS send waits up to MESSAGING_TIMEOUT) the queue grew by the aggregator's whole
recent list every second, without limit.

Now an alert is checked against the keys already taken in before it is queued, so the queue only
ever holds new alerts, and it holds at most `limit` of them: the poll waits for room (it reads the
aggregator again when it has some), and an alert from the topic that finds the inbox full is
dropped and counted, not remembered, so the next poll, which reads the same alert from the
aggregator's recent list, takes it in then. Nothing is lost while the aggregator still holds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from actors.wire import Row

log = logging.getLogger(__name__)

ALERT_INBOX = 1_000  # alerts waiting for their consumer, at most
REMEMBERED = 2_000  # keys kept to drop repeats (4x the aggregator's recent list)
# `id` (the alert's row) tells apart two large deals of one account in one millisecond: same rule,
# subject, status and time, two alerts.
_KEY_FIELDS = ("rule_id", "subject", "status", "time_msc", "id")


def alert_key(alert: Any) -> tuple[str, ...]:
    """What makes one raise or clear the same when two sources bring it (anything that is not an
    alert row, a foreign publisher's junk too, is its own key: the consumer names what is wrong)."""
    if isinstance(alert, dict):
        return tuple(repr(alert.get(name)) for name in _KEY_FIELDS)
    return (repr(alert),)


class AlertInbox:
    """New alerts for one consumer, each once, at most `limit` waiting."""

    def __init__(self, limit: int = ALERT_INBOX, remembered: int = REMEMBERED) -> None:
        self._queue: asyncio.Queue[Row] = asyncio.Queue(maxsize=limit)
        self._seen: set[tuple[str, ...]] = set()
        self._order: deque[tuple[str, ...]] = deque()
        self._remembered = remembered
        self.dropped = 0  # topic alerts refused while full (the next poll brings them again)

    @property
    def pending(self) -> int:
        """Alerts waiting for the consumer."""
        return self._queue.qsize()

    def _remember(self, key: tuple[str, ...]) -> None:
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._remembered:
            self._seen.discard(self._order.popleft())

    async def put(self, alert: Row) -> None:
        """Take in an alert from the poll, waiting for room; a repeat is ignored."""
        key = alert_key(alert)
        if key in self._seen:
            return
        self._remember(key)  # before waiting, so the topic cannot queue it meanwhile
        await self._queue.put(alert)

    def offer(self, alert: Row) -> bool:
        """Take in an alert from the topic if there is room; False (dropped, counted) when full."""
        key = alert_key(alert)
        if key in self._seen:
            return True
        if self._queue.full():
            self.dropped += 1
            log.warning("alert inbox full (%d waiting): an alert from the topic waits for the next poll",
                        self._queue.qsize())
            return False
        self._remember(key)
        self._queue.put_nowait(alert)
        return True

    async def get(self) -> Row:
        """The next new alert."""
        return await self._queue.get()
