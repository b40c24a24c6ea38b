"""The stress page: a scenario typed or picked from the saved ones, run on the tenant's live book
by the pure engine in a worker thread (`veles.services.stress`), the figures formatted here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec

from veles.config import get_settings
from veles.risk.money import from_minor
from veles.services import stress as service
from veles.services import var as var_service
from veles.services.permissions import Permission
from veles_ui.format import DASH, lots, money, percent, sign_color
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState

DEFAULT_SCENARIO = "XAUUSD -3%, USD +2% against all"


def per_currency(minor: dict[str, int]) -> str:
    """Totals kept per deposit currency, never mixed: '1,234.56 USD · 78.90 EUR' (0 when none)."""
    return " · ".join(f"{money(from_minor(v))} {c}" for c, v in sorted(minor.items())) or "0.00"


def summary_rows(view: dict[str, Any]) -> list[dict[str, str]]:
    """The headline figures of a stress, each with the element id a test reads."""
    return [
        {"id": "stress-accounts", "label": "Accounts stressed", "value": f"{view['accounts']:,}"},
        {"id": "stress-stopped", "label": "Stopped out", "value": f"{len(view['stopped_out']):,}"},
        {"id": "stress-closed", "label": "Positions closed", "value": f"{view['positions_closed']:,}"},
        {"id": "stress-absorbed", "label": "Negative balances (broker absorbs)",
         "value": per_currency(view["absorbed_minor"])},
        {"id": "stress-for", "label": "B-book P/L for the broker",
         "value": per_currency(view["b_book_for_broker_minor"])},
        {"id": "stress-against", "label": "B-book P/L against the broker",
         "value": per_currency(view["b_book_against_broker_minor"])},
        {"id": "stress-incomplete", "label": "Accounts lacking a quote (not stressed)",
         "value": f"{len(view['incomplete']):,}"},
        {"id": "stress-left-out", "label": "Accounts being restored (left out)",
         "value": f"{view['left_out']:,}"},
    ]


def stopped_rows(view: dict[str, Any]) -> list[dict[str, str]]:
    """Each stopped-out account: most absorbed first."""
    rows = []
    for a in view["stopped_out_accounts"]:
        change = a["equity_after_minor"] - a["equity_before_minor"]
        rows.append({
            "login": str(a["login"]), "href": f"/accounts/{a['login']}", "group": a["group"],
            "book": a["book"],
            "currency": a["currency"], "equity_before": money(from_minor(a["equity_before_minor"])),
            "equity_after": money(from_minor(a["equity_after_minor"])),
            "change": money(from_minor(change)), "change_color": sign_color(change),
            "level_before": percent(a["margin_level_before"]), "closed": str(len(a["closed"])),
            "absorbed": money(from_minor(a["absorbed_minor"])) if a["absorbed_minor"] else DASH,
        })
    return rows


def exposure_rows(view: dict[str, Any]) -> list[dict[str, str]]:
    """Net exposure after the shock, per symbol: all books, then the B-book."""
    b_book = view["exposure_after_b_book"]
    rows = []
    for symbol, net in view["exposure_after"].items():
        b = b_book.get(symbol, {"net_lots": 0.0, "usd_notional_cents": 0})
        rows.append({
            "symbol": symbol, "lots": lots(net["net_lots"]),
            "usd": money(from_minor(net["usd_notional_cents"])),
            "color": sign_color(net["usd_notional_cents"]),
            "b_lots": lots(b["net_lots"]), "b_usd": money(from_minor(b["usd_notional_cents"])),
            "b_color": sign_color(b["usd_notional_cents"]),
        })
    return rows


def var_rows(view: dict[str, Any]) -> list[dict[str, str]]:
    """One row per method and confidence: VaR in USD and the day of history that sets it."""
    return [
        {"method": "Historical" if f["method"] == "historical" else "Variance-covariance",
         "confidence": f"{f['confidence']:.0%}", "var": money(f["var_usd"], 0),
         "date": f["scenario_date"] or DASH, "id": f"var-{f['method']}-{round(f['confidence'] * 100)}"}
        for f in view["var"]
    ]


def contribution_rows(view: dict[str, Any]) -> list[dict[str, str]]:
    """Each symbol's exposure and its contribution to every VaR figure, largest exposure first."""
    exposure = view["exposure_usd"]
    rows = []
    for symbol in sorted(exposure, key=lambda s: -abs(exposure[s])):
        row = {"symbol": symbol, "exposure": money(exposure[symbol], 0),
               "color": sign_color(exposure[symbol])}
        for f in view["var"]:
            row[f"{f['method'][:4]}{round(f['confidence'] * 100)}"] = money(f["contributions_usd"][symbol], 0)
        rows.append(row)
    return rows


