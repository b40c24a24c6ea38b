"""The alerts page follows the alert stream, not the database (issue 15): an idle page makes no
query, events applied in order make none and leave the page equal to what the database says, and
a missing number makes exactly one reload.

Real PostgreSQL, the engine's own AlertStore and alert rows as the aggregator publishes them, and
the real AlertWatch; only the aggregator's stream is a stand-in that hands on what the test
publishes (as in test_feed_retry.py). Queries are counted with SQLAlchemy's cursor events.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from sqlalchemy import event
from sqlalchemy.engine import Engine

from actors.alert_store import AlertStore, tenant_rules
from actors.wire import alert_row
from models.alerts import AlertState, Severity
from models.db import session_scope, tenant_session
from models.tenancy import Role, Tenant, User
from tests.actors.support import account_figures
from veles.config import Settings
from veles.risk.alerts import AlertEngine
from veles.services.alert_page import AlertPage, follow_page, load_page
from veles.services.alert_state import publish_alert_states, publish_failures
from veles.services.alert_watch import RELOAD_MARK, STATE_HELD, AlertWatch, alert_state_channel
from veles.services.alerts import AlertView, acknowledge, resolve
from veles.services.live import LiveFeed

IDLE_S = 0.1


class _Stream:
    """The tenant's ordered alert stream as the aggregator would bring it: what the test puts."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def alert_stream(self, _tenant_id: int) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.queue.get()


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine of this process runs while the test does."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    yield seen
    event.remove(Engine, "before_cursor_execute", count)


class _Desk:
    """One tenant whose engine raises and clears stop-outs, stored and numbered as the aggregator does."""

    def __init__(self, database: str) -> None:
        with session_scope(database) as db:
            tenant = Tenant(name=f"alert-page-{uuid.uuid4().hex[:10]}")
            db.add(tenant)
            db.flush()
            assert tenant.id is not None
            self.tenant_id = tenant.id
        self.database = database
        self.engine = AlertEngine(tenant_rules())
        self.store = AlertStore(database, self.tenant_id)

    def account(self, login: int, state: str, level: float) -> list[dict[str, Any]]:
        figures = dataclasses.replace(account_figures(), login=login, state=state, margin_level=level)
        alerts = self.engine.on_account(figures)
        stored = self.store.record(alerts)
        return [alert_row(a, row_id, seq) for a, (row_id, seq) in zip(alerts, stored, strict=True)]

    def page(self, chosen: dict[str, Any]) -> AlertPage:
        with tenant_session(self.database, self.tenant_id) as db:
            return load_page(db, self.tenant_id, chosen)


def _shown(page: AlertPage) -> list[tuple[int, str, str, int, str]]:
    """What the page shows of each alert (the created time comes from the engine's clock)."""
    return [(v.id, v.state.value, v.severity.value, v.repeats, v.message) for v in page.views]


@pytest.mark.postgres
async def test_an_idle_page_reads_nothing_and_events_in_order_need_no_query(
    database: str, statements: list[str],
) -> None:
    desk = _Desk(database)
    chosen = {"limit": 100, "state": "open"}
    stream = _Stream()
    watch = AlertWatch(cast(LiveFeed, stream))
    held: list[AlertPage] = [desk.page(chosen)]
    reloads: list[int] = []
    applied = asyncio.Event()

    async def current() -> AlertPage | None:
        return held[-1]

    async def show(page: AlertPage) -> None:
        held.append(page)
        applied.set()

    async def reload(_page: AlertPage) -> AlertPage:
        reloads.append(1)
        page = await asyncio.to_thread(desk.page, chosen)
        applied.set()
        return page

    task = asyncio.create_task(follow_page(desk.tenant_id, IDLE_S, current, show, reload, watch=watch))
    try:
        await asyncio.sleep(0.2)  # the watch and its stream start
        statements.clear()
        await asyncio.sleep(IDLE_S * 10)  # idle: ten looks at the tab, no query
        assert statements == []

        raised = [*desk.account(100001, "stop_out", 40.0), *desk.account(100002, "margin_call", 90.0)]
        cleared = desk.account(100001, "ok", 400.0)
        assert any(m["status"] == "cleared" for m in cleared)
        statements.clear()
        for message in [*raised, *cleared]:
            applied.clear()
            await stream.queue.put(message)
            await asyncio.wait_for(applied.wait(), 5.0)
        assert statements == [], "events applied in order read nothing"
        assert reloads == []
        assert _shown(held[-1]) == _shown(desk.page(chosen))  # what the database says
        assert [v.subject for v in held[-1].views] == ["100002"]

        # a number lost on the way (the tab's latest-wins box skipped it): one reload, then equal
        lost = desk.account(100003, "stop_out", 30.0)
        after = desk.account(100004, "stop_out", 20.0)
        applied.clear()
        await stream.queue.put(after[0])  # lost[0] never arrives
        await asyncio.wait_for(applied.wait(), 5.0)
        assert reloads == [1]
        assert _shown(held[-1]) == _shown(desk.page(chosen))
        assert {v.subject for v in held[-1].views} >= {"100002", "100003", "100004"}
        assert lost  # its alert is on the page through the reload
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _view(id_: int, state: AlertState = AlertState.OPEN, acked: int | None = None,
          severity: Severity = Severity.CRITICAL) -> AlertView:
    from datetime import UTC, datetime

    return AlertView(id_, None, severity, str(id_), 1.0, "m", state, acked, None, None,
                     datetime(2026, 1, 1, tzinfo=UTC), 1, None, id_, None)


