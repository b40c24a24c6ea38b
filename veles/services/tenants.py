"""Tenant look-ups shared by the engine launcher and the web tier."""

from __future__ import annotations

from sqlmodel import col, select

from models.connections import Mt5Connection
from models.db import session_scope
from models.tenancy import Tenant


def active_tenants(database_url: str) -> list[tuple[int, str]]:
    """(id, name) of every active broker: the engine runs a supervisor for each one that has an
    MT5 connection (the platform's own tenant, which holds platform admins, is no broker)."""
    with session_scope(database_url) as session:
        brokers = select(Tenant).where(Tenant.status == "active", col(Tenant.is_platform).is_(False))
        rows = session.exec(brokers.order_by(col(Tenant.id))).all()
        return [(t.id, t.name) for t in rows if t.id is not None]


def plan_of(database_url: str, tenant_id: int) -> str:
    """The tenant's plan name ("starter", "professional", "enterprise"): the engine enforces it."""
    with session_scope(database_url) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise LookupError(f"no tenant {tenant_id}")
        return str(tenant.plan)


def stores_connection(database_url: str, tenant_id: int) -> bool:
    """Whether the tenant stores any MT5 connection, i.e. whether an engine should run for it."""
    with session_scope(database_url) as session:
        found = session.exec(select(Mt5Connection.id).where(Mt5Connection.tenant_id == tenant_id).limit(1))
        return found.first() is not None


def tenants_with_connections(database_url: str) -> set[int]:
    """The tenants that store at least one MT5 connection: only they get an engine (a tenant with
    none would run a supervisor and an aggregator for an empty book)."""
    with session_scope(database_url) as session:
        return {tenant_id for tenant_id in session.exec(select(Mt5Connection.tenant_id).distinct())}
