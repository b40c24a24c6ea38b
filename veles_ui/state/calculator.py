"""The what-if calculator: an account snapshot (JSON, as `veles risk calc` reads it) in, the MT5
figures of the account and of each position out, computed by the risk core."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import reflex as rx

from veles.config import get_settings
from veles.services.calculator import AccountNotFound, apply_edits, live_document, what_if
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
    account_login: rx.Field[str] = rx.field("")
    load_error: rx.Field[str] = rx.field("")
    loaded: rx.Field[str] = rx.field("")  # which live account the editors below were loaded from
    edit_positions: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    edit_quotes: rx.Field[list[dict[str, str]]] = rx.field(default_factory=list)
    revision: rx.Field[int] = rx.field(0)  # a new document from the editors remounts the JSON box

    def _editors(self, document: dict[str, Any]) -> None:
        """The positions and prices of `document` as the editors show them."""
        self.edit_positions = [
            {"ticket": str(p["ticket"]), "symbol": p["symbol"], "type": p["type"],
             "volume": f"{p['volume']:g}", "price_open": f"{p['price_open']:g}"}
            for p in document.get("positions", [])
        ]
        self.edit_quotes = [{"symbol": name, "bid": f"{q['bid']:.10g}", "ask": f"{q['ask']:.10g}"}
                            for name, q in document.get("quotes", {}).items()]

    @rx.event
    async def load_account(self, form: dict[str, str]) -> None:
        """Load a live account of the tenant (its positions and the prices its figures need, asked
        of the engine) into the editors and the JSON box, and calculate it."""
        self.account_login = str(form.get("login", "")).strip()
        self.load_error = ""
        text = self.account_login
        if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**63:
            self.load_error = f"login: {self.account_login!r} is not an MT5 login (a positive whole number)"
            return
        try:
            identity = await self.authorized(Permission.USE_CALCULATOR)
            document = await live_document(get_settings(), identity.tenant_id, int(self.account_login))
        except AccountNotFound as exc:
            self.load_error = str(exc)
            return
        except Exception as exc:
            self.load_error = shown(exc)
            return
        self.loaded = self.account_login
        self.revision += 1
        self._editors(document)
        await self._calculate(json.dumps(document, indent=2))

    @rx.event
    async def apply_changes(self, form: dict[str, str]) -> None:
        """The dealer's volumes (0 closes a position) and prices, applied to the document in the
        JSON box, then calculated; a bad entry is named."""
        try:
            document = apply_edits(json.loads(self.document), form)
        except json.JSONDecodeError as exc:
            self.error = f"document: not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
            return
        except Exception as exc:
            self.error = shown(exc)
            return
        self.revision += 1
        self._editors(document)
        await self._calculate(json.dumps(document, indent=2))

    @rx.event
    async def calculate(self, form: dict[str, str]) -> None:
        """Run the risk core on the submitted document (in a thread: a document with many
        positions is CPU work the other tabs must not wait for)."""
        await self._calculate(str(form.get("document", "")))

    async def _calculate(self, document: str) -> None:
        self.document = document
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
