"""The engine's metrics as the web tier's `/metrics` exports them, read without blocking.

The numbers live where they happen: each tenant's aggregator keeps lag, alerts and (from its
supervisor) actor counts and restarts (`actors/engine_stats.py`); this process counts its own
pushes to browser tabs and integrations (`count_push`). A scrape reads the engines' numbers with
one async Redis round trip when REDIS_URL is set (each aggregator writes a key every 2 s), or
asks each active tenant's aggregator over Ray otherwise (async calls, bounded by
`RAY_TIMEOUT_S`); a web process that cannot reach the engine exports `veles_engine_reachable 0`
and its own counters (pushes, and its followers' retries and give-ups: `feed_retry`), never an
error or a stall.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.engine_stats import KEY_PREFIX, engine_stats_key
from actors.tenant_host import TenantNotHosted
from veles.config import Settings, redis_name
from veles.services.feed_retry import FEEDS, GIVE_UP_S, retries
from veles.services.feed_retry import gave_up as gave_up_count
from veles.services.ray_runtime import join, tenant_actor
from veles.services.tenants import active_tenants

log = logging.getLogger(__name__)

RAY_TIMEOUT_S = 2.0
_PUSHES: Counter[str] = Counter()  # this process's pushes, by channel ("browser", "integration")

Row = dict[str, Any]


def count_push(channel: str, n: int = 1) -> None:
    """Count pushes this process made to a channel: a book update to one browser tab
    ("browser"), an event to a tenant's integrations room ("integration")."""
    _PUSHES[channel] += n


async def _from_redis(url: str, prefix: str) -> list[Row]:
    client = aioredis.Redis.from_url(url)
    try:
        pattern = redis_name(prefix, f"{KEY_PREFIX}*")
        keys = [key async for key in client.scan_iter(match=pattern, count=500)]
        values = await client.mget(keys) if keys else []
    finally:
        await client.aclose()
    rows = []
    for key, value in zip(keys, values, strict=True):
        if value is None:  # expired between the scan and the read
            continue
        try:
            row = json.loads(value)
        except ValueError:
            row = None
        if isinstance(row, dict):
            rows.append(row)
        else:  # a stray writer's junk: skipped, the other tenants' stats are still shown
            log.warning("engine stats: skipped %r, which is not an engine's stats: %.100r", key, value)
    return rows


async def _from_ray(settings: Settings) -> list[Row]:
    await join(settings)
    tenants = await asyncio.to_thread(active_tenants, settings.database_url)

    async def one(tenant_id: int) -> Row | None:
        try:
            aggregator = await tenant_actor(settings, tenant_id, "aggregator")
            if aggregator is None:  # no engine for this tenant now
                return None
            row: Row = await asyncio.wait_for(aggregator.stats.remote(), RAY_TIMEOUT_S)
            return row
        except (TenantNotHosted, TimeoutError):  # its engine stopped meanwhile, or it is too slow
            return None

    rows = await asyncio.gather(*(one(tenant_id) for tenant_id, _ in tenants))
    return [row for row in rows if row is not None]


async def tenant_engine_stats(settings: Settings, tenant_id: int) -> Row | None:
    """One tenant's engine stats (the portal's connections page reads its reconciliation), from
    its Redis key or its aggregator over Ray; None when its engine does not run or cannot be
    reached. Async all the way: never blocks the caller's loop."""
    try:
        if settings.redis_url:
            client = aioredis.Redis.from_url(settings.redis_url)
            try:
                value = await client.get(engine_stats_key(settings.redis_prefix, tenant_id))
            finally:
                await client.aclose()
            return json.loads(value) if value is not None else None
        aggregator = await tenant_actor(settings, tenant_id, "aggregator")
        if aggregator is None:  # no engine for this tenant now
            return None
        row: Row = await asyncio.wait_for(aggregator.stats.remote(), RAY_TIMEOUT_S)
        return row
    except (TenantNotHosted, TimeoutError):  # its engine stopped meanwhile, or it is too slow
        return None
    except Exception as exc:  # Redis or Ray away: the page says the engine is not reachable
        log.warning("tenant %s: engine stats unavailable: %s", tenant_id, exc)
        return None


async def read_engine_stats(settings: Settings) -> list[Row] | None:
    """Every running tenant engine's stats; None when the engines cannot be reached at all."""
    try:
        if settings.redis_url:
            return await _from_redis(settings.redis_url, settings.redis_prefix)
        return await _from_ray(settings)
    except Exception as exc:  # Redis or Ray away: the scrape still answers, saying so
        log.warning("engine metrics unavailable: %s", exc)
        return None