def _event(seq: int, row: int, status: str = "raised", repeats: int = 1, severity: str = "critical",
           **extra: Any) -> dict[str, Any]:
    return {"id": row, "seq": seq, "status": status, "severity": severity, "subject": str(row),
            "value": 55.5, "message": f"event {seq}", "repeats": repeats, "time_msc": 1_790_000_000_000,
            **extra}


def test_applying_events_follows_the_stores_rules() -> None:
    page = AlertPage(10, (_view(7), _view(5, AlertState.ACKNOWLEDGED, acked=3)), "open", None, 100)
    # a new raise goes on top; one the filter hides moves the number on and shows nothing
    after = page.applied(_event(11, 12))
    assert after is not None
    assert [v.id for v in after.views] == [12, 7, 5]
    assert after.seq == 11
    assert page.applied(_event(11, 13, severity="info")) is not None
    hidden = AlertPage(10, (), "open", "critical", 100).applied(_event(11, 13, severity="info"))
    assert hidden is not None
    assert (hidden.seq, hidden.views) == (11, ())
    # a clear resolves the row: it leaves an "open" page, stays on an "all" page as resolved
    gone = page.applied(_event(11, 7, status="cleared"))
    assert gone is not None
    assert [v.id for v in gone.views] == [5]
    everything = dataclasses.replace(page, state=None).applied(_event(11, 7, status="cleared"))
    assert everything is not None
    assert everything.views[0].state is AlertState.RESOLVED
    # a repeat folds into its row: latest value and message, the count; acknowledged stays so
    repeat = dataclasses.replace(page, state=None).applied(_event(11, 5, repeats=4))
    assert repeat is not None
    row = next(v for v in repeat.views if v.id == 5)
    assert (row.state, row.repeats, row.message, row.value) == (AlertState.ACKNOWLEDGED, 4, "event 11", 55.5)
    hides = page.applied(_event(11, 5, repeats=4))  # acknowledged: not on an "open" page
    assert hides is not None
    assert [v.id for v in hides.views] == [7]
    # a missing value is NaN, as the store writes it
    nan = page.applied({**_event(11, 20), "value": None})
    assert nan is not None
    assert math.isnan(nan.views[0].value)


def test_only_the_database_can_answer_these() -> None:
    page = AlertPage(10, (_view(7),), "open", None, 100)
    assert page.applied(_event(12, 8)) is None  # number 11 is missing
    assert page.applied(_event(11, 8, reloaded=True)) is None  # the stream's own reload
    assert page.applied(_event(11, 9, repeats=3)) is None  # a repeat of a row the page does not hold
    resolved = AlertPage(10, (), "resolved", None, 100)
    assert resolved.applied(_event(11, 9, status="cleared")) is None  # it may belong on this page
    assert page.applied({**_event(11, 8), "severity": "loud"}) is None  # not an alert the store wrote
    assert page.applied({**_event(11, 8), "status": "exploded"}) is None


def test_what_the_page_already_reflects_or_cannot_store_changes_nothing() -> None:
    page = AlertPage(10, (_view(7),), "open", None, 100)
    assert page.applied(_event(10, 7, status="cleared")) is page  # already in the load
    assert page.applied({"seq": None, "id": None, "status": "raised"}) is page  # not stored
    assert page.applied("junk") is page
    assert page.applied(_event(11, 99, status="cleared")).seq == 11  # type: ignore[union-attr]


