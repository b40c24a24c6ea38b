"""The tenant's plan and its usage against the plan's limits."""

from __future__ import annotations

import asyncio

import reflex as rx

from veles.config import get_settings
from veles.services.admin import tenant_usage
from veles.services.live import get_live_feed
from veles.services.permissions import Permission
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState


def _bar(used: int, limit: int | None) -> tuple[str, int]:
    """'used / limit' and the percent used (0 when unlimited)."""
    if limit is None:
        return f"{used:,} / unlimited", 0
    return f"{used:,} / {limit:,}", min(100, round(used * 100 / limit)) if limit else 100


class PlanState(SessionState):
    """What the plan page shows."""

    plan: rx.Field[str] = rx.field("")
    servers: rx.Field[str] = rx.field("")
    servers_pct: rx.Field[int] = rx.field(0)
    accounts: rx.Field[str] = rx.field("")
    accounts_pct: rx.Field[int] = rx.field(0)
    over_limit: rx.Field[bool] = rx.field(False)
    error: rx.Field[str] = rx.field("")

    @rx.event
    async def load(self) -> None:
        """Page load: accounts as the live book counts them (the engine's view), else as stored
        (read in a thread)."""
        try:
            identity = await self.authorized(Permission.MANAGE_BILLING)
            replica = get_live_feed().replica(identity.tenant_id)
            live = int(replica.totals["accounts"]) if replica.version >= 0 else None
            usage = await asyncio.to_thread(tenant_usage, identity.role, get_settings().database_url,
                                            identity.tenant_id, live)
        except Exception as exc:  # shown on the page, never raised out of the handler
            self.error = shown(exc, (LookupError,))
            return
        self.error = ""
        self.plan = usage.plan
        self.servers, self.servers_pct = _bar(usage.servers, usage.max_servers)
        self.accounts, self.accounts_pct = _bar(usage.accounts, usage.max_accounts)
        self.over_limit = usage.over_limit
