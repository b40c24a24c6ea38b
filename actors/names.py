"""Names of the detached actors in the `veles` namespace, so any process can find them."""


def supervisor_name(tenant_id: int) -> str:
    """The tenant's supervisor."""
    return f"supervisor:{tenant_id}"


def aggregator_name(tenant_id: int) -> str:
    """The tenant's risk aggregator."""
    return f"aggregator:{tenant_id}"


def host_name(tenant_id: int, index: int) -> str:
    """One of the tenant's account hosts (a process running many account actors)."""
    return f"host:{tenant_id}:{index}"
