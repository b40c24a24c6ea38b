"""What /metrics makes of an engine's stats row and of the web process's sessions: the stall and
falling-behind figures (last poll, polls, polls merged), rows from an aggregator older than them,
and session counters, one of which fails."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from actors.engine_stats import EngineStats
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
