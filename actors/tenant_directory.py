"""Where a tenant's supervisor and aggregator run, for every process that must find them.

Why. A tenant's engine runs in one of two placements: as logical actors in a tenant host
(`actors/tenant_host.py`, the default: hundreds of small brokers on a node) or as a supervisor
and an aggregator process of its own (`supervisor:<id>`, `aggregator:<id>`; the setting
`PROCESS_PER_TENANT`). The live feed, engine metrics, the report worker and the engine service
all find a tenant here, so none of them depends on which.

The number of tenant hosts decides which one holds a tenant (`tenant_id % hosts`), so every
process must use the same number: the first process that starts a tenant fixes it for the
cluster in Ray's key-value store (the GCS, which outlives every actor), and the others read it
there, whatever their own settings say (a web process on another node has another CPU count).
A stored 0 means one process per tenant. `veles engine`'s stop clears it with the tenants.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.experimental import internal_kv

from actors.names import aggregator_name, supervisor_name, tenant_host_name
from actors.tenant_host import TenantRef, registration_key

ROLES = {"supervisor": supervisor_name, "aggregator": aggregator_name}
CHECK_TIMEOUT_S = 10.0  # a tenant host that does not answer whether it holds an aggregator


def _placement_key(namespace: str) -> str:
    # Ray key-value store (scoped here by the Ray namespace), not Redis: no deployment prefix applies
    return f"veles-tenant-hosts:{namespace}"


def tenant_hosts_in_use(namespace: str) -> int | None:
    """The cluster's number of tenant hosts (0: one process per tenant); None before any tenant
    was started (blocking: one call to Ray's control store)."""
    value = internal_kv._internal_kv_get(_placement_key(namespace))
    return None if value is None else int(value)


def settle_tenant_hosts(namespace: str, wanted: int) -> int:
    """Fix the cluster's number of tenant hosts to `wanted` unless a process fixed it already;
    returns the number in use (blocking)."""
    internal_kv._internal_kv_put(_placement_key(namespace), str(wanted).encode(), overwrite=False)
    in_use = tenant_hosts_in_use(namespace)
    assert in_use is not None
    return in_use


def forget_tenant_hosts(namespace: str) -> None:
    """No tenant runs any more (the engine stopped): the next start decides again (blocking)."""
    internal_kv._internal_kv_del(_placement_key(namespace))


def tenant_host_handle(tenant_id: int, hosts: int, namespace: str) -> Any | None:
    """The running tenant host that holds (or would hold) the tenant; None when it is not running."""
    try:
        return ray.get_actor(tenant_host_name(tenant_id % hosts), namespace=namespace)
    except ValueError:
        return None


def find(tenant_id: int, role: str, namespace: str) -> Any | None:
    """The tenant's supervisor or aggregator (`role`), called like a Ray actor handle
    (`handle.method.remote(...)`), or None when the tenant runs no engine (no connection), or
    runs no aggregator (suspended). Blocking: run it off an event loop.

    In a tenant host a tenant is found by its registration (written when it is added, deleted
    when it leaves), so a tenant that is gone is never handed out; a tenant host restarted by
    Ray answers for its tenants once it has started them again."""
    if role not in ROLES:
        raise ValueError(f"no role {role!r}: one of {', '.join(ROLES)}")
    hosts = tenant_hosts_in_use(namespace)
    if hosts:
        name = tenant_host_name(tenant_id % hosts)
        if internal_kv._internal_kv_exists(registration_key(namespace, name, tenant_id)):
            host = tenant_host_handle(tenant_id, hosts, namespace)
            if host is not None and (role == "supervisor" or ray.get(
                    host.has.remote(tenant_id, role), timeout=CHECK_TIMEOUT_S)):
                return TenantRef(host, tenant_id, role)
            return None
    try:  # one process per tenant (or a tenant started by hand as actors of its own)
        return ray.get_actor(ROLES[role](tenant_id), namespace=namespace)
    except ValueError:
        return None