def test_the_page_holds_at_most_its_limit() -> None:
    page = AlertPage(10, tuple(_view(i) for i in range(5, 0, -1)), None, None, 5)
    after = page.applied(_event(11, 6))
    assert after is not None
    assert [v.id for v in after.views] == [6, 5, 4, 3, 2]



# -- acknowledged or resolved by a person: every other page applies it (alert_state) ----------


async def _subscribed(settings: Settings, tenant_id: int) -> None:
    """Wait until a web process follows the tenant's alert state channel (with Redis)."""
    if not settings.redis_url:
        return
    client = aioredis.Redis.from_url(settings.redis_url)
    channel = alert_state_channel(settings.redis_prefix, tenant_id)
    try:
        for _ in range(100):
            counts = await client.pubsub_numsub(channel)  # type: ignore[no-untyped-call]
            if counts and counts[0][1] > 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the alert state channel was never followed")
    finally:
        await client.aclose()


@pytest.mark.postgres
@pytest.mark.parametrize("with_redis", [False, True], ids=["in-process", "redis"])
async def test_a_dealers_acknowledgement_reaches_the_other_dealers_page_without_a_query(
    database: str, statements: list[str], with_redis: bool, request: pytest.FixtureRequest,
) -> None:
    """Dealer A acknowledges, then resolves; dealer B's open page (another web process with
    Redis) shows each at once, from the published change, reading nothing; B's bell wakes."""
    desk = _Desk(database)
    first, second = (int(desk.account(login, "margin_call", 90.0)[0]["id"]) for login in (100001, 100002))
    with session_scope(database) as db:
        dealer = User(tenant_id=desk.tenant_id, email=f"dealer-a-{desk.tenant_id}@broker.test",
                      password_hash="x", role=Role.RISK_MANAGER)
        db.add(dealer)
        db.flush()
        dealer_id = int(dealer.id or 0)
    if with_redis:
        redis_url = request.getfixturevalue("redis_url")
        settings = Settings(_env_file=None, database_url=database, redis_url=redis_url,
                            veles_redis_prefix=os.environ["VELES_REDIS_PREFIX"])
    else:
        settings = Settings(_env_file=None, database_url=database, redis_url=None)
    a_watch = AlertWatch(cast(LiveFeed, _Stream()), settings=settings)  # dealer A's web process
    b_watch = a_watch if not with_redis else AlertWatch(cast(LiveFeed, _Stream()), settings=settings)
    pages = {"all": [desk.page({"limit": 100})], "open": [desk.page({"limit": 100, "state": "open"})]}
    reloads: list[str] = []
    shown = asyncio.Event()

    def follower(name: str) -> Any:
        async def current() -> AlertPage | None:
            return pages[name][-1]

        async def show(page: AlertPage) -> None:
            pages[name].append(page)
            shown.set()

        async def reload(_page: AlertPage) -> AlertPage | None:
            reloads.append(name)
            return None

        return follow_page(desk.tenant_id, IDLE_S, current, show, reload, watch=b_watch)

    async def act(action: Any, alert_id: int) -> list[str]:
        def stored() -> AlertView:
            with tenant_session(database, desk.tenant_id) as db:
                return cast(AlertView, action(db, desk.tenant_id, alert_id, dealer_id))

        view = await asyncio.to_thread(stored)  # committed, as the portal and the API do
        statements.clear()
        before = {name: len(held) for name, held in pages.items()}
        assert await asyncio.to_thread(publish_alert_states, desk.tenant_id, [view], settings=settings,
                                       watch=a_watch) == 1
        while any(len(held) == before[name] for name, held in pages.items()):  # both pages show it
            shown.clear()
            await asyncio.wait_for(shown.wait(), 5.0)
        return list(statements)

    tasks = [asyncio.create_task(follower("all")), asyncio.create_task(follower("open"))]
    try:
        async with b_watch.watch(desk.tenant_id, IDLE_S) as bell:
            await asyncio.sleep(0.2)  # the watchers start
            await _subscribed(settings, desk.tenant_id)
            assert await act(acknowledge, first) == [], "the change is applied, not read"
            woke = await asyncio.wait_for(anext(bell), 5.0)
            while woke is None:  # an idle look before the change
                woke = await asyncio.wait_for(anext(bell), 5.0)
            assert await act(resolve, second) == []
        assert reloads == []
        assert _shown(pages["all"][-1]) == _shown(desk.page({"limit": 100}))  # what the database says
        assert _shown(pages["open"][-1]) == _shown(desk.page({"limit": 100, "state": "open"})) == []
        held = {v.id: v for v in pages["all"][-1].views}
        assert (held[first].state, held[first].acknowledged_by) == (AlertState.ACKNOWLEDGED, dealer_id)
        assert held[first].acknowledged_at is not None
        assert (held[second].state, held[second].acknowledged_by) == (AlertState.RESOLVED, dealer_id)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _change(row: int, state: str, seq: int | None, severity: str = "critical",
            **extra: Any) -> dict[str, Any]:
    return {"kind": "state", "id": row, "seq": seq, "state": state, "severity": severity,
            "acknowledged_by": 3, "acknowledged_at": "2026-01-01T00:00:01+00:00",
            "resolved_at": "2026-01-01T00:00:02+00:00" if state == "resolved" else None, **extra}


