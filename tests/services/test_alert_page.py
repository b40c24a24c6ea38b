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
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from actors.alert_store import AlertStore, tenant_rules
from actors.wire import alert_row
from models.alerts import AlertState, Severity
from models.db import session_scope, tenant_session
from models.tenancy import Tenant
from tests.actors.support import account_figures
from veles.risk.alerts import AlertEngine
from veles.services.alert_page import AlertPage, follow_page, load_page
from veles.services.alert_watch import AlertWatch
from veles.services.alerts import AlertView
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

