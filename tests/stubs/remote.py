"""A Ray actor method stood in for by an in-process coroutine, for tests that replace an actor
(the aggregator) while the code calling it (`await actor.method.remote(...)`) stays the real one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Remote:
    """An actor method: `await method.remote(...)` awaits `call(...)`."""

    def __init__(self, call: Callable[..., Any]) -> None:
        self._call = call

    async def remote(self, *args: Any) -> Any:
        return await self._call(*args)
