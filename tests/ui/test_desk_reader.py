"""The dashboard's desk reader is the tenant's, not a tab's: every dashboard of a tenant in one
portal process shares one reader, and however many of them poke it on a book update, one read is
under way at a time and each figure is read at most once per its interval. One reader per tab made
N open dashboards ask the engine and the database N times for the same figures. Today's deal sums
are read by the reader itself, in a thread (the deal log query is tested in
tests/services/test_desk.py); yesterday's sums never pass for today's."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

from veles_ui.state import desk
from veles_ui.state.desk import TODAY_EVERY_S, DeskReader, freshness_view, tenant_desk

DAY = datetime(2026, 12, 7, tzinfo=UTC)


class CountingReader(DeskReader):
    """A reader whose reads count themselves and take a while, like a Ray call or a query."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[int, list[int] | None]] = []

    async def refresh(self, tenant_id: int, closest: list[int] | None = None) -> bool:
        self.reads.append((tenant_id, closest))
        self._today_at = self._fresh_at = self._distance_at = time.monotonic()
        await asyncio.sleep(0.05)
        self.deals = {1: {"n": len(self.reads)}}
        return True


def test_every_dashboard_of_a_tenant_shares_one_reader_and_tenants_do_not() -> None:
    assert tenant_desk(41) is tenant_desk(41)
    assert tenant_desk(41) is not tenant_desk(42)
    assert tenant_desk.cache_info().maxsize == desk.TENANT_READERS  # bounded


def test_a_hundred_pokes_on_one_update_start_one_read() -> None:
    async def scenario() -> tuple[CountingReader, list[int]]:
        reader = CountingReader()
        generations = [reader.generation]
        for _tab in range(100):
            reader.poke(7, [100_001, 100_002])
        assert reader._reading is not None
        await reader._reading
        generations.append(reader.generation)
        for _tab in range(100):  # the next update: nothing is due yet
            reader.poke(7, [100_001, 100_002])
        generations.append(reader.generation)
        return reader, generations

    reader, generations = asyncio.run(scenario())
    assert reader.reads == [(7, [100_001, 100_002])]
    assert generations == [0, 1, 1]  # the tabs show the desk again once, when the read brought news
    assert reader.deals == {1: {"n": 1}}


def test_a_read_that_brought_nothing_new_leaves_the_generation() -> None:
    class Unchanged(CountingReader):
        async def refresh(self, tenant_id: int, closest: list[int] | None = None) -> bool:
            await super().refresh(tenant_id, closest)
            return False

    async def scenario() -> Any:
        reader = Unchanged()
        reader.poke(7)
        assert reader._reading is not None
        await reader._reading
        return reader

    assert asyncio.run(scenario()).generation == 0


class DealLog:
    """The deal log as the reader sees it: counts its reads, notes the thread each ran in, takes a
    while like a query, and can be away."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, datetime]] = []
        self.threads: set[int] = set()
        self.fail = False

    def __call__(self, tenant_id: int, day: datetime) -> dict[int, dict[str, int]]:
        self.calls.append((tenant_id, day))
        self.threads.add(threading.get_ident())
        threading.Event().wait(0.02)
        if self.fail:
            raise ConnectionError("database away")
        return {100_001: {"closed": len(self.calls), "deposits": 0, "withdrawals": 0, "volume": 0}}


def test_many_dashboards_cost_one_deal_log_read_per_interval_off_the_loop() -> None:
    log = DealLog()

    async def scenario() -> DeskReader:
        reader = DeskReader(log, today=lambda: DAY)
        for _tab in range(50):
            reader.poke(7)
        assert reader._reading is not None
        await reader._reading
        assert threading.get_ident() not in log.threads  # read in a worker thread, not on the loop
        for _tab in range(50):  # within the interval: nothing is due
            reader.poke(7)
        return reader

    reader = asyncio.run(scenario())
    assert log.calls == [(7, DAY)]
    assert reader.deal_reads == 1
    assert (reader.deals, reader.deals_day) == ({100_001: {"closed": 1, "deposits": 0, "withdrawals": 0,
                                                           "volume": 0}}, DAY)


def test_a_failed_read_keeps_todays_sums_but_never_yesterdays() -> None:
    log, day = DealLog(), [DAY]

    async def read(reader: DeskReader) -> bool:
        reader._today_at = -TODAY_EVERY_S  # the interval passed
        return await reader.refresh(7)

    async def scenario() -> list[tuple[bool, dict[int, dict[str, int]]]]:
        reader = DeskReader(log, today=lambda: day[0])
        seen = []
        await read(reader)
        log.fail = True
        seen.append((await read(reader), reader.deals))  # the database away: today's sums stay
        day[0] = datetime(2026, 12, 8, tzinfo=UTC)  # midnight passed
        seen.append((await read(reader), reader.deals))  # yesterday's are not today's: gone
        log.fail = False
        seen.append((await read(reader), reader.deals))  # read afresh for the new day
        assert reader.deals_day == day[0]
        return seen

    kept, dropped, fresh = asyncio.run(scenario())
    assert kept[1][100_001]["closed"] == 1
    assert dropped == (True, {})
    assert fresh == (True, {100_001: {"closed": 4, "deposits": 0, "withdrawals": 0, "volume": 0}})
    assert [d for _, d in log.calls] == [DAY, DAY, day[0], day[0]]


def test_a_freshness_badge_names_its_connection_where_named() -> None:
    """The dashboard's badges say which connection as the connections page does (its server), the
    engine's id only where no name is known."""
    info = {"now": 100.0, "connections": [
        {"connection_id": "conn-3", "logins": [], "accounts": 5, "quote_at": 99.0, "deal_at": 90.0},
        {"connection_id": "conn-9", "logins": [], "accounts": 2, "quote_at": None, "deal_at": None}]}
    badges = freshness_view(info, {"conn-3": "https://mt5.broker.com:443"})
    assert [(b["connection_id"], b["name"]) for b in badges] == [
        ("conn-3", "https://mt5.broker.com:443"), ("conn-9", "conn-9")]
    assert badges[0]["quote"] == "1.0 s"
