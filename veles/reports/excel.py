"""Excel rendering through XlsxWriter: a summary sheet with the headline figures and native
charts, then one sheet per table with typed cells, number formats, a frozen header and a filter."""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from veles.reports.document import Chart, Document, Kind, Price, Table
from veles.reports.formatting import EXCEL_FORMATS, price_format

HEADER_ROW = 3  # rows 0-2 say what the sheet is and for which period


def _sheet_name(title: str, used: set[str]) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique in the workbook."""
    base = re.sub(r"[\[\]:*?/\\]", " ", title)[:28].strip() or "Sheet"
    name, n = base, 2
    while name.lower() in used:
        name, n = f"{base} {n}", n + 1
    used.add(name.lower())
    return name


def _cell(value: Any, kind: Kind, zone: str) -> Any:
    """Excel has no time zones: times are written as the report zone's wall clock. A price is its
    number (its digits become the cell's format)."""
    if isinstance(value, Price):
        return value.value
    if kind is Kind.TIME and isinstance(value, datetime):
        from zoneinfo import ZoneInfo

        return value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    return value


# What a spreadsheet reads as the start of a formula (OWASP "CSV injection"): =, +, -, @, and tab
# or carriage return before one of them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _write(sheet: Worksheet, row: int, col: int, value: Any, cell_format: Any, text_guard: Any) -> None:
    """One cell by the type of its value, never by its content: a trader-set deal comment such as
    `=HYPERLINK(...)` is stored as the text it is (`write()` would make it a formula, and a URL a
    link). Text that starts like a formula also gets Excel's quote prefix, the stored form of a
    typed leading apostrophe, so editing the cell cannot turn it into one either; the text shown
    is unchanged."""
    if isinstance(value, str):
        guarded = value.startswith(FORMULA_STARTS)
        sheet.write_string(row, col, value, text_guard if guarded else cell_format)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value, cell_format)
    elif isinstance(value, int | float):
        sheet.write_number(row, col, value, cell_format)
    elif isinstance(value, datetime):
        sheet.write_datetime(row, col, value, cell_format)
    else:
        sheet.write_string(row, col, str(value), cell_format)


def _title_rows(sheet: Worksheet, doc: Document, title: str, bold: Any) -> None:
    sheet.write_string(0, 0, f"{doc.title} · {title}", bold)
    sheet.write_string(
        1, 0, f"{doc.tenant} · {doc.period.label()} · generated {doc.generated_at:%Y-%m-%d %H:%M} UTC"
    )


def _table_sheet(
    book: Workbook, doc: Document, table: Table, name: str, formats: dict[Kind, Any], bold: Any, header: Any,
    text_guard: Any,
) -> None:
    sheet = book.add_worksheet(name)
    prices: dict[int | None, Any] = {}  # one format per number of digits

    def cell_format(value: Any, kind: Kind) -> Any:
        if not isinstance(value, Price):
            return formats[kind]
        if value.digits not in prices:
            prices[value.digits] = book.add_format({"num_format": price_format(value.digits)})
        return prices[value.digits]

    _title_rows(sheet, doc, table.title, bold)
    for c, column in enumerate(table.columns):
        sheet.write_string(HEADER_ROW, c, column.title, header)
        sheet.set_column(c, c, 12 if column.kind is not Kind.TEXT else 16, formats[column.kind])
    for r, row in enumerate(table.rows, start=HEADER_ROW + 1):
        for c, (value, column) in enumerate(zip(row, table.columns, strict=True)):
            if value is None:
                sheet.write_blank(r, c, None, formats[column.kind])
            else:
                typed = _cell(value, column.kind, doc.period.zone)
                _write(sheet, r, c, typed, cell_format(value, column.kind), text_guard)
    if not table.rows:
        sheet.write_string(HEADER_ROW + 1, 0, table.empty)
    sheet.freeze_panes(HEADER_ROW + 1, 0)
    sheet.autofilter(HEADER_ROW, 0, HEADER_ROW + max(1, len(table.rows)), len(table.columns) - 1)
    sheet.set_header(f"&L{doc.tenant}&C{doc.title}&R{doc.period.zone}")
    sheet.set_footer("&CPage &P of &N")
    sheet.repeat_rows(HEADER_ROW)
    sheet.set_landscape()


def _native_chart(book: Workbook, chart: Chart, sheet_name: str, table: Table) -> Any:
    """The chart drawn by Excel from the table sheet's cells (first column = categories)."""
    native = book.add_chart({"type": "column"})
    last = HEADER_ROW + min(len(table.rows), len(chart.categories))
    by_title = {c.title: i for i, c in enumerate(table.columns)}
    for name in chart.series:
        column = by_title.get(f"{name} USD", by_title.get(name))
        if column is None:
            continue
        native.add_series(
            {
                "name": name,
                "categories": [sheet_name, HEADER_ROW + 1, 0, last, 0],
                "values": [sheet_name, HEADER_ROW + 1, column, last, column],
            }
        )
    native.set_title({"name": chart.title})
    native.set_y_axis({"name": chart.y_label, "num_format": "#,##0"})
    native.set_size({"width": 900, "height": 360})
    return native


def render_xlsx(doc: Document) -> bytes:
    """The report as an .xlsx workbook."""
    out = io.BytesIO()
    # No guessing from content anywhere (cells are written by type in `_write`, this is a backstop).
    book = xlsxwriter.Workbook(out, {"in_memory": True, "default_date_format": EXCEL_FORMATS[Kind.TIME],
                                     "strings_to_formulas": False, "strings_to_urls": False,
                                     "strings_to_numbers": False})
    text_guard = book.add_format({"quote_prefix": True})
    bold = book.add_format({"bold": True, "font_size": 13})
    header = book.add_format({"bold": True, "bg_color": "#E8EEF6", "bottom": 2})
    formats = {kind: book.add_format({"num_format": fmt}) for kind, fmt in EXCEL_FORMATS.items()}
    used: set[str] = set()
    summary = book.add_worksheet(_sheet_name("Summary", used))
    _title_rows(summary, doc, "Summary", bold)
    summary.write_string(2, 0, f"Time zone: {doc.period.zone}")
    summary.set_column(0, 0, 22)
    summary.set_column(1, 1, 18)
    for r, figure in enumerate(doc.figures, start=HEADER_ROW + 1):
        summary.write_string(r, 0, figure.label)
        if figure.value is None:
            summary.write_blank(r, 1, None)
        else:
            _write(summary, r, 1, figure.value, formats[figure.kind], text_guard)
    for n, note in enumerate(doc.notes):
        summary.write_string(HEADER_ROW + len(doc.figures) + 2 + n, 0, note)
    names = {table.title: _sheet_name(table.title, used) for table in doc.tables}
    for table in doc.tables:
        _table_sheet(book, doc, table, names[table.title], formats, bold, header, text_guard)
    tables = {t.title: t for t in doc.tables}
    row = HEADER_ROW + len(doc.figures) + len(doc.notes) + 3
    for chart in doc.charts:
        if chart.table in tables:
            summary.insert_chart(row, 0, _native_chart(book, chart, names[chart.table], tables[chart.table]))
            row += 20
    book.close()
    return out.getvalue()
