"""Toxic flow through the real engine: simulated broker → supervisor → account hosts →
aggregator's detectors → rows, a trader's profile, and a stored toxic_flow rule's alert."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from models.alerts import AlertKind, AlertRule
from models.db import session_scope
from veles.config import Settings
from veles.risk.flow.news import NewsRule
from veles.services.demo import seed_demo
from veles.services.engine import simulated_gateway, start_engine, stop_engine
from veles.services.live import LiveFeed

pytestmark = [pytest.mark.ray, pytest.mark.redis]
ACCOUNTS = 40
THRESHOLD = 5.0  # a score the simulated scalpers and arbitrageurs pass within seconds
NEWS_EVERY_S = 4.0  # releases this often (simulated seconds), so news traders show within a minute


@pytest.fixture(scope="module")
async def engine(
    ray_local: None, redis_url_module: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Settings, int, int]]:
    """A running engine for one tenant with one stored toxic_flow rule."""
    database = tmp_path_factory.mktemp("engine-flow") / "veles.db"
    settings = Settings(database_url=f"sqlite:///{database}", redis_url=redis_url_module,
                        ray_namespace="veles-test", gateway_interval=0.1, publish_hz=10)
    tenant_id = seed_demo(settings)
    with session_scope(settings.database_url) as db:
        rule = AlertRule(tenant_id=tenant_id, kind=AlertKind.TOXIC_FLOW, threshold=THRESHOLD)
        db.add(rule)
        db.flush()
        rule_id = rule.id
    assert rule_id is not None
    gateway = simulated_gateway(settings, tenant_id, ACCOUNTS)
    gateway = dataclasses.replace(gateway, options=gateway.options | {"news_every": NEWS_EVERY_S})
    await start_engine(settings, simulated_accounts=ACCOUNTS, gateway_for=lambda _tenant: gateway)
    yield settings, tenant_id, rule_id
    await stop_engine(settings)


async def test_rows_carry_toxicity_and_a_toxic_flow_rule_raises(engine: tuple[Settings, int, int]) -> None:
    settings, tenant_id, rule_id = engine
    feed = LiveFeed(settings)
    try:
        async def first_toxic() -> dict[str, object]:
            async for replica in feed.watch(tenant_id):
                toxic = [row for row in replica.rows.values() if row["toxicity"] >= THRESHOLD]
                if toxic:
                    return max(toxic, key=lambda row: float(row["toxicity"]))  # type: ignore[arg-type]
            raise AssertionError("the feed ended")

        row = await asyncio.wait_for(first_toxic(), 90)
        login = int(row["login"])  # type: ignore[call-overload]
        replica = feed.replica(tenant_id)
        assert all({"toxicity", "flow_label", "flow_labels", "flow_pnl", "risk_score"} <= set(r)
                   for r in replica.rows.values())
        assert all(0.0 <= r["toxicity"] <= 100.0 for r in replica.rows.values())
        # the rule raised for an account at or above its threshold, with its score as the value
        raised: list[dict[str, object]] = []
        for _ in range(100):
            alerts = await feed.alerts(tenant_id)
            raised = [a for a in alerts["active"] if a["rule_id"] == str(rule_id)]
            if raised:
                break
            await asyncio.sleep(0.2)
        assert raised, "no toxic_flow alert within 20 s of a row crossing the threshold"
        assert all(a["kind"] == "toxic_flow" and float(a["value"]) >= THRESHOLD for a in raised)  # type: ignore[arg-type]
        # the profile explains the score: the points of its detectors make it
        profile = await feed.flow_profile(tenant_id, login)
        assert profile["login"] == login
        points = sorted((f["points"] for f in profile["findings"]), reverse=True)
        assert profile["toxicity"] >= points[0] > 0
        assert profile["toxicity"] == pytest.approx(min(100.0, points[0] + 0.25 * sum(points[1:])), abs=0.11)
    finally:
        await feed.aclose()


async def test_the_news_label_fires_live_from_the_simulators_calendar(
    engine: tuple[Settings, int, int],
) -> None:
    """The releases on the simulated broker's calendar reach the aggregator's news detector with
    the batches (they once stayed in the gateway and the label never fired live)."""
    settings, tenant_id, _ = engine
    feed = LiveFeed(settings)
    try:
        async def first_news() -> dict[str, object]:
            async for replica in feed.watch(tenant_id):
                for row in replica.rows.values():
                    if "news" in str(row["flow_labels"]).split(","):
                        return row
            raise AssertionError("the feed ended")

        row = await asyncio.wait_for(first_news(), 120)
        profile = await feed.flow_profile(tenant_id, int(row["login"]))  # type: ignore[call-overload]
        news = next(f for f in profile["findings"] if f["detector"] == "news")
        assert news["fired"]
        assert news["numbers"]["news_entries"] >= NewsRule().min_entries
    finally:
        await feed.aclose()