def test_a_change_is_applied_when_the_page_can_say_it_exactly() -> None:
    page = AlertPage(10, (_view(7), _view(5, AlertState.ACKNOWLEDGED, acked=3)), None, None, 100)
    acked = page.applied(_change(7, "acknowledged", 7))
    assert acked is not None
    assert acked.seq == 10
    assert (acked.views[0].state, acked.views[0].acknowledged_by) == (AlertState.ACKNOWLEDGED, 3)
    resolved = page.applied(_change(5, "resolved", 5))
    assert resolved is not None
    assert resolved.views[1].state is AlertState.RESOLVED
    assert resolved.views[1].resolved_at is not None
    # on an "open" page the acknowledged alert leaves (the page is not full)
    opened = dataclasses.replace(page, state="open", views=page.views[:1])
    left = opened.applied(_change(7, "acknowledged", 7))
    assert left is not None
    assert left.views == ()
    # already shown, overtaken by a later change, or junk: nothing changes
    assert page.applied(_change(5, "acknowledged", 5)) is page
    assert resolved.applied(_change(5, "acknowledged", 5)) is resolved
    assert page.applied(_change(7, "exploded", 7)) is page
    assert page.applied({**_change(7, "acknowledged", 7), "acknowledged_at": 5}) is page
    assert page.applied({**_change(7, "acknowledged", 7), "id": "7"}) is page
    # not on an "open" critical page, and it would not fit it: nothing to read
    critical = AlertPage(10, (), "open", "critical", 100)
    assert critical.applied(_change(9, "acknowledged", 9)) is critical


def test_only_the_database_can_answer_these_changes() -> None:
    page = AlertPage(10, (_view(7),), None, None, 100)
    assert page.applied(_change(7, "acknowledged", 11)) is None  # after an event the page has not applied
    assert page.applied(_change(7, "acknowledged", 6)) is None  # the page applied a later event on it
    assert page.applied(_change(9, "acknowledged", 9)) is None  # belongs on the page, not held
    assert page.applied({"kind": "state", "reload": True, "id": None, "seq": None}) is None  # fell behind
    full = AlertPage(10, (_view(7),), "open", None, 1)
    assert full.applied(_change(7, "acknowledged", 7)) is None  # a full page: the next row is in the db


def test_a_publish_that_fails_is_counted_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    down = Settings(_env_file=None, database_url="sqlite://", redis_url="redis://127.0.0.1:1/0",
                    veles_redis_prefix="test-down:")
    before = publish_failures()
    assert publish_alert_states(5, [_view(7, AlertState.ACKNOWLEDGED, acked=3)], settings=down) == 0
    assert publish_failures() == before + 1
    assert "stored but not published" in caplog.text


async def test_a_watcher_that_falls_behind_gets_one_reload_marker() -> None:
    watch = AlertWatch(cast(LiveFeed, _Stream()),
                       settings=Settings(_env_file=None, database_url="sqlite://", redis_url=None))
    async with watch.alerts(5, IDLE_S) as events:
        for i in range(STATE_HELD + 10):
            watch.deliver_states(5, [_change(i + 1, "acknowledged", 1)])
        await asyncio.sleep(0.05)  # the hand-offs run on the loop
        first = await asyncio.wait_for(anext(events), 1.0)
        assert first == RELOAD_MARK
        rest = 0
        while (message := await asyncio.wait_for(anext(events), 1.0)) is not None:
            rest += 1
            assert message["kind"] == "state"
        assert rest == 10 - 1  # after the marker only what arrived once it was held
