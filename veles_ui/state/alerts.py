"""The alerts feed (filters, acknowledge, resolve) and the alert rules editor.

The engine writes an alert row for every raise and resolves it when its cause clears; the feed
applies each alert event the engine numbers to the list it shows (`veles.services.alert_page`),
so new alerts appear without a reload and an idle page reads nothing from the database. Every
action checks the caller's permission from the signed token, so a
viewer who crafts an event is refused exactly like one who clicks a hidden button.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from sqlmodel import Session

from veles.config import get_settings
from veles.services.alert_page import AlertPage, follow_page, load_page
from veles.services.alert_state import publish_alert_states
from veles.services.alerts import (
    AlertView,
    BuiltInView,
    RuleView,
    acknowledge,
    built_in_rules,
    create_rule,
    delete_rule,
    list_rules,
    resolve,
    update_rule,
)
from veles.services.auth import Identity
from veles.services.engine import apply_rules
from veles.services.permissions import Permission
from veles_ui.format import DASH, clock, money, severity_color
from veles_ui.state.alert_bell import AlertBellState
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState, authorized, fields, in_tenant, row_id
from veles_ui.state.stream import Absence, PortalStream

log = logging.getLogger(__name__)
IDLE_S = 5.0  # an idle stream looks this often whether its tab still shows the page (no query)
FEED_LIMIT = 100
ALL = "all"
_REFRESH_BELL = cast(EventSpec, AlertBellState.refresh)  # the top bar's unread count, read again


def _alert_view(alert: AlertView) -> dict[str, str]:
    return {
        "id": str(alert.id),
        "created": clock(alert.created_at),
        "severity": alert.severity.value,
        "severity_color": severity_color(alert.severity.value),
        "subject": alert.subject,
        "value": money(alert.value),
        "message": alert.message,
        "repeats": f"{alert.repeats} times" if alert.repeats > 1 else "",
        "state": alert.state.value,
        "acknowledged": clock(alert.acknowledged_at) if alert.acknowledged_at else DASH,
    }


def _lister(chosen: dict[str, Any], generation: int) -> Callable[[Session, Identity], AlertPage]:
    """The page's query for these filters, to run in a thread (`in_tenant`)."""
    return lambda db, who: load_page(db, who.tenant_id, chosen, generation)


class AlertsState(PortalStream):
    """The visible page of alerts and its filters."""

    state_filter: rx.Field[str] = rx.field("open")
    severity_filter: rx.Field[str] = rx.field(ALL)
    alerts: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    error: rx.Field[str] = rx.field("")
    # Counts the lists put on screen by the handlers (load, filters, acknowledge, resolve). The
    # stream works without the state lock while it reloads; an answer it read before one of those
    # must not be shown after it (an acknowledged alert coming back).
    _shown: int = 0
    # The list as of the tenant's alert number it reflects, which the stream moves on event by
    # event (`veles.services.alert_page`); None until the first load.
    _page: AlertPage | None = None

    def _shows(self, path: str) -> bool:
        return path == "/alerts"

    def _filter(self) -> dict[str, Any]:
        chosen: dict[str, Any] = {"limit": FEED_LIMIT}
        if self.state_filter != ALL:
            chosen["state"] = self.state_filter
        if self.severity_filter != ALL:
            chosen["severity"] = self.severity_filter
        return chosen

    def _put(self, page: AlertPage) -> None:
        self._page = page
        self.alerts = [_alert_view(a) for a in page.views]

    async def _reload(self) -> None:
        self._shown += 1
        chosen, generation = self._filter(), self._shown
        try:
            page = await self.in_tenant(Permission.VIEW_RISK, _lister(chosen, generation))
        except Exception as exc:  # shown above the list, never raised out of the handler
            self.error = shown(exc)
            return
        self._put(page)

    async def _fresh(self) -> None:
        self.error = ""
        await self._reload()

    @rx.event
    async def load(self) -> None:
        """Page load."""
        await self._fresh()

    @rx.event
    async def filter_state(self, state: str) -> None:
        """open / acknowledged / resolved / all (anything else is refused by field when listing)."""
        self.state_filter = state
        await self._fresh()

    @rx.event
    async def filter_severity(self, severity: str) -> None:
        """critical / warning / info / all."""
        self.severity_filter = severity
        await self._fresh()

    async def _act(self, alert_id: str, action: Any) -> None:
        try:
            target = row_id(alert_id, "alert")
            tenant_id, view = await self.in_tenant(
                Permission.ACK_ALERTS,
                lambda db, who: (who.tenant_id, action(db, who.tenant_id, target, who.user_id)), change=True)
        except Exception as exc:
            self.error = shown(exc)
            return
        # committed: every other tab of the tenant (any process) applies it (`alert_state`); a
        # network call, so in a thread; it never raises (a failure is logged and counted)
        await asyncio.to_thread(publish_alert_states, tenant_id, [view])
        self.error = ""
        await self._reload()

    @rx.event
    async def acknowledge(self, alert_id: str) -> EventSpec:
        """"I am on it": the alert records who and when (and is no longer unread for anyone)."""
        await self._act(alert_id, acknowledge)
        return _REFRESH_BELL

    @rx.event
    async def resolve(self, alert_id: str) -> EventSpec:
        """"Handled": the alert leaves the open list."""
        await self._act(alert_id, resolve)
        return _REFRESH_BELL

    @rx.event(background=True)
    async def stream(self) -> None:
        """Keep the list current from the tenant's alert events (`alert_page.follow_page`): each
        event is applied to the list held, with no query; the database is read (in a thread,
        without the state lock) only when a number is missing or the event needs it. An idle page
        reads nothing; every IDLE_S it looks whether the tab still shows it."""
        async with self:
            self.stream_id += 1
            mine, absence = self.stream_id, Absence(self.router.session.client_token)
        tenant_id = await self._signed_in_tenant(mine, absence)
        if not tenant_id:
            return

        async def current() -> AlertPage | None:
            async with self:  # a tenant gone from the state: the session ended (`SessionWatch`)
                here = self._current(mine) and self.tenant_id == tenant_id
                page = self._page
            if not here or absence.too_long():
                return None
            return page or AlertPage(-1, (), None, None, FEED_LIMIT, -1)  # not loaded yet: any event reloads

        async def show(page: AlertPage) -> None:
            async with self:
                if page.generation == self._shown:  # no handler put another list on screen meanwhile
                    self._put(page)

        async def reload(page: AlertPage) -> AlertPage | None:
            async with self:
                token, chosen, generation = self.token, self._filter(), self._shown
            try:
                identity = await authorized(token, Permission.VIEW_RISK)
                return await asyncio.to_thread(in_tenant, identity, _lister(chosen, generation))
            except Exception as exc:
                async with self:
                    self.error = shown(exc)
                return None

        await follow_page(tenant_id, IDLE_S, current, show, reload)


