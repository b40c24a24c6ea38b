"""MT5 connections: add (tested before it is kept), test again, remove; status and last error.

Only roles with MANAGE_CONNECTIONS reach this page's actions; the handlers check it from the
signed token. The password goes from the form straight to the service, which encrypts it; it is
never kept in this state nor shown. A kept or removed connection is then pushed to the running
engine (`apply_connections`), which starts or stops feeding it; the row's status and last error
show what the engine made of it.
"""

from __future__ import annotations

import asyncio
import logging

import reflex as rx
from sqlmodel import Session

from veles.config import get_settings
from veles.services.auth import Identity
from veles.services.connections import (
    ConnectionCheck,
    ConnectionView,
    check_connection,
    create_connection,
    delete_connection,
    list_connections,
)
from veles.services.engine import apply_connections
from veles.services.errors import PlanLimit
from veles.services.permissions import Permission
from veles.services.reconciliation import UNCHECKED, ConnectionReconciliation, reconciliations
from veles_ui.format import DASH, clock
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState, fields, in_tenant, row_id

log = logging.getLogger(__name__)
APPLY_TIMEOUT_S = 10.0
_STATUS_COLOR = {"connected": "grass", "failed": "tomato", "disconnected": "amber", "pending": "gray"}
_CHECK_COLOR = {"unchecked": "gray", "ok": "grass", "failed": "amber", "drifting": "tomato"}


class ConnectionRefused(Exception):
    """The trade server refused the new connection: nothing is stored, the reason is shown."""


def _view(conn: ConnectionView, check: ConnectionReconciliation) -> dict[str, str]:
    return {
        "id": str(conn.id),
        "server": conn.server,
        "login": str(conn.login),
        "status": conn.status.value,
        "status_color": _STATUS_COLOR.get(conn.status.value, "gray"),
        "last_error": conn.last_error or DASH,
        "upgrade": conn.upgrade_url or "",  # a plan limit the engine met: the way to a bigger plan
        "last_connected": clock(conn.last_connected_at),
        "reconciliation": check.summary,
        "reconciliation_color": _CHECK_COLOR[check.state],
    }


class ConnectionsState(SessionState):
    """The tenant's connections and the outcome of the last action."""

    connections: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    drifts: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)  # drifting accounts' figures
    error_field: rx.Field[str] = rx.field("")
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")
    upgrade: rx.Field[bool] = rx.field(False)  # the error is a plan limit: offer the plan page

    async def _reload(self) -> None:
        identity = await self.authorized(Permission.MANAGE_CONNECTIONS)
        views = await asyncio.to_thread(in_tenant, identity,
                                        lambda db, who: list_connections(db, who.tenant_id))
        checks = await reconciliations(get_settings(), identity.tenant_id)
        self.connections = [_view(c, checks.get(c.id, UNCHECKED)) for c in views]
        self.drifts = [{**row, "server": c.server} for c in views
                       for row in checks.get(c.id, UNCHECKED).drifts]

    async def _outcome(self, error: Exception | None, notice: str = "") -> None:
        self.error_field = getattr(error, "field", "") if error else ""
        self.error = shown(error, (ConnectionRefused,)) if error else ""
        self.upgrade = isinstance(error, PlanLimit)
        self.notice = "" if error else notice
        try:
            await self._reload()
        except Exception as exc:  # shown under the form, never raised out of the handler
            self.error = shown(exc)

    async def _tell_engine(self, tenant_id: int) -> str:
        """Push the committed change to the running engine; '' or why it was not told now."""
        try:
            await asyncio.wait_for(apply_connections(get_settings(), tenant_id, wait=False), APPLY_TIMEOUT_S)
        except Exception as exc:  # the engine re-reads the rows by itself within its sync period
            log.info("tenant %s: engine not told of the connection change: %s", tenant_id, exc)
            return " The engine picks it up within a few seconds."
        return ""

    @rx.event
    async def load(self) -> None:
        """Page load."""
        await self._outcome(None)

    @rx.event
    async def add(self, form: dict[str, str]) -> None:
        """Store the connection only if the server accepts its login and password; then the engine
        feeds it. The check opens the trade server over the network: it runs in a thread."""
        settings = get_settings()
        data = fields(form, ("server", "login", "password"))

        def add_checked(db: Session, who: Identity) -> tuple[ConnectionView, ConnectionCheck]:
            created = create_connection(db, settings, who.tenant_id, data, actor=who.user_id)
            check = check_connection(db, settings, who.tenant_id, created.id)
            if not check.ok:
                raise ConnectionRefused(f"Could not connect to {created.server}: {check.message}")
            return created, check

        try:
            identity = await self.changing(Permission.MANAGE_CONNECTIONS)
            created, check = await asyncio.to_thread(in_tenant, identity, add_checked)
        except Exception as exc:  # a refusal, or a server fault (CREDENTIALS_KEYS unset): shown
            await self._outcome(exc)
            return
        later = await self._tell_engine(identity.tenant_id)
        await self._outcome(None, f"Connected to {created.server}: {check.message}{later}")

    @rx.event
    async def test(self, connection_id: str) -> None:
        """Connect again with the stored credentials (in a thread: the network and the database);
        the row keeps the outcome."""
        settings = get_settings()
        try:
            target = row_id(connection_id, "connection")
            check = await self.in_tenant(Permission.MANAGE_CONNECTIONS, lambda db, who: check_connection(
                db, settings, who.tenant_id, target), change=True)  # the row keeps the outcome: a change
        except Exception as exc:
            await self._outcome(exc)
            return
        if not check.ok:  # the server's one line: the failing step and its retcode
            await self._outcome(ConnectionRefused(check.message))
            return
        await self._outcome(None, check.message)

    @rx.event
    async def remove(self, connection_id: str) -> None:
        """Forget the connection and the accounts known through it; the engine stops feeding it."""
        try:
            identity = await self.changing(Permission.MANAGE_CONNECTIONS)
            target = row_id(connection_id, "connection")
            await asyncio.to_thread(in_tenant, identity, lambda db, who: delete_connection(
                db, who.tenant_id, target, actor=who.user_id))
        except Exception as exc:
            await self._outcome(exc)
            return
        later = await self._tell_engine(identity.tenant_id)
        await self._outcome(None, f"Connection removed.{later}")
