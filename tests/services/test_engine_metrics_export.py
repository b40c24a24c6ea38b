"""What /metrics makes of an engine's stats row and of the web process's sessions: the stall and
falling-behind figures (last poll, polls, polls merged), rows from an aggregator older than them,
and session counters, one of which fails."""

from __future__ import annotations

import asyncio
import contextlib
import time

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from actors.engine_stats import EngineStats, engine_stats_key, forget
from veles.api.health import SessionCollector
from veles.services import web_sessions
from veles.services.engine_metrics import EngineCollector


def _exposition(*collectors: object) -> str:
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_the_supervisors_poll_figures_are_exported_per_tenant() -> None:
    stats = EngineStats(7)
    polled = time.time()
    stats.supervisor = {"account_actors": 4, "recovering": 1, "connections": 2, "restarts": {"host": 1},
                        "polls": 120, "polls_merged": 3, "last_poll_at": polled}
    text = _exposition(EngineCollector([stats.as_row()]))
    assert 'veles_engine_polls_total{tenant="7"} 120.0' in text
    assert 'veles_engine_polls_merged_total{tenant="7"} 3.0' in text
    samples = {(s.name, s.labels.get("tenant")): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples["veles_engine_last_poll_timestamp_seconds", "7"] == polled
    assert 'veles_engine_connections{tenant="7"} 2.0' in text
    assert 'veles_engine_live_actors{tenant="7"} 3.0' in text


def test_a_row_without_poll_figures_exports_no_last_poll() -> None:
    """Before the supervisor's first report (or from an aggregator that predates them) the row has
    no last poll: no sample, rather than a 1970 timestamp that would fire the stall alert."""
    row = EngineStats(8).as_row()
    for key in ("polls", "polls_merged", "last_poll_at"):
        row.pop(key)
    text = _exposition(EngineCollector([row]))
    assert 'veles_engine_polls_total{tenant="8"} 0.0' in text
    assert "veles_engine_last_poll_timestamp_seconds{" not in text
    assert "# TYPE veles_engine_last_poll_timestamp_seconds gauge" in text


def test_sessions_are_counted_by_kind_and_a_failing_counter_is_left_out() -> None:
    def broken() -> int:
        raise RuntimeError("namespace gone")

    web_sessions.register("test-tabs", lambda: 5)
    web_sessions.register("test-broken", broken)
    try:
        counts = web_sessions.session_counts()
        assert counts["test-tabs"] == 5
        assert "test-broken" not in counts
        text = _exposition(SessionCollector({**counts, "integrations": 2}))
        assert 'veles_web_sessions{kind="test-tabs"} 5.0' in text
        assert 'veles_web_sessions{kind="integrations"} 2.0' in text
    finally:
        web_sessions._COUNTERS.pop("test-tabs", None)
        web_sessions._COUNTERS.pop("test-broken", None)


async def test_a_paused_engines_stats_outlive_the_stall_alert_and_a_stopped_one_leaves_none(
        redis_url: str) -> None:
    """The stall alert needs the last poll time of an engine that stopped polling: 20 s behind, for
    10 s, plus scrapes. A key that expired after 30 s took that series away just as the alert was
    due (the operations browser test failed so in CI). A tenant stopped on purpose deletes its key
    instead, so no alert fires for it."""
    stats = EngineStats(9)
    stats.supervisor = {"last_poll_at": time.time()}
    prefix = "test-engine-stats:"
    key = engine_stats_key(prefix, 9)
    client = aioredis.Redis.from_url(redis_url)
    writer = asyncio.create_task(stats.keep_in_redis(redis_url, prefix))
    try:
        for _ in range(100):
            if await client.exists(key):
                break
            await asyncio.sleep(0.05)
        assert await client.ttl(key) > 20 + 10 + 60, "a paused engine's stats must outlive the stall alert"
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        assert not await client.exists(key)

        await client.set(key, "{}")  # a killed aggregator process cannot delete its own key
        await forget(redis_url, prefix, 9)
        assert not await client.exists(key)
    finally:
        writer.cancel()
        await client.delete(key)
        await client.aclose()