def _rule_view(rule: RuleView) -> dict[str, str]:
    return {
        "id": str(rule.id),
        "kind": rule.kind.value,
        "threshold": money(rule.threshold),
        "severity": rule.severity.value,
        "severity_color": severity_color(rule.severity.value),
        "symbol": rule.symbol or ("" if rule.kind.value == "toxic_flow" else "every symbol"),
        "label": rule.label or ("any" if rule.kind.value == "toxic_flow" else ""),
        "enabled": "yes" if rule.enabled else "no",
        "status": rule.status,
    }


def _built_in_view(rule: BuiltInView) -> dict[str, str]:
    return {
        "id": rule.id,
        "watches": rule.watches,
        "severity": rule.severity.value,
        "severity_color": severity_color(rule.severity.value),
        "status": rule.status,
        "running": "yes" if rule.running else "no",
    }


class RulesState(SessionState):
    """The tenant's alert rules; only roles with EDIT_RULES see the form and buttons, and only
    they get past the handlers."""

    rules: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    built_ins: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    error_field: rx.Field[str] = rx.field("")
    error: rx.Field[str] = rx.field("")
    notice: rx.Field[str] = rx.field("")

    async def _reload(self) -> None:
        rules, built_ins = await self.in_tenant(Permission.VIEW_RISK, lambda db, who: (
            list_rules(db, who.tenant_id), built_in_rules(db, who.tenant_id)))
        self.rules = [_rule_view(r) for r in rules]
        self.built_ins = [_built_in_view(r) for r in built_ins]

    async def _change(self, change: Callable[[Session, Identity], object]) -> None:
        """Run `change(db, identity)` as an EDIT_RULES action (in a thread), push the rules to the
        running engine, then show the rules again (and any the engine cannot run)."""
        try:
            identity = await self.changing(Permission.EDIT_RULES)
            await asyncio.to_thread(in_tenant, identity, change)
        except Exception as exc:  # shown under the form, never raised out of the handler
            self.error_field, self.error = getattr(exc, "field", ""), shown(exc)
            with contextlib.suppress(Exception):  # the list as it was if it cannot be read either
                await self._reload()
            return
        self.error_field = self.error = ""
        try:
            applied = await apply_rules(get_settings(), identity.tenant_id)
        except Exception as exc:  # stored either way: the engine reads them when it (re)starts
            log.warning("rules of tenant %s not pushed to the engine: %s", identity.tenant_id, exc)
            self.notice = "Saved; the engine will use the rules when it restarts."
        else:
            skipped = "; ".join(str(s) for s in applied.get("skipped", []))
            self.notice = "Saved and applied." + (f" Not evaluated live: {skipped}" if skipped else "")
        await self._reload()

    @rx.event
    async def load(self) -> None:
        """Page load."""
        self.error_field = self.error = self.notice = ""
        try:
            await self._reload()
        except Exception as exc:
            self.error = shown(exc)

    @rx.event
    async def add(self, form: dict[str, str]) -> None:
        """A new rule from the form (threshold as typed; an empty symbol means every symbol, an
        empty label any label)."""
        data = fields(form, ("kind", "threshold", "severity", "symbol", "label"))
        for optional in ("symbol", "label"):
            if not data.get(optional, "").strip():
                data.pop(optional, None)
        await self._change(lambda db, who: create_rule(db, who.tenant_id, data, actor=who.user_id))

    @rx.event
    async def toggle(self, rule_id: str, enabled: bool) -> None:
        """Switch a rule on or off."""
        change = {"enabled": bool(enabled)}
        await self._change(lambda db, who: update_rule(
            db, who.tenant_id, row_id(rule_id, "rule"), change, actor=who.user_id))

    @rx.event
    async def remove(self, rule_id: str) -> None:
        """Delete a rule (alerts it raised stay)."""
        await self._change(lambda db, who: delete_rule(
            db, who.tenant_id, row_id(rule_id, "rule"), actor=who.user_id))
