"""Values as text, for the PDF (Excel keeps them typed and applies `EXCEL_FORMATS`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from veles.reports.document import Kind, Price

UNKNOWN_DIGITS = 5  # at most this many places for a price whose symbol's digits are not known

EXCEL_FORMATS: dict[Kind, str] = {
    Kind.TEXT: "@",
    Kind.INT: "0",
    Kind.MONEY: "#,##0.00;[Red]-#,##0.00",
    Kind.PERCENT: '0.00"%"',  # the engine's levels are already percent (150.0 means 150 %)
    Kind.LOTS: "#,##0.00###",
    Kind.PRICE: "#,##0.00###",  # a column's default; each known price gets its digits' format
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
    if kind is Kind.LOTS:  # 0.10 as the terminal writes it; a 0.001 step keeps its third place
        return _places(value, 2, 5)
    if isinstance(value, Price):
        return price_text(value)
    if kind is Kind.INT:
        return f"{value:.0f}" if isinstance(value, float) else str(value)
    if kind is Kind.TIME and isinstance(value, datetime):
        return f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"
    return str(value)


def price_text(price: Price) -> str:
    """To the symbol's digits; unknown digits: up to UNKNOWN_DIGITS places, at least two."""
    if price.digits is not None:
        return f"{price.value:,.{price.digits}f}"
    return _places(price.value, 2, UNKNOWN_DIGITS)


def _places(value: float, least: int, most: int) -> str:
    """`value` with as many decimal places as it needs, between `least` and `most`."""
    text = f"{value:,.{most}f}".rstrip("0")
    return text + "0" * max(0, least - len(text.partition(".")[2]))


def price_format(digits: int | None) -> str:
    """Excel's number format for prices of a symbol with `digits` places."""
    if digits is None:
        return EXCEL_FORMATS[Kind.PRICE]
    return "#,##0" + ("." + "0" * digits if digits else "")
