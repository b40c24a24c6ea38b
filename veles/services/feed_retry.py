"""Following a feed again after it fails, with tenacity and a stop, and a give-up people can see.

Why. The web tier's followers (the alert topic pump, the report notices pump, a tenant's book
replica, the integrations relays) used to resubscribe in hand-written `while True` loops that
never stopped: Redis gone for good (a wrong URL, a moved server) meant a warning a second for the
life of the process and nobody told. The project's rule is tenacity with a stop. `follow` runs a
follower again after each failure, waiting longer each time (up to `MAX_WAIT_S`), and gives up once
it has failed for `give_up_s` without a healthy moment in between: its task then ends cleanly
(nothing is raised to whoever awaits it), the give-up is logged as an error and counted
(`veles_feed_gave_up{feed}` in `/metrics`, with `veles_feed_retries{feed}`), and the follower's
owner starts a new one for the next watcher (each owner checks `task.done()` when one arrives).

Healthy means the follower said so (`Health.mark`): it connected, or a message arrived. The
stop counts from the first failure after the last healthy moment, not from the first attempt
(tenacity's `stop_after_delay`), so a subscription that ran for a day and then lost Redis gets
its full `give_up_s` of retries, not none.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

log = logging.getLogger(__name__)

GIVE_UP_S = 600.0  # a follower failing this long without a healthy moment gives up
MAX_WAIT_S = 10.0  # the longest wait between two attempts

# The followers this process runs, by name; a fixed set, so the counters stay bounded.
ALERT_TOPIC = "alert_topic"  # LiveFeed: a tenant's alert topic, into an alert stream's inbox
BOOK = "book"  # LiveFeed: a tenant's book replica
REPORT_TOPIC = "report_topic"  # ReportFeed: wake-ups of a tenant's report notices
ALERT_WATCH = "alert_watch"  # AlertWatch: a tenant's ordered alert stream, for the tabs' bells
PUSH_RELAY = "push_relay"  # integrations socket.io: a tenant's book and alerts
REPORT_RELAY = "report_relay"  # integrations socket.io: a tenant's report notices
FEEDS = (ALERT_TOPIC, BOOK, REPORT_TOPIC, ALERT_WATCH, PUSH_RELAY, REPORT_RELAY)

_RETRIES: Counter[str] = Counter()
_GAVE_UP: Counter[str] = Counter()


def retries(feed: str) -> int:
    """Attempts this process's followers of `feed` made again after a failure."""
    return _RETRIES[feed]


def gave_up(feed: str) -> int:
    """Followers of `feed` in this process that gave up."""
    return _GAVE_UP[feed]


class Health:
    """When a follower last worked, and since when it has been failing."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.failing_since: float | None = None

    def mark(self) -> None:
        """The follower works (it connected, or a message arrived)."""
        self.failing_since = None

    def failed(self) -> None:
        """An attempt failed: the failing time starts now unless it already runs."""
        if self.failing_since is None:
            self.failing_since = self._clock()

    def failing_for(self) -> float:
        """Seconds of failures since the last healthy moment (0 when healthy)."""
        return 0.0 if self.failing_since is None else self._clock() - self.failing_since


async def follow(
    feed: str, what: str, once: Callable[[Health], Awaitable[None]], *,
    give_up_s: float = GIVE_UP_S, max_wait_s: float = MAX_WAIT_S,
) -> bool:
    """Run `once(health)` until it returns; after a failure (any Exception: a follower that must
    run for ever raises when its subscription ends) run it again, unless it has failed for
    `give_up_s` since it last marked `health`. True when `once` returned, False when it gave up
    (logged with `what`, counted for `feed`). Cancelling the caller cancels it as usual."""
    if feed not in FEEDS:
        raise ValueError(f"feed: unknown follower {feed!r} (one of {', '.join(FEEDS)})")
    health = Health()

    async def attempt() -> None:
        try:
            await once(health)
        except Exception:
            health.failed()
            raise

    def stop(_state: RetryCallState) -> bool:
        return health.failing_for() >= give_up_s

    def again(state: RetryCallState) -> None:
        _RETRIES[feed] += 1
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("%s: %s; following again in %.1f s", what, error,
                    state.next_action.sleep if state.next_action is not None else 0.0)

    retrying = AsyncRetrying(
        retry=retry_if_exception_type(Exception), stop=stop, before_sleep=again, reraise=True,
        wait=wait_exponential(multiplier=min(0.5, max_wait_s), max=max_wait_s),
    )
    try:
        await retrying(attempt)
    except Exception as exc:
        _GAVE_UP[feed] += 1
        log.error("%s: gave up after %.0f s of failures (last: %s); the next watcher starts it again",
                  what, health.failing_for(), exc)
        return False
    return True