class StressState(SessionState):
    """The scenario, the last result (formatted) and the saved scenarios."""

    scenario: rx.Field[str] = rx.field(DEFAULT_SCENARIO)
    ran: rx.Field[str] = rx.field("")  # the scenario the figures shown are for, as the engine reads it
    error: rx.Field[str] = rx.field("")
    running: rx.Field[bool] = rx.field(False)
    summary: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    stopped: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    exposure: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    saved: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    save_error: rx.Field[str] = rx.field("")
    save_notice: rx.Field[str] = rx.field("")
    var_error: rx.Field[str] = rx.field("")
    var_running: rx.Field[bool] = rx.field(False)
    var_history: rx.Field[str] = rx.field("")
    var_figures: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    var_contributions: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)

    @rx.event
    async def compute_var(self) -> Any:
        """VaR of the live B-book now (book, history and computation off the event loop)."""
        self.var_running, self.var_error = True, ""
        yield
        try:
            identity = await self.authorized(Permission.VIEW_RISK)
            view = await var_service.var_live(get_settings(), identity.tenant_id)
        except Exception as exc:
            self.var_error = shown(exc, (service.EngineNotRunning, var_service.VarUnavailable))
            self.var_figures, self.var_contributions, self.var_history = [], [], ""
        else:
            history = view["history"]
            self.var_history = f"{history['days']} daily closes, {history['first']} to {history['last']}"
            self.var_figures = var_rows(view)
            self.var_contributions = contribution_rows(view)
        finally:
            self.var_running = False

    @rx.event
    async def load(self) -> None:
        """The saved scenarios (read in a thread)."""
        try:
            identity = await self.authorized(Permission.VIEW_RISK)
            rows = await asyncio.to_thread(service.list_scenarios, get_settings().database_url,
                                           identity.tenant_id)
        except Exception as exc:
            self.save_error = shown(exc)
            return
        self.saved = [{"id": str(r.id), "name": r.name, "scenario": r.scenario} for r in rows]

    def _show(self, view: dict[str, Any]) -> None:
        self.ran = ", ".join(view["scenario"])
        self.summary = summary_rows(view)
        self.stopped = stopped_rows(view)
        self.exposure = exposure_rows(view)

    @rx.event
    async def run(self, form: dict[str, str]) -> Any:
        """Stress the live book with the submitted scenario; a bad one names its part."""
        self.scenario = str(form.get("scenario", ""))
        self.running, self.error = True, ""
        yield
        try:
            identity = await self.authorized(Permission.VIEW_RISK)
            view = await service.stress_live(get_settings(),
                                             identity.tenant_id, self.scenario)
        except Exception as exc:
            self.error = shown(exc, (service.EngineNotRunning,))
            self.summary, self.stopped, self.exposure, self.ran = [], [], [], ""
        else:
            self._show(view)
        finally:
            self.running = False

    @rx.event
    def pick(self, scenario: str) -> EventSpec:
        """Put a saved scenario in the box and run it."""
        self.scenario = scenario
        return cast(Callable[[dict[str, str]], EventSpec], StressState.run)({"scenario": scenario})

    @rx.event
    async def save(self, form: dict[str, str]) -> None:
        """Save the scenario in the box under a name (checked against the book's symbols)."""
        self.save_error = self.save_notice = ""
        name = str(form.get("name", ""))
        try:
            identity = await self.changing(Permission.EDIT_RULES)
            settings = get_settings()
            service.check_scenario_text(self.scenario)
            parts = await service.live_parts(settings, identity.tenant_id)
            row = await asyncio.to_thread(service.save_scenario, settings.database_url, identity.tenant_id,
                                          identity.user_id, name, self.scenario, parts)
        except Exception as exc:
            self.save_error = shown(exc, (service.EngineNotRunning,))
            return
        self.save_notice = f"Saved “{row.name}”."
        self.saved = sorted([*self.saved, {"id": str(row.id), "name": row.name, "scenario": row.scenario}],
                            key=lambda r: r["name"])

    @rx.event
    async def delete(self, scenario_id: str) -> None:
        """Delete a saved scenario."""
        self.save_error = self.save_notice = ""
        try:
            identity = await self.changing(Permission.EDIT_RULES)
            await asyncio.to_thread(service.delete_scenario, get_settings().database_url, identity.tenant_id,
                                    int(scenario_id))
        except Exception as exc:
            self.save_error = shown(exc)
            return
        self.saved = [r for r in self.saved if r["id"] != scenario_id]

    @rx.event
    def set_scenario(self, value: str) -> None:
        """The scenario box as typed (so Save saves what is in it)."""
        self.scenario = value