def _reconciliation(stats: list[Row]) -> Iterator[Metric]:
    """Per connection: checks and failed checks, accounts drifting (at two checks in a row), the
    largest money drift among them in minor units, and when the last check ran."""
    labels = ["tenant", "connection"]
    checks = CounterMetricFamily("veles_reconciliation_checks",
                                 "Reconciliation checks against the MT5 server's own figures.", labels=labels)
    failures = CounterMetricFamily("veles_reconciliation_failures",
                                   "Checks whose server read failed (refused, malformed, timed out).",
                                   labels=labels)
    drifting = GaugeMetricFamily("veles_reconciliation_drifting_accounts",
                                 "Accounts whose figures differ from the server's by more than one minor "
                                 "unit at two checks in a row.", labels=labels)
    once = GaugeMetricFamily("veles_reconciliation_drifting_once_accounts",
                             "Accounts that differed at the last check only (update lag, or drift starting).",
                             labels=labels)
    worst = GaugeMetricFamily("veles_reconciliation_max_drift_minor_units",
                              "The largest money drift among drifting accounts, in minor units of its "
                              "currency.", labels=labels)
    last = GaugeMetricFamily("veles_reconciliation_last_check_timestamp_seconds",
                             "When the last check ran (Unix time).", labels=labels)
    for row in stats:
        for view in row.get("reconciliation", []):
            key = [str(row["tenant_id"]), str(view["connection_id"])]
            checks.add_metric(key, view["checks"])
            failures.add_metric(key, view["failures"])
            drifting.add_metric(key, view["drifting"])
            once.add_metric(key, view["drifting_once"])
            worst.add_metric(key, view["max_drift_minor"])
            if view["last_check"] is not None:
                last.add_metric(key, view["last_check"])
    yield from (checks, failures, drifting, once, worst, last)


class EngineCollector(Collector):
    """Prometheus families for one scrape: the engines' stats and this process's pushes."""

    def __init__(self, stats: list[Row] | None) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        """One family per metric, one sample per tenant (and severity, cause)."""
        stats = self._stats or []
        reachable = GaugeMetricFamily("veles_engine_reachable", "1 if this scrape read the engines' stats.")
        reachable.add_metric([], 0 if self._stats is None else 1)
        yield reachable
        lag = HistogramMetricFamily(
            "veles_engine_lag_seconds", "Seconds from a gateway batch to the book diff carrying it.",
            labels=["tenant"])
        actors = GaugeMetricFamily("veles_engine_live_actors", "Account actors serving (not being restored).",
                                   labels=["tenant"])
        recovering = GaugeMetricFamily("veles_engine_recovering_actors", "Account actors being restored.",
                                       labels=["tenant"])
        restarts = CounterMetricFamily("veles_engine_actor_restarts", "Actor restarts, by cause.",
                                       labels=["tenant", "cause"])
        alerts = CounterMetricFamily("veles_engine_alerts_raised", "Alerts raised, by severity.",
                                     labels=["tenant", "severity"])
        connections = GaugeMetricFamily("veles_engine_connections", "MT5 connections the engine feeds.",
                                        labels=["tenant"])
        polls = CounterMetricFamily("veles_engine_polls", "Gateway polls made.", labels=["tenant"])
        behind = CounterMetricFamily("veles_engine_polls_merged",
                                     "Polls the engine fell behind on (due together, sent as one batch).",
                                     labels=["tenant"])
        last_poll = GaugeMetricFamily("veles_engine_last_poll_timestamp_seconds",
                                      "When the engine last polled its gateways (Unix time); falls behind "
                                      "the clock when the engine is paused or hung.", labels=["tenant"])
        for row in stats:
            tenant = str(row["tenant_id"])
            bounds = [str(b) for b in row["lag_buckets"]] + ["+Inf"]
            lag.add_metric([tenant], list(zip(bounds, row["lag_cumulative"], strict=True)), row["lag_sum"])
            actors.add_metric([tenant], row["account_actors"] - row["recovering"])
            recovering.add_metric([tenant], row["recovering"])
            for cause, n in row["restarts"].items():
                restarts.add_metric([tenant, cause], n)
            for severity, n in row["alerts"].items():
                alerts.add_metric([tenant, severity], n)
            connections.add_metric([tenant], row.get("connections", 0))
            polls.add_metric([tenant], row.get("polls", 0))
            behind.add_metric([tenant], row.get("polls_merged", 0))
            if row.get("last_poll_at"):  # 0 until the supervisor's first report
                last_poll.add_metric([tenant], row["last_poll_at"])
        yield from (lag, actors, recovering, restarts, alerts, connections, polls, behind, last_poll)
        yield from _reconciliation(stats)
        pushes = CounterMetricFamily("veles_pushes", "Pushes made by this web process, by channel.",
                                     labels=["channel"])
        for channel in ("browser", "integration"):
            pushes.add_metric([channel], _PUSHES[channel])
        yield pushes
        again = CounterMetricFamily("veles_feed_retries", "Times a follower of this web process "
                                    "(bus pump, book feed, relay) was started again after a failure.",
                                    labels=["feed"])
        gave_up = CounterMetricFamily("veles_feed_gave_up", "Followers of this web process that gave up "
                                      f"after failing for {GIVE_UP_S:.0f} s; the next watcher starts them "
                                      "again.", labels=["feed"])
        for feed in FEEDS:
            again.add_metric([feed], retries(feed))
            gave_up.add_metric([feed], gave_up_count(feed))
        yield from (again, gave_up)
