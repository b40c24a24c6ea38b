"""Values as text, for the PDF (Excel keeps them typed and applies `EXCEL_FORMATS`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from veles.reports.document import Kind

EXCEL_FORMATS: dict[Kind, str] = {
    Kind.TEXT: "@",
    Kind.INT: "0",
    Kind.MONEY: "#,##0.00;[Red]-#,##0.00",
    Kind.PERCENT: '0.00"%"',  # the engine's levels are already percent (150.0 means 150 %)
    Kind.LOTS: "#,##0.00###",
    Kind.TIME: "yyyy-mm-dd hh:mm",
}


def as_text(value: Any, kind: Kind, zone: str) -> str:
    """`value` as the PDF prints it; missing values are an en dash."""
    if value is None:
        return "\u2013"
    if kind is Kind.MONEY:
        return f"{value:,.2f}"
    if kind is Kind.PERCENT:
        return f"{value:,.2f} %"
    if kind is Kind.LOTS:
        return f"{value:,.2f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.5g}"
    if kind is Kind.INT:
        return f"{value:.0f}" if isinstance(value, float) else str(value)
    if kind is Kind.TIME and isinstance(value, datetime):
        return f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"
    return str(value)
