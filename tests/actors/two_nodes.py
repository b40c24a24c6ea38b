"""A two-node Ray cluster on this machine, one tenant's hosts spread over it, and one node lost.

Run as a script (`python -m tests.actors.two_nodes`) by `tests/actors/test_multi_node.py`, in a
process of its own: `ray.cluster_utils.Cluster` needs a driver connected to it, and the test
session's driver is already connected to the shared local cluster. Prints one JSON line:
where each host ran before and after the node went, the restarts, and the accounts whose figures
differ from the reference (`reference_figures`: the same seeded polls fed to account actors in
this process, with no cluster in between). The cluster is shut down whatever happens.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.tenant_supervisor import TenantSupervisor
from veles.bench.engine import bench_spec, reference_figures

ACCOUNTS = 24
TENANT = 4242
# Node loss is noticed by GCS health checks; Ray's defaults take ~15 s, these ~2 s.
FAST_HEALTH_CHECKS = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                      "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}


def _until(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(0.2)
    return value


def run() -> dict[str, Any]:
    """The scenario; see the module docstring."""
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "_system_config": FAST_HEALTH_CHECKS})
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace="veles-two-nodes", log_to_driver=False)
        head = ray.get_runtime_context().get_node_id()
        spec = bench_spec(ACCOUNTS, rate=4.0, seed=11)
        # The supervisor stays on the head (the node this driver runs on, which is not removed);
        # its hosts are placed by the engine's own strategy.
        supervisor = TenantSupervisor.options(  # type: ignore[attr-defined]
            scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False),
        ).remote(TENANT, [spec], 4.0, None, hosts=2, checkpoint_every=4, log_limit=40)
        ray.get(supervisor.start.remote(), timeout=120)

        def connection() -> dict[str, Any]:
            status: dict[str, Any] = ray.get(supervisor.status.remote(), timeout=30)
            return status["connections"][0]

        _until(lambda: connection()["batches"] >= 8, "batches before the node goes")
        before = ray.get(supervisor.host_nodes.remote(), timeout=30)
        placement = ray.get(supervisor.placement.remote(), timeout=30)
        lost_node = worker.node_id
        cluster.remove_node(worker, allow_graceful=False)
        lost_at = time.monotonic()

        seen: dict[str, Any] = {}

        def restored() -> bool:
            conn = seen["connection"] = connection()
            return sum(conn["restarts"].values()) >= 1 and conn["recovering"] == 0 and conn["failed"] == 0

        try:
            _until(restored, "the lost node's accounts restored")
        except TimeoutError as exc:
            conn = seen.get("connection", {})
            names = ("batches", "restarts", "recovering", "hosts_recovering", "failed", "recent_errors")
            raise TimeoutError(f"{exc}; {({name: conn.get(name) for name in names})}; hosts answering: "
                               f"{ray.get(supervisor.host_nodes.remote(), timeout=30)}") from exc
        restored_s = time.monotonic() - lost_at
        batches_at_restore = connection()["batches"]
        _until(lambda: connection()["batches"] >= batches_at_restore + 4, "batches after the restore")
        polls = ray.get(supervisor.pause.remote(), timeout=120)[spec.connection_id]
        figures = ray.get(supervisor.account_figures.remote(), timeout=60)
        after = ray.get(supervisor.host_nodes.remote(), timeout=30)
        status = ray.get(supervisor.status.remote(), timeout=30)
        conn = status["connections"][0]
        ray.get(supervisor.stop.remote(), timeout=60)
        expected = reference_figures(spec, polls)
        return {
            "head": head,
            "lost": lost_node,
            "nodes_before": sorted(set(before.values())),
            "nodes_after": sorted(set(after.values())),
            "hosts_before": len(before),
            "hosts_after": len(after),
            "accounts_on_lost_node": sum(before.get(host) == lost_node for host in placement.values()),
            "restarts": conn["restarts"],
            "hosts_moved": status["hosts_moved"],
            "restored_s": round(restored_s, 1),
            "polls": polls,
            "accounts": len(figures),
            "mismatches": sorted(login for login, fig in expected.items() if figures.get(login) != fig),
        }
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    # the test stops a scenario that overran with SIGTERM: leave through `finally`, which shuts
    # the cluster down, rather than die at once and leave its processes behind
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(json.dumps(run()))
