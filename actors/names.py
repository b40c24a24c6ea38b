"""Names of the detached actors in the `veles` namespace, so any process can find them."""


def supervisor_name(tenant_id: int) -> str:
    """The tenant's supervisor."""
    return f"supervisor:{tenant_id}"


def aggregator_name(tenant_id: int) -> str:
    """The tenant's risk aggregator."""
    return f"aggregator:{tenant_id}"


def host_name(tenant_id: int | str, index: int) -> str:
    """One of the tenant's account hosts (a process running many account actors), or of a pool
    shared by many tenants (`tenant_id` the pool's name)."""
    return f"host:{tenant_id}:{index}"


def tenant_host_name(index: int) -> str:
    """One of the processes hosting many tenants' supervisors and aggregators."""
    return f"tenants:{index}"
