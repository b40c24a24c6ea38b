"""The dashboard's desk reader is the tenant's, not a tab's: every dashboard of a tenant in one
portal process shares one reader, and however many of them poke it on a book update, one read is
under way at a time and each figure is read at most once per its interval. One reader per tab made
N open dashboards ask the engine and the database N times for the same figures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from veles_ui.state import desk
from veles_ui.state.desk import DeskReader, tenant_desk


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
