"""A report laid out once, rendered twice: the PDF and the Excel renderers both read a `Document`,
so the two files of one report always carry the same figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from veles.reports.request import Period


class Kind(StrEnum):
    """How a value is written: drives PDF text formatting and Excel number formats alike."""

    TEXT = "text"
    INT = "int"
    MONEY = "money"
    PERCENT = "percent"
    LOTS = "lots"
    PRICE = "price"  # a `Price`: written to its symbol's digits
    TIME = "time"


@dataclass(frozen=True)
class Price:
    """A price and the decimal places its symbol is quoted to, so a report writes EURUSD 1.08390
    and XAUUSD 2345.67 as the MT5 terminal does (None: the symbol's digits are not known, say a
    symbol the server no longer lists)."""

    value: float
    digits: int | None


@dataclass(frozen=True)
class Column:
    """A table column: heading and the kind of its values."""

    title: str
    kind: Kind = Kind.TEXT


@dataclass(frozen=True)
class Table:
    """A titled table; `empty` is what to say when it has no rows.

    `pdf_rows` caps what the PDF lays out: xhtml2pdf needs ~0.1 s per 1,000-account page, so a
    full account list belongs in the workbook, and the PDF says how many rows it left there."""

    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    empty: str = "None in this period."
    pdf_rows: int | None = None  # the PDF shows at most this many (0: none); Excel shows them all


@dataclass(frozen=True)
class Chart:
    """A bar chart (categories) or a line chart (time on x); one or more named series.

    `table` names the document table holding the same numbers, so Excel can chart them natively."""

    title: str
    kind: str  # "bar" | "line"
    categories: list[Any]
    series: dict[str, list[float]]
    y_label: str
    table: str | None = None


@dataclass(frozen=True)
class Figure:
    """A headline number of the summary block."""

    label: str
    value: Any
    kind: Kind


@dataclass(frozen=True)
class Document:
    """Everything a rendered report shows."""

    title: str
    tenant: str
    period: Period
    generated_at: datetime
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
