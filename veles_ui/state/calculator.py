"""The what-if calculator: an account snapshot (JSON, as `veles risk calc` reads it) in, the MT5
figures of the account and of each position out, computed by the risk core."""

from __future__ import annotations

import asyncio
import json

import reflex as rx

from veles.services.calculator import what_if
from veles.services.permissions import Permission
from veles_ui.format import money, percent, sign_color
from veles_ui.state.errors import shown
from veles_ui.state.session import SessionState

EXAMPLE = {
    "account": {"currency": "USD", "leverage": 100, "balance": 10_000},
    "symbols": {"EURUSD": {"base_currency": "EUR", "margin_currency": "EUR", "profit_currency": "USD"}},
    "quotes": {"EURUSD": {"bid": 1.0850, "ask": 1.0852}},
    "positions": [{"ticket": 1, "symbol": "EURUSD", "type": "buy", "volume": 2.0, "price_open": 1.0800}],
}


class CalculatorState(SessionState):
    """The document being edited and the last answer (or the field it was refused for)."""

    document: rx.Field[str] = rx.field(json.dumps(EXAMPLE, indent=2))
    error: rx.Field[str] = rx.field("")
    figures: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    positions: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)

    @rx.event
    async def calculate(self, form: dict[str, str]) -> None:
        """Run the risk core on the submitted document (in a thread: a document with many
        positions is CPU work the other tabs must not wait for)."""
        self.document = str(form.get("document", ""))
        self.figures, self.positions = [], []
        try:
            await self.authorized(Permission.USE_CALCULATOR)
            result = await asyncio.to_thread(what_if, json.loads(self.document))
        except json.JSONDecodeError as exc:
            self.error = f"document: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
            return
        except Exception as exc:  # a refused field, or a server fault: shown, never raised
            self.error = shown(exc)
            return
        self.error = ""
        a = result.account
        self.figures = [
            {"label": label, "value": value}
            for label, value in (
                ("Balance", money(a.balance)), ("Credit", money(a.credit)),
                ("Floating P/L", money(a.profit)), ("Equity", money(a.equity)), ("Margin", money(a.margin)),
                ("Free margin", money(a.free_margin)), ("Margin level", percent(a.margin_level)),
                ("State", a.state.replace("_", " ")),
            )
        ]
        self.positions = [
            {"ticket": str(p.ticket), "symbol": p.symbol, "type": p.type, "volume": money(p.volume),
             "margin": money(p.margin), "profit": money(p.profit), "profit_color": sign_color(p.profit)}
            for p in result.positions
        ]
