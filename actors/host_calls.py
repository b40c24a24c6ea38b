"""One shared account host as every tenant of a tenant host calls it: batches coalesced.

Why. With many tenants in one tenant host (`actors/tenant_host.py`), each tenant's batch was its
own Ray call to each shared account host it touched: a hundred small tenants at 4 batches/s made
hundreds of calls a second, each costing more CPU than the risk math it carried. Here the batches
every tenant sends to one host in one turn of the event loop go as one call (`apply_many`).

Order. Calls from one process reach an actor in the order they were submitted, and the
supervisor relies on it (a restore lands exactly between the batches sent before and after it).
So any other call to the host (open, restore, catch-up, close, reads) first sends what is queued,
then goes itself: calls still reach the host in the order the tenants made them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from ray.actor import ActorHandle

from actors.account_host import HostAnswer, HostBatch
from veles.risk.columns import FigureColumns

_Pending = tuple[str, list[HostBatch], "asyncio.Future[HostAnswer]", "asyncio.Future[FigureColumns]"]
_HOSTS: dict[str, CoalescedHost] = {}  # by host name, for every tenant of this process


class CoalescedHost:
    """A shared account host's handle whose `apply_split` calls are queued and sent together."""

    def __init__(self, handle: ActorHandle) -> None:
        self.handle = handle
        self._queue: list[_Pending] = []
        self._sending: set[asyncio.Task[None]] = set()

    def __getattr__(self, name: str) -> Any:
        if name == "apply_split":
            return _QueuedApply(self)
        self.flush()  # whatever is queued goes first: the host sees calls in the order made
        return getattr(self.handle, name)

    def enqueue(self, key: str, batches: list[HostBatch]) -> tuple[asyncio.Future[HostAnswer],
                                                                   asyncio.Future[FigureColumns]]:
        """Queue one connection's batches; sent at the end of this turn of the event loop."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[HostAnswer] = loop.create_future()
        figures: asyncio.Future[FigureColumns] = loop.create_future()
        if not self._queue:
            loop.call_soon(self.flush)
        self._queue.append((key, batches, answer, figures))
        return answer, figures

    def flush(self) -> None:
        """Send what is queued as one `apply_many` call."""
        if not self._queue:
            return
        queued, self._queue = self._queue, []
        calls = [(key, batches) for key, batches, _answer, _figures in queued]
        reference: ray.ObjectRef = self.handle.apply_many.remote(calls)
        task = asyncio.ensure_future(_deliver(reference, queued))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)


class _QueuedApply:
    def __init__(self, host: CoalescedHost) -> None:
        self._host = host

    def options(self, **_options: Any) -> _QueuedApply:
        return self  # answer and figures come apart anyway (num_returns=2)

    def remote(self, key: str, batches: list[HostBatch]) -> tuple[asyncio.Future[HostAnswer],
                                                                  asyncio.Future[FigureColumns]]:
        return self._host.enqueue(key, batches)


async def _deliver(reference: ray.ObjectRef, queued: list[_Pending]) -> None:
    """Hand each queued call its answer and figures, or the call's failure (the host died)."""
    try:
        results: list[tuple[HostAnswer, FigureColumns]] = await reference
    except Exception as exc:
        for _key, _batches, answer, figures in queued:
            answer.set_exception(exc)
            figures.set_exception(exc)
            figures.exception()  # read: only the answer's failure is acted on
        return
    for (_key, _batches, answer, figures), (got, columns) in zip(queued, results, strict=True):
        answer.set_result(got)
        figures.set_result(columns)


def coalesced(name: str, handle: ActorHandle) -> CoalescedHost:
    """The process's coalescing handle of the host called `name` (its handle updated when the
    host was started again elsewhere: another actor under the name).

    Every tenant holds its own handle object for the same host (each looked it up), so handles
    are compared by the actor they name (`ActorHandle.__eq__`, the actor id), not by identity:
    by identity, each tenant's call flushed the queue the tenant before had started, and a turn
    of the event loop sent nearly one call per tenant instead of one per host."""
    host = _HOSTS.get(name)
    if host is None:
        host = _HOSTS[name] = CoalescedHost(handle)
    elif host.handle != handle:
        host.flush()
        host.handle = handle
    return host
