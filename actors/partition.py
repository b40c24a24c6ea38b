"""A partition: a few dozen account actors of one connection fed by one Ray compiled graph.

Why. A plain Ray call costs ~10 ms of CPU across Ray's processes on this machine's kind, against
~50 µs of risk math, so one call per account per batch caps a 2-core machine near 40 accounts at
4 batches/s. A compiled graph (`ray.dag`, `experimental_compile`) sets up shared-memory channels
once; each execution then writes the partition's steps once and every actor of the partition
reads them and answers through its own channel, at a fraction of a plain call's cost.

Why partitions, not one graph. Compiling grows fast with the graph's size (seconds for 50 actors,
a failure at 200), and a graph breaks as a whole when one of its actors dies. Partitions keep both
small: a dead actor stops only its partition's graph, whose accounts fall back to plain calls while
the graph is torn down and recompiled in the background; the other partitions carry on.

Everything here blocks (Ray's compiled graphs are driven synchronously when not compiled for
asyncio, and compiling for asyncio must happen on the event loop, which would stall every other
partition for the seconds a compile takes), so the supervisor runs these calls in its thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.dag import InputNode, MultiOutputNode

from actors.mt5_account import AccountUpdate, Step

log = logging.getLogger(__name__)

PARTITION_SIZE = 25  # accounts per compiled graph: compiles in seconds, a failure stops 25 at most
EXECUTE_TIMEOUT_S = 10.0  # a graph that does not answer in this long is treated as broken
WARM_UP_TIMEOUT_S = 60.0  # the first execution sets up every channel's buffers: slow on a busy machine


@dataclass(eq=False)  # compared by identity: the supervisor keys a batch's steps by partition
class Partition:
    """Accounts sharing one compiled graph; `graph` is None while they are on plain calls."""

    logins: tuple[int, ...]
    graph: Any = None  # ray.dag.CompiledDAG, once compiled
    compiles: int = 0
    failures: int = 0


def partition(logins: Sequence[int], size: int = PARTITION_SIZE) -> list[Partition]:
    """Cut a connection's accounts into partitions of at most `size`, in login order."""
    ordered = sorted(logins)
    return [Partition(tuple(ordered[i : i + size])) for i in range(0, len(ordered), size)]


def compile_graph(handles: Sequence[ActorHandle]) -> Any:
    """One graph: the input (steps by login) goes to every actor; the answers come back in order.

    Run once empty before it is handed out: the first execution is many times slower than the
    next ones, and paying for it here keeps it out of a live batch's latency and timeout.
    """
    with InputNode() as steps:
        dag = MultiOutputNode([handle.run_step.bind(steps) for handle in handles])
    graph = dag.experimental_compile()
    try:
        ray.get(graph.execute({}), timeout=WARM_UP_TIMEOUT_S)
    except Exception:
        teardown(graph)
        raise
    return graph


def execute(graph: Any, steps: Mapping[int, tuple[Step, bool]]) -> list[AccountUpdate | None]:
    """Run one batch through a graph; the answers in the order of the partition's logins.

    Raises whatever Ray raises when an actor of the graph died or the graph timed out; the
    caller cannot know which actors applied the batch then, and restores them all.
    """
    answers: list[AccountUpdate | None] = ray.get(graph.execute(dict(steps)), timeout=EXECUTE_TIMEOUT_S)
    return answers


def teardown(graph: Any) -> None:
    """Stop a graph's loops on its actors (they keep their state and take plain calls again)."""
    try:
        graph.teardown()
    except Exception:  # a graph whose actor died may fail to tear down cleanly; it is gone anyway
        log.warning("compiled graph teardown failed", exc_info=True)
