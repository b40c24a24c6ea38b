"""Platform administration: every tenant with its plan, status and usage, suspend/resume, audit log.

Only platform admins may call these (`Permission.PLATFORM`); each function checks the caller's role
itself, so a crafted UI event or API call is refused the same way a hidden button is.
Suspending a tenant also stops its engine (its actors stop consuming CPU and its users can no
longer sign in); resuming starts the engine again from the connections its supervisor kept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models.accounts import ClientAccount
from models.audit import AuditLog
from models.connections import Mt5Connection
from models.db import session_scope
from models.tenancy import Plan, Role, Tenant, TenantStatus, User
from veles.config import Settings
from veles.plans import PLANS
from veles.services.audit import record
from veles.services.engine import apply_plan, resume_tenant, suspend_tenant
from veles.services.permissions import Permission, require
from veles.services.sessions import end_tenant_sessions


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """One tenant as the admin page lists it; limits of None mean unlimited."""

    tenant_id: int
    name: str
    plan: str
    status: str
    users: int
    servers: int
    max_servers: int | None
    accounts: int
    max_accounts: int | None

    @property
    def over_limit(self) -> bool:
        """Whether usage exceeds the plan (a downgrade, or accounts added on the server side)."""
        return (self.max_servers is not None and self.servers > self.max_servers) or (
            self.max_accounts is not None and self.accounts > self.max_accounts
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit-log row as the viewer shows it."""

    at: datetime
    tenant_id: int | None
    actor_user_id: int | None
    action: str
    target: str
    details: str


def _counts(session: Session, column: Any) -> dict[int, int]:
    """Rows per tenant of one table, keyed by its tenant_id column."""
    rows = session.execute(sa_select(column, func.count()).group_by(column)).all()
    return {int(tenant_id): int(count) for tenant_id, count in rows}


def _usage(session: Session, tenants: list[Tenant], live: dict[int, int]) -> list[TenantUsage]:
    """Plan limits and usage of `tenants`. Accounts are what the running engine holds when it
    reports them (`live`, by tenant), else the accounts stored for the tenant: a simulated or newly
    connected server has no rows yet."""
    users = _counts(session, User.tenant_id)
    servers = _counts(session, Mt5Connection.tenant_id)
    stored = _counts(session, ClientAccount.tenant_id)
    usage = []
    for tenant in tenants:
        assert tenant.id is not None
        limits = PLANS[tenant.plan.value]
        usage.append(TenantUsage(
            tenant_id=tenant.id, name=tenant.name, plan=limits.name, status=tenant.status.value,
            users=users.get(tenant.id, 0), servers=servers.get(tenant.id, 0), max_servers=limits.max_servers,
            accounts=live.get(tenant.id, stored.get(tenant.id, 0)), max_accounts=limits.max_accounts,
        ))
    return usage


def tenants_usage(role: Role | str, database_url: str, live_accounts: dict[int, int] | None = None
                  ) -> list[TenantUsage]:
    """Every broker with its plan limits and usage (platform admins only; the platform's own tenant
    is no broker)."""
    require(role, Permission.PLATFORM)
    with session_scope(database_url) as session:
        brokers = select(Tenant).where(col(Tenant.is_platform).is_(False)).order_by(col(Tenant.id))
        return _usage(session, list(session.exec(brokers).all()), live_accounts or {})


def tenant_usage(role: Role | str, database_url: str, tenant_id: int, live_accounts: int | None = None
                 ) -> TenantUsage:
    """One tenant's own plan and usage, for its plan page (roles that manage billing)."""
    require(role, Permission.MANAGE_BILLING)
    with session_scope(database_url) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            raise LookupError(f"tenant: no tenant {tenant_id}")
        live = {} if live_accounts is None else {tenant_id: live_accounts}
        return _usage(session, [tenant], live)[0]


async def set_tenant_status(settings: Settings, role: Role | str, actor_user_id: int, tenant_id: int,
                            status: TenantStatus) -> TenantStatus:
    """Suspend or resume a tenant and stop or start its engine; audited as a platform event.

    Returns the status now stored. The database is changed first, so a tenant marked suspended
    cannot sign in even while its actors are being stopped.
    """
    require(role, Permission.PLATFORM)
    await asyncio.to_thread(store_tenant_status, settings.database_url, actor_user_id, tenant_id, status)
    if status is TenantStatus.SUSPENDED:
        await suspend_tenant(settings, tenant_id)
    else:
        await resume_tenant(settings, tenant_id)
    return status


def store_tenant_status(database_url: str, actor_user_id: int, tenant_id: int, status: TenantStatus) -> None:
    """The database half of `set_tenant_status` (callers check PLATFORM): store and audit the
    status; suspending also ends every session of the tenant's users at once."""
    if status not in (TenantStatus.ACTIVE, TenantStatus.SUSPENDED):
        raise ValueError(f"status: a tenant can be suspended or made active, not {status.value!r}")
    with session_scope(database_url) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None or tenant.is_platform:  # suspending the platform would lock its admins out
            raise LookupError(f"tenant: no broker {tenant_id}")
        before = tenant.status
        tenant.status = status
        if status is TenantStatus.SUSPENDED:  # every access token of the tenant stops at once
            end_tenant_sessions(session, tenant_id)
        record(session, "tenant.suspend" if status is TenantStatus.SUSPENDED else "tenant.resume",
               tenant_id=None, actor_user_id=actor_user_id, target=f"tenant:{tenant_id}",
               details={"from": before.value, "to": status.value})


async def set_tenant_plan(settings: Settings, role: Role | str, actor_user_id: int | None, tenant_id: int,
                          plan: Plan | str) -> dict[str, Any]:
    """Change a broker's plan and apply it to its running engine at once (a downgrade closes the
    connections the plan has no room for, newest first; an upgrade opens those refused before);
    audited as a platform event. Returns `apply_plan`'s answer."""
    require(role, Permission.PLATFORM)
    await asyncio.to_thread(store_tenant_plan, settings.database_url, actor_user_id, tenant_id, plan)
    return await apply_plan(settings, tenant_id)


def store_tenant_plan(database_url: str, actor_user_id: int | None, tenant_id: int, plan: Plan | str) -> None:
    """The database half of `set_tenant_plan` (callers check PLATFORM)."""
    try:
        chosen = Plan(plan)
    except ValueError:
        raise ValueError(f"plan: one of {', '.join(p.value for p in Plan)}, not {plan!r}") from None
    with session_scope(database_url) as session:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None or tenant.is_platform:
            raise LookupError(f"tenant: no broker {tenant_id}")
        before = tenant.plan
        tenant.plan = chosen
        record(session, "tenant.plan", tenant_id=None, actor_user_id=actor_user_id,
               target=f"tenant:{tenant_id}", details={"from": Plan(before).value, "to": chosen.value})


def audit_entries(role: Role | str, database_url: str, limit: int = 200, action: str = ""
                  ) -> list[AuditEntry]:
    """The newest audit-log rows of every tenant and the platform, optionally by action prefix."""
    require(role, Permission.PLATFORM)
    with session_scope(database_url) as session:
        query = select(AuditLog).order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()).limit(limit)
        if action:
            query = query.where(col(AuditLog.action).startswith(action))
        return [
            AuditEntry(at=row.at, tenant_id=row.tenant_id, actor_user_id=row.actor_user_id, action=row.action,
                       target=row.target or "", details=", ".join(f"{k}={v}" for k, v in row.details.items()))
            for row in session.exec(query).all()
        ]
