"""The toxic-flow detectors off the book's batch path: a batch only queues its events; the queue
is worked off in slices with the same verdicts as feeding the detectors at once; the queue is
bounded without losing a deal; the live aggregator merges a batch without scoring it and its
scores, rows and toxic_flow alerts still come, on the flow period."""

from __future__ import annotations

import asyncio
import itertools

from actors.flow_pipeline import FlowPipeline
from actors.risk_aggregator import Aggregator
from tests.actors.support import account_figures
from veles.mt5.simulator import SimulatedBroker
from veles.risk.alerts import AlertEngine, AlertKind, AlertRule
from veles.risk.events import Deal, DealEntry, DealKind, Quote
from veles.risk.flow.monitor import FlowMonitor

T0 = 1_790_000_000_000
_tickets = itertools.count(9_000)


def _scalps(login: int, count: int) -> list[Deal]:
    """`count` EURUSD round trips held 10 s, one a minute (a scalper once there are 8)."""
    deals = []
    for n in range(count):
        opened, at = next(_tickets), T0 + n * 60_000
        deals.append(Deal(opened, login, DealKind.BUY, at, DealEntry.IN, "EURUSD", 1.0, 1.1, opened))
        deals.append(Deal(next(_tickets), login, DealKind.SELL, at + 10_000, DealEntry.OUT, "EURUSD", 1.0,
                          1.1001, opened, 10.0))
    return deals


def _verdicts(monitor: FlowMonitor) -> dict[int, tuple[float, tuple[str, ...]]]:
    return {login: (tox.score, tuple(label.value for label in tox.labels))
            for login in monitor.logins() for tox in [monitor.toxicity(login)]}


def test_sliced_work_and_scoring_give_the_verdicts_of_feeding_the_detectors_at_once() -> None:
    broker = SimulatedBroker("flow", accounts=60, seed=11, start_msc=T0, warmup=0.0)
    batches = [broker.poll() for _ in range(240)]
    direct = FlowMonitor()
    sliced = FlowPipeline()
    scored: set[int] = set()
    for n, batch in enumerate(batches):
        direct.on_quotes(batch.quotes)
        direct.advance(max(q.time_msc for q in batch.quotes))
        direct.on_deals(batch.deals)
        sliced.feed(batch.quotes, batch.deals)
        if n % 7 == 6:  # worked off now and then, in the smallest slices: one event at a time
            while not sliced.work(0.0):
                pass
            done = False
            while not done:
                toxicities, done = sliced.score(0.0)
                scored.update(tox.login for tox in toxicities)
    sliced.work()
    scored.update(tox.login for tox in sliced.score()[0])
    assert sliced.pending == 0
    assert sum(len(b.deals) for b in batches) > 50
    assert _verdicts(sliced.monitor) == _verdicts(direct)
    assert scored == set(direct.logins())  # every account that traded was scored at least once
    assert sliced.score() == ([], True)  # nothing changed since


def test_a_full_queue_works_off_its_oldest_events_at_once_and_loses_none() -> None:
    pipeline = FlowPipeline(max_pending=5)
    deals = _scalps(7, 8)
    pipeline.feed([Quote("EURUSD", 1.1, 1.1002, T0)], deals)
    assert pipeline.pending == 5
    assert pipeline.worked_inline == 12  # the quote batch and the first 11 deals
    pipeline.work()
    (tox,), done = pipeline.score()
    assert done
    assert (tox.login, tox.score, [label.value for label in tox.labels]) == (7, 55.0, ["scalper"])


async def test_the_aggregator_merges_a_batch_without_scoring_it_and_scores_on_its_period() -> None:
    figures = account_figures()
    aggregator = Aggregator(1, publish_hz=50.0, redis_url=None, flow_period_s=0.2)
    core = aggregator._core
    core.alerts = AlertEngine([AlertRule("scalpers", AlertKind.TOXIC_FLOW, 1.0, label="scalper")])
    await aggregator.start()
    try:
        quote = Quote("EURUSD", 1.1, 1.1002, T0)
        await aggregator.apply([figures], 1.0, _scalps(figures.login, 8), quotes=[quote])
        assert core.flow_work.pending == 17  # queued, not yet seen by the detectors
        assert core.flow.logins() == []

        async def scored() -> dict[str, object]:
            while True:
                rows = (await aggregator.snapshot())["accounts"]
                if rows[0]["flow_label"] == "scalper":
                    return rows[0]
                await asyncio.sleep(0.02)

        row = await asyncio.wait_for(scored(), 5.0)
        assert row["toxicity"] == 55.0
        (alert,) = (await aggregator.alerts())["active"]
        assert (alert["rule_id"], alert["subject"]) == ("scalpers", str(figures.login))
        diffs = await aggregator.diffs_since(0, timeout=1.0)  # the scored row went out in a diff
        assert any(r["flow_label"] == "scalper" for d in diffs for r in d["accounts"])
        assert core.flow_work.pending == 0
    finally:
        await aggregator.close()
