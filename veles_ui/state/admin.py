"""Platform administration: tenants with plan, status and usage (suspend/resume), engine health
per tenant and the audit log. Platform admins only: the page hides itself from other roles and
every handler re-checks the permission from the signed token."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import reflex as rx

from models.tenancy import TenantStatus
from veles.billing.revenue import Revenue, dollars, revenue
from veles.config import get_settings
from veles.plans import PLANS
from veles.services.admin import AuditEntry, TenantUsage, audit_entries, set_tenant_status, tenants_usage
from veles.services.auth import Identity
from veles.services.engine import engine_status
from veles.services.live import get_live_feed
from veles.services.permissions import Permission
from veles_ui.format import DASH, clock
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState, row_id

log = logging.getLogger(__name__)
AUDIT_ROWS = 100


def _limit(used: int, limit: int | None) -> str:
    return f"{used:,} / {'∞' if limit is None else f'{limit:,}'}"


def _tenant_view(usage: TenantUsage) -> dict[str, str]:
    return {
        "id": str(usage.tenant_id),
        "name": usage.name,
        "plan": usage.plan,
        "status": usage.status,
        "status_color": "grass" if usage.status == "active" else "tomato",
        "users": str(usage.users),
        "servers": _limit(usage.servers, usage.max_servers),
        "accounts": _limit(usage.accounts, usage.max_accounts),
        "usage_color": "tomato" if usage.over_limit else "gray",
    }


def _health_view(status: dict[str, Any]) -> dict[str, str]:
    """One tenant's engine: actors, restarts, merged batches (the queue it had to catch up) and
    how old the book this web process holds is (lag)."""
    conns = status["connections"]
    accounts = sum(c["accounts"] for c in conns)
    restarts = sum(sum(c["restarts"].values()) for c in conns) + sum(status["aggregator_restarts"].values())
    replica = get_live_feed().replica(int(status["tenant_id"]))
    lag = f"{(time.time() - replica.sent_at) * 1000:,.0f} ms" if replica.sent_at else DASH
    failed = [f"{c['connection_id']}: {c['failed']} accounts" for c in conns if c["failed"]]
    if status.get("aggregator_failed"):
        failed.append(f"aggregator {status['aggregator_failed']}")
    return {
        "tenant": str(status["tenant_id"]),
        "running": "running" if status["running"] else "stopped",
        # account actors are logical, hosted densely: the processes are the hosts, not the accounts
        "actors": f"{accounts:,} accounts on {status.get('hosts', 0)} hosts" if status["running"] else DASH,
        "connections": str(len(conns)),
        "restarts": str(restarts),
        "merged": str(sum(c["merged_batches"] for c in conns)),
        "recovering": str(sum(c["recovering"] for c in conns)),
        # given up on (a restore budget spent, a host or the aggregator that never came back)
        "failed": "; ".join(failed) or DASH,
        "refused": "; ".join(status["refused_connections"].values()) or DASH,
        "uptime": f"{status['uptime_s']:,.0f} s",
        "lag": lag,
    }


def _stored(identity: Identity, database_url: str, live: dict[int, int], action: str
            ) -> tuple[list[TenantUsage], list[AuditEntry], Revenue]:
    """The tenants with their usage, the audit rows and the revenue figures the page shows.
    Blocking (the database): run it in a thread."""
    return (tenants_usage(identity.role, database_url, live),
            audit_entries(identity.role, database_url, AUDIT_ROWS, action),
            revenue(identity.role, database_url))


def _revenue_views(figures: Revenue) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The plan mix and the tenants behind on payment as the page's rows."""
    mix = [{"plan": m.name, "tenants": str(m.tenants), "paying": str(m.paying), "trialing": str(m.trialing),
            "mrr": dollars(m.mrr_cents)} for m in figures.mix]
    behind = [{"id": str(b.tenant_id), "name": b.name, "plan": PLANS[b.plan].name, "status": b.billing_status,
               "since": clock(b.lapsed_at) if b.lapsed_at else DASH, "monthly": dollars(b.monthly_cents)}
              for b in figures.behind]
    return mix, behind


class AdminState(SessionState):
    """What the admin page shows; reloaded on page load and after each action."""

    tenants: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    health: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    audit: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    audit_action: rx.Field[str] = rx.field("")
    mrr: rx.Field[str] = rx.field("")
    at_risk: rx.Field[str] = rx.field("")
    plan_mix: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    behind: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    async def _reload(self) -> None:
        settings = get_settings()
        identity = await self.authorized(Permission.PLATFORM)
        statuses: list[dict[str, Any]] = []
        try:
            statuses = await engine_status(settings)  # joins the engine's Ray, never starts one
        except Exception as exc:  # the page still lists tenants without the engine
            log.warning("engine status unavailable: %s", exc)
            self.error = f"Engine status unavailable: {exc}"
        live = {int(s["tenant_id"]): sum(c["accounts"] for c in s["connections"]) for s in statuses}
        usage, entries, figures = await asyncio.to_thread(_stored, identity, settings.database_url, live,
                                                          self.audit_action)
        self.mrr, self.at_risk = dollars(figures.mrr_cents), dollars(figures.at_risk_cents)
        self.plan_mix, self.behind = _revenue_views(figures)
        self.tenants = [_tenant_view(u) for u in usage]
        self.health = [_health_view(s) for s in statuses]
        self.audit = [
            {"at": clock(e.at), "tenant": DASH if e.tenant_id is None else str(e.tenant_id),
             "actor": DASH if e.actor_user_id is None else str(e.actor_user_id), "action": e.action,
             "target": e.target, "details": e.details}
            for e in entries
        ]

    async def _fresh(self) -> None:
        """Everything again; a role without the platform permission sees a refusal, nothing else."""
        self.error = self.notice = ""
        try:
            await self._reload()
        except Exception as exc:  # shown on the page, never raised out of the handler
            self.tenants, self.health, self.audit, self.plan_mix, self.behind = [], [], [], [], []
            self.mrr = self.at_risk = ""
            self.error = shown(exc)

    @rx.event
    async def load(self) -> None:
        """Page load."""
        await self._fresh()

    @rx.event
    async def filter_audit(self, action: str) -> None:
        """Only audit rows whose action starts with this (e.g. 'tenant.' or 'auth.')."""
        self.audit_action = str(action).strip()
        await self._fresh()

    async def _set_status(self, tenant_id: str, status: TenantStatus) -> None:
        settings = get_settings()
        try:
            identity = await self.authorized(Permission.PLATFORM)
            target = row_id(tenant_id, "tenant")
            await set_tenant_status(settings, identity.role, identity.user_id, target, status)
            await self._reload()
        except Exception as exc:
            self.error = shown(exc, (LookupError, ValueError))
            return
        self.error = ""
        self.notice = f"Tenant {target} is now {status.value}."

    @rx.event
    async def suspend(self, tenant_id: str) -> None:
        """Suspend: its users can no longer sign in and its engine stops."""
        await self._set_status(tenant_id, TenantStatus.SUSPENDED)

    @rx.event
    async def resume(self, tenant_id: str) -> None:
        """Resume: active again, its engine restarts from the connections it kept."""
        await self._set_status(tenant_id, TenantStatus.ACTIVE)
