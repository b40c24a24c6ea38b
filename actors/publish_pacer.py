"""When the aggregator may publish the next diff: a token bucket of two publishes.

Why a bucket and not a least gap. With "at least 0.8 of a period since the last publish", one
publish off the beat (the start-up snapshot's figures, a restored host's accounts, a batch the
hosts were late with) made the next on-beat batch wait up to 0.8 of a period, the one after it
0.6, and so on: a cascade of delayed diffs that showed as the engine's p99 latency. A bucket
refilled at 1.25 publishes per period (`RATE`) and holding two (`BURST`) lets that one extra
publish go and keeps the beat: the long-run rate stays at most 1.25 x PUBLISH_HZ, at most two
diffs ever go out back to back, and a gateway polled at PUBLISH_HZ still works off a delay (the
bucket refills faster than it drains), which a bucket refilled at exactly PUBLISH_HZ would not.
"""

from __future__ import annotations

RATE = 1.25  # publishes per publishing period, at most, in the long run
BURST = 2.0  # publishes that may go out back to back


class PublishPacer:
    """A token bucket over a monotonic clock (seconds); pure, so it is tested without waiting."""

    def __init__(self, period_s: float) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s: must be > 0, got {period_s!r}")
        self._per_s = RATE / period_s
        self._tokens = BURST
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        if self._at is not None:
            self._tokens = min(BURST, self._tokens + (now - self._at) * self._per_s)
        self._at = now

    def wait_s(self, now: float) -> float:
        """How long to wait from `now` before a publish is allowed (0: at once)."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self._per_s)

    def take(self, now: float) -> None:
        """A publish went out at `now`."""
        self._refill(now)
        self._tokens = max(0.0, self._tokens - 1.0)
