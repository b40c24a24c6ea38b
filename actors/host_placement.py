"""Where a tenant's account hosts run: dealt round the Ray cluster's live nodes, pinned there.

Why a hard node affinity. Hosts ask for no CPU, so Ray's own policies (its default, `SPREAD`, a
soft node affinity) are free to put them all on one node, and do: a soft affinity falls back to
another node whenever the scheduler finds the chosen one unavailable for a moment (a node that has
just joined, a raylet busy starting workers), so where hosts landed depended on the machine's load.
A hard affinity makes placement a function of the live nodes and the host's index only.

Why the supervisor moves a host itself. Ray restarts a host whose process died on the same node,
but cannot restart a hard-affinity host whose node is gone: the host dies for good (ended by
`replace_if_lost` if Ray still holds it) and its name is freed. `replace_if_lost` then starts a
host of the same name and index on a live node, so the host's shards move there with it and the
supervisor restores their accounts from checkpoints and the log as after a kill. A host that died
for good while its node lives (killed on purpose) is not replaced: the supervisor reports it
failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import ray
from ray.actor import ActorHandle
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.account_host import AccountHost
from actors.host_calls import coalesced
from actors.names import host_name

log = logging.getLogger(__name__)


def live_nodes() -> list[str]:
    """The cluster's live nodes, sorted, so every supervisor deals hosts round them alike."""
    return sorted(str(node["NodeID"]) for node in ray.nodes() if node["Alive"])


class AccountHosts:
    """One tenant's account hosts by index, with the node each was placed on; or a pool's, shared
    by the tenants of a tenant host (`owner` its name, see `actors/tenant_host.py`)."""

    def __init__(self, owner: int | str, checkpoint_every: int) -> None:
        self.tenant_id = owner
        self._checkpoint_every = checkpoint_every
        self._handles: list[ActorHandle] = []
        self._nodes: list[str | None] = []  # None: a host that outlived a supervisor and did not say
        self.moved = 0  # hosts started again on another node after theirs was lost
        self._replacing = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._handles)

    def __iter__(self) -> Iterator[ActorHandle]:
        return iter(self[index] for index in range(len(self._handles)))

    def __getitem__(self, index: int) -> ActorHandle:
        if isinstance(self.tenant_id, str):  # a shared pool: every tenant's batches go together
            return coalesced(host_name(self.tenant_id, index), self._handles[index])  # type: ignore[return-value]
        return self._handles[index]

    def running(self) -> int:
        """How many hosts outlived a previous supervisor: the highest index there + 1 (0: none).

        The shard map depends only on this number, so a restarted supervisor rebuilds the same map
        whatever nodes came or went meanwhile; a gap (a host lost with its node) is filled by
        `start`, not taken for the end of the list."""
        prefix = host_name(self.tenant_id, 0)[:-1]
        indices = [int(name[len(prefix):]) for name in ray.util.list_named_actors()
                   if name.startswith(prefix) and name[len(prefix):].isdigit()]
        return max(indices, default=-1) + 1

    async def start(self, count: int) -> None:
        """Start `count` hosts, or attach to those that are there (asking each its node). Calls
        to Ray's control store run off the supervisor's event loop."""
        self._handles, self._nodes = await asyncio.to_thread(self._start, count)
        attached = [index for index, node in enumerate(self._nodes) if node is None]
        answers = await asyncio.gather(*(self._handles[index].node.remote() for index in attached),
                                       return_exceptions=True)
        for index, answer in zip(attached, answers, strict=True):
            if isinstance(answer, str):
                self._nodes[index] = answer

    def _start(self, count: int) -> tuple[list[ActorHandle], list[str | None]]:
        names = set(ray.util.list_named_actors())
        nodes = live_nodes()
        handles = [self._place(index, nodes) for index in range(count)]
        placed = [None if host_name(self.tenant_id, index) in names else nodes[self._slot(index, nodes)]
                  for index in range(count)]
        return handles, placed

    def clear(self) -> None:
        """Forget the hosts (the supervisor has killed them)."""
        self._handles, self._nodes = [], []

    async def replace_if_lost(self, index: int) -> bool:
        """Start host `index` again on a live node when its own node is gone and Ray has given it
        up (its name is free); True when it did. Blocking calls to Ray's control store run off the
        supervisor's event loop."""
        async with self._replacing:  # every connection on the host restores it: start one
            node = self._nodes[index]
            if node is None:
                return False
            placed = await asyncio.to_thread(self._replace_if_lost, index, node)
            if placed is None:
                return False
            self._handles[index], self._nodes[index] = placed
            self.moved += 1
        log.warning("tenant %s: host %s lost with node %s; started again on node %s", self.tenant_id,
                    index, node, placed[1])
        return True

    def _replace_if_lost(self, index: int, node: str) -> tuple[ActorHandle, str] | None:
        nodes = live_nodes()
        if node in nodes or not nodes:
            return None  # its node lives: Ray restarts the host there (or it was killed for good)
        try:
            lost = ray.get_actor(host_name(self.tenant_id, index))
        except ValueError:  # Ray has given it up: its name is free
            return self._place(index, nodes), nodes[self._slot(index, nodes)]
        # Ray still holds it (restarting, or waiting for its node): it cannot run there again, so
        # end it for good; its name is free by a later try (the supervisor's restore retries)
        ray.kill(lost, no_restart=True)
        return None

    def _slot(self, index: int, nodes: list[str]) -> int:
        # from a tenant-dependent start, so small tenants do not all crowd the first node
        start = self.tenant_id if isinstance(self.tenant_id, int) else 0
        return (start + index) % len(nodes)

    def _place(self, index: int, nodes: list[str]) -> ActorHandle:
        return AccountHost.options(  # type: ignore[attr-defined]
            name=host_name(self.tenant_id, index), lifetime="detached", get_if_exists=True,
            scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[self._slot(index, nodes)], soft=False),
        ).remote(self._checkpoint_every)
