"""Names of the detached actors in the `veles` namespace, so any process can find them."""


def supervisor_name(tenant_id: int) -> str:
    """The tenant's supervisor."""
    return f"supervisor:{tenant_id}"


def aggregator_name(tenant_id: int) -> str:
    """The tenant's risk aggregator."""
    return f"aggregator:{tenant_id}"


def account_name(tenant_id: int, connection_id: str, login: int) -> str:
    """One MT5 trading account; logins are unique per connection, not across a tenant."""
    return f"account:{tenant_id}:{connection_id}:{login}"
