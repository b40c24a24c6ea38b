"""How numbers look on screen: fixed decimals, thousands separators, a sign colour."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

DASH = "—"


def money(value: float | None, decimals: int = 2) -> str:
    """1234567.891 → '1,234,567.89'; missing → a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:,.{decimals}f}"


def percent(value: float | None, decimals: int = 2) -> str:
    """Margin level and similar: '245.31%'; None (no margin in use) → a dash."""
    return DASH if value is None else f"{value:,.{decimals}f}%"


def price(value: float, digits: int | None) -> str:
    """A price to its symbol's digits, as the terminal shows it (XAUUSD 2338.45, EURUSD 1.08512);
    5 for a symbol the engine has no specification of (the most any FX quote uses)."""
    return f"{value:,.{5 if digits is None else digits}f}"


def sign_color(value: float | None) -> str:
    """Radix colour for a signed amount: green gains, red losses, grey zero or missing."""
    if not value:
        return "gray"
    return "grass" if value > 0 else "tomato"


def state_color(state: str) -> str:
    """Badge colour for an account's margin state."""
    return {"ok": "grass", "margin_call": "amber", "stop_out": "tomato"}.get(state, "gray")


def account_view(row: dict[str, Any], servers: Mapping[str, str] | None = None) -> dict[str, str]:
    """One account row as the tables show it: every figure formatted, with its colours and link;
    the server by its name where `servers` names it (connection id -> name)."""
    server = row.get("server") or ""
    return {
        "login": str(row["login"]),
        "href": f"/accounts/{row['login']}",
        "group": row["group"],
        "name": row.get("name") or DASH,
        "country": row.get("country") or DASH,
        "server": (servers or {}).get(server, server) or DASH,
        "book": row["book"],
        "currency": row.get("currency", ""),
        "leverage": f"1:{row['leverage']:,.0f}" if row.get("leverage") else DASH,
        "balance": money(row["balance"]),
        "equity": money(row["equity"]),
        "profit": money(row["profit"]),
        "profit_color": sign_color(row["profit"]),
        "margin": money(row["margin"]),
        "margin_level": percent(row["margin_level"]),
        "drawdown": percent(row["drawdown"] * 100.0),
        "risk_score": money(row["risk_score"], 1),
        "state": row["state"].replace("_", " "),
        "state_color": state_color(row["state"]),
    }


def lots(value: float | None) -> str:
    """Net volume in lots, two decimals, signed (long positive, short negative)."""
    return money(value)


def exposure_view(row: dict[str, Any]) -> dict[str, str]:
    """One symbol of the book's net exposure as the overview table shows it: lots and USD, total
    and per book (A-book hedged with the LP, B-book kept by the broker), coloured by sign."""
    view = {"symbol": str(row["symbol"])}
    for prefix in ("", "a_", "b_"):
        view[f"{prefix}lots"] = lots(row[f"{prefix}lots"])
        view[f"{prefix}usd"] = money(row[f"{prefix}usd"])
        view[f"{prefix}color"] = sign_color(row[f"{prefix}usd"])
    return view


def severity_color(severity: str) -> str:
    """Badge colour of an alert's severity."""
    return {"critical": "tomato", "warning": "amber", "info": "blue"}.get(severity, "gray")


def clock(moment: datetime | None) -> str:
    """A UTC time as the desk reads it, 'YYYY-MM-DD HH:MM:SS'; missing → a dash."""
    return DASH if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
