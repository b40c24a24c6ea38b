"""The toxic-flow detectors beside a tenant's book, off its batch path.

Why. The detectors (`veles.risk.flow.FlowMonitor`) need the whole tenant (hedged pairs and
syndicates span account hosts), so they run where the book is merged, in the aggregator. Run
inside the aggregator's `apply` and `publish`, every batch's deals went through every detector
and every account they touched was scored again before the book's diff could go out: at 10,000
accounts that cost more than merging and publishing the book itself and delayed every figure.

So the aggregator only queues what the detectors need (`feed`: the batch's quotes, the deals the
hosts applied, calendar releases), in arrival order, and works the queue off on its own
schedule (`actors/risk_aggregator.py`: at most every `FLOW_PERIOD_S`, in slices of `SLICE_S`
between which the book's own calls run): `work` feeds the queued events to the detectors and
`score` scores the accounts whose flow changed since the last scoring, each once however many
deals it made meanwhile. The book's update never waits for a score; a score reaches the rows,
the API and the toxic_flow rules within about a period of the deal.

Bounded: the queue holds at most `MAX_PENDING` events; past that, `feed` works off the oldest
at once (the caller waits, nothing is dropped: a detector that skipped deals would be wrong).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from veles.risk.events import Deal, Quote
from veles.risk.flow.monitor import FlowMonitor
from veles.risk.flow.scoring import Toxicity

FLOW_PERIOD_S = 1.0  # the detectors' queue is worked off, and changed accounts scored, this often
SLICE_S = 0.005  # longest stretch of detector work between two turns of the event loop
MAX_PENDING = 200_000  # queued events (a quote batch, a deal, a set of releases), at most

_NEWS, _QUOTES, _DEAL = 0, 1, 2


class FlowPipeline:
    """A `FlowMonitor` fed through a bounded queue and scored on demand, in time slices."""

    def __init__(self, monitor: FlowMonitor | None = None, max_pending: int = MAX_PENDING) -> None:
        self.monitor = monitor or FlowMonitor()
        self._pending: deque[tuple[int, Any]] = deque()
        self._max_pending = max_pending
        self._scoring: list[int] = []  # a scoring in progress, sorted, worked off from the end
        self.worked_inline = 0  # events `feed` had to work off itself (the queue was full)

    @property
    def pending(self) -> int:
        """Events queued, not yet seen by the detectors."""
        return len(self._pending)

    def feed(self, quotes: Sequence[Quote], deals: Iterable[Deal], news: Sequence[Any] = ()) -> bool:
        """Queue one batch's events, in the order the detectors take them: releases, quotes (the
        clock moves to the latest), then each deal. True when anything was queued."""
        pending = self._pending
        before = len(pending)
        if news:
            pending.append((_NEWS, tuple(news)))
        if quotes:
            pending.append((_QUOTES, tuple(quotes)))
        pending.extend((_DEAL, deal) for deal in deals)
        while len(pending) > self._max_pending:
            self._step(*pending.popleft())
            self.worked_inline += 1
        return len(pending) != before

    def _step(self, kind: int, item: Any) -> None:
        monitor = self.monitor
        if kind == _DEAL:
            monitor.on_deals((item,))
        elif kind == _QUOTES:
            monitor.on_quotes(item)
            monitor.advance(max(q.time_msc for q in item))
        else:
            monitor.on_news(item)

    def work(self, budget_s: float | None = None) -> bool:
        """Feed queued events to the detectors, for about `budget_s` seconds of this thread's time
        (all of them when None). True when the queue is empty."""
        pending = self._pending
        step = self._step
        if budget_s is None:
            while pending:
                step(*pending.popleft())
            return True
        until = time.perf_counter() + budget_s
        while pending:
            step(*pending.popleft())
            if time.perf_counter() >= until:
                break
        return not pending

    def score(self, budget_s: float | None = None) -> tuple[list[Toxicity], bool]:
        """Score the accounts whose flow changed since they were last scored (in login order),
        for about `budget_s` seconds (all of them when None): their toxicities, and True when
        none is left to score (False: call again, it goes on where it stopped)."""
        until = None if budget_s is None else time.perf_counter() + budget_s
        monitor = self.monitor
        scored: list[Toxicity] = []
        while True:
            if not self._scoring:
                changed = monitor.take_changed()
                if not changed:
                    return scored, True
                self._scoring = sorted(changed, reverse=True)
            scoring = self._scoring
            while scoring:
                scored.append(monitor.toxicity(scoring.pop()))
                if until is not None and time.perf_counter() >= until:
                    return scored, False
