"""Report status notices on the real PostgreSQL and Redis: each change of a tenant's reports is
told to that tenant's watchers only (queued, running, ready with who asked), without Redis by
reading the database and with Redis woken by the worker's bus message at once; and the API's
socket.io `/integrations` namespace emits `report` to the tenant's sockets of a real uvicorn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import socketio

from models.db import upgrade
from tests.api.servers import api_server, environment_of
from tests.models.conftest import reset_schema
from tests.reports.conftest import NoEngine, seed_brokers
from veles.api.realtime import NAMESPACE, SOCKETIO_PATH
from veles.bus import RedisBus
from veles.config import Settings
from veles.reports.runner import report_topic, run_one
from veles.reports.settings import ReportSettings
from veles.reports.storage import open_storage
from veles.services import reports as service
from veles.services.auth import Identity, issue_token
from veles.services.report_notices import Notice, ReportFeed, Watch

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
PORT = 3222  # this module's API server (the report helpers' port range)
WAIT = 30.0


@pytest.fixture(scope="module")
def db(pg_url: str) -> str:
    reset_schema(pg_url)
    upgrade(pg_url)
    return pg_url


@pytest.fixture(scope="module")
def callers(db: str) -> dict[str, service.Caller]:
    return {key: service.Caller(tenant, user, role) for key, (tenant, user, role) in seed_brokers(db).items()}


@pytest.fixture(scope="module")
def rsettings(tmp_path_factory: pytest.TempPathFactory) -> ReportSettings:
    return ReportSettings(storage_dir=tmp_path_factory.mktemp("notices"))


def alerts_log() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"type": "alerts_log", "format": "xlsx", "start": (now - timedelta(hours=2)).isoformat(),
            "end": now.isoformat()}


async def next_notice(notices: Watch, timeout: float = WAIT) -> Notice:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notice = await asyncio.wait_for(anext(notices), deadline - time.monotonic())
        if notice is not None:
            return notice
    pytest.fail("no notice came")


def render_next(settings: Settings, rsettings: ReportSettings, announce: Any) -> int | None:
    storage = open_storage(rsettings)
    return run_one(settings.database_url, rsettings, "notice-test", NoEngine(), storage, announce)


async def test_each_change_goes_to_its_tenant_only_without_redis(
    db: str, callers: dict[str, service.Caller], rsettings: ReportSettings
) -> None:
    settings = Settings(_env_file=None, database_url=db, redis_url=None)
    feed = ReportFeed(settings, poll_s=0.1)
    alpha, beta = callers["Alpha-risk_manager"], callers["Beta-risk_manager"]
    async with feed.watch(alpha.tenant_id) as mine, feed.watch(beta.tenant_id, 0.2) as theirs:
        await asyncio.sleep(0.5)  # the first read is the baseline: changes after it are told
        report = await asyncio.to_thread(service.request_report, settings, rsettings, alpha, alerts_log())
        queued = await next_notice(mine)
        assert (queued.report_id, queued.status, queued.requested_by) == (report.id, "queued", alpha.user_id)
        assert await asyncio.to_thread(render_next, settings, rsettings, lambda *_: None) == report.id
        seen = [await next_notice(mine)]
        if seen[0].status == "running":  # a fast render can finish before the next read
            seen.append(await next_notice(mine))
        ready = seen[-1]
        assert (ready.report_id, ready.status) == (report.id, "ready")
        assert (ready.type, ready.format) == ("alerts_log", "xlsx")
        assert ready.message()["tenant_id"] == alpha.tenant_id
        for _ in range(3):  # Beta's watcher only ever idles
            assert await anext(theirs) is None


async def test_with_redis_the_workers_message_wakes_the_feed_at_once(
    db: str, callers: dict[str, service.Caller], rsettings: ReportSettings, redis_url: str
) -> None:
    settings = Settings(_env_file=None, database_url=db, redis_url=redis_url)
    feed = ReportFeed(settings, safety_s=60.0)  # only the bus can wake it within the test
    alpha = callers["Alpha-risk_manager"]
    bus = RedisBus(redis_url, settings.redis_prefix)
    loop = asyncio.get_running_loop()

    def announce(tenant_id: int, message: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(bus.publish(report_topic(tenant_id), message), loop).result(5)

    try:
        async with feed.watch(alpha.tenant_id) as notices:
            await asyncio.sleep(1.0)  # baseline read and bus subscription
            report = await asyncio.to_thread(service.request_report, settings, rsettings, alpha, alerts_log())
            started = time.monotonic()
            assert await asyncio.to_thread(render_next, settings, rsettings, announce) == report.id
            statuses = []
            while "ready" not in statuses:
                notice = await next_notice(notices, timeout=10.0)
                assert notice.report_id == report.id
                statuses.append(notice.status)
            assert time.monotonic() - started < 10.0  # woken by the message, not the 60 s safety read
    finally:
        await bus.aclose()


@pytest.fixture(scope="module")
def api(db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    """The API in its own uvicorn process, without Redis, on this module's port."""
    settings = Settings(_env_file=None, database_url=db, redis_url=None)
    logs = Path(tmp_path_factory.mktemp("notices-api"))
    with api_server(environment_of(settings), logs / "api.log", PORT) as url:
        yield url, settings


async def test_the_integrations_socket_gets_report_events_of_its_tenant_only(
    api: tuple[str, Settings], callers: dict[str, service.Caller], rsettings: ReportSettings
) -> None:
    url, settings = api
    received: dict[str, list[dict[str, Any]]] = {"Alpha": [], "Beta": []}
    clients = []
    for broker in received:
        caller = callers[f"{broker}-viewer"]  # viewers may watch: VIEW_RISK is enough
        token = issue_token(Identity(caller.user_id, caller.tenant_id, caller.role, f"{broker}@test"),
                            settings.secret_key.get_secret_value(), 30)
        client = socketio.AsyncClient(reconnection=False)
        client.on("report", lambda data, box=received[broker]: box.append(data), namespace=NAMESPACE)
        await client.connect(url, socketio_path=SOCKETIO_PATH, namespaces=[NAMESPACE], auth={"token": token},
                             transports=["websocket"], wait_timeout=15)
        clients.append(client)
    try:
        await asyncio.sleep(2.0)  # the relay's baseline read
        alpha = callers["Alpha-risk_manager"]
        report = await asyncio.to_thread(service.request_report, settings, rsettings, alpha, alerts_log())
        assert await asyncio.to_thread(render_next, settings, rsettings, lambda *_: None) == report.id
        deadline = time.monotonic() + WAIT
        while not any(e["report_id"] == report.id and e["status"] == "ready" for e in received["Alpha"]):
            assert time.monotonic() < deadline, received
            await asyncio.sleep(0.1)
        assert received["Beta"] == []
    finally:
        for client in clients:
            await client.disconnect()
