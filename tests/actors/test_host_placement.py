"""A tenant's account hosts as a restarted supervisor finds them (actors/host_placement.py).

The two-node placement and node loss are in `test_multi_node.py`; these run on the session's
one-node cluster.
"""

from __future__ import annotations

import ray

from actors.account_host import AccountHost
from actors.host_placement import AccountHosts, live_nodes
from actors.names import host_name


async def test_hosts_are_counted_to_the_highest_index_and_the_gap_filled(ray_local: None) -> None:
    """A restarted supervisor finds hosts 0 and 2 (host 1 lost with its node, not yet started
    again): counting up to the first missing name gave 1 host, a different shard map from the one
    the accounts were placed by."""
    tenant = 4343
    survivors = [AccountHost.options(name=host_name(tenant, index), lifetime="detached").remote(4)  # type: ignore[attr-defined]
                 for index in (0, 2)]
    hosts = AccountHosts(tenant, 4)
    try:
        assert hosts.running() == 3
        await hosts.start(3)
        assert len(hosts) == 3
        node = ray.get_runtime_context().get_node_id()
        assert live_nodes() == [node]
        assert [await host.node.remote() for host in hosts] == [node] * 3
        pids = [await host.pid.remote() for host in hosts]
        assert pids[::2] == [await host.pid.remote() for host in survivors]  # attached, not replaced
        assert not await hosts.replace_if_lost(1)  # its node lives: not moved
    finally:
        for index in range(3):
            ray.kill(ray.get_actor(host_name(tenant, index)))
