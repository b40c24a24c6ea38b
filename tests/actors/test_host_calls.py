"""Coalesced calls to a shared account host (`actors/host_calls.py`), on real Ray.

Tenants of one tenant host each look the shared host up and so each hold a handle object of
their own for it; their batches in one turn of the event loop must still go as one call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import ray

from actors.host_calls import coalesced

pytestmark = [pytest.mark.ray]


@ray.remote(num_cpus=0)
class CountingHost:
    """Answers `apply_many` as a host would (an answer and figures per call) and counts calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def apply_many(self, calls: list[tuple[str, list[Any]]]) -> list[tuple[Any, Any]]:
        self.calls.append([key for key, _batches in calls])
        return [(f"answer {key}", f"figures {key}") for key, _batches in calls]

    def seen(self) -> list[list[str]]:
        return self.calls


async def test_batches_of_tenants_holding_different_handles_go_as_one_call(ray_local: None) -> None:
    name = "host:coalescing-test:0"
    CountingHost.options(name=name, lifetime="detached").remote()  # type: ignore[attr-defined]
    try:
        handles = [ray.get_actor(name) for _ in range(3)]  # one per tenant, as each looks it up
        assert handles[0] is not handles[1]
        sent = [coalesced(name, handle).apply_split.remote(f"tenant-{n}", [])
                for n, handle in enumerate(handles)]
        answers = await asyncio.gather(*(answer for answer, _figures in sent))
        figures = await asyncio.gather(*(figures for _answer, figures in sent))
        assert answers == [f"answer tenant-{n}" for n in range(3)]
        assert figures == [f"figures tenant-{n}" for n in range(3)]
        assert await handles[0].seen.remote() == [["tenant-0", "tenant-1", "tenant-2"]]  # one call
    finally:
        ray.kill(ray.get_actor(name))
