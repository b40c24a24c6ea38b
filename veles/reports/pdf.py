"""PDF rendering through xhtml2pdf: an HTML template with page header and footer frames, page
numbers, table headers repeated on every page, charts embedded as PNG, and the DejaVu fonts
(shipped with matplotlib) embedded so every glyph used has a shape."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from xhtml2pdf import pisa

from veles.reports.charts import FONT_DIR, render_chart
from veles.reports.document import Document, Kind
from veles.reports.errors import ReportError
from veles.reports.formatting import as_text

FIGURES_PER_ROW = 3
# xhtml2pdf splits a long table across pages in time that grows with the square of its rows, so
# long tables are laid out as consecutive tables of this many rows (each repeats the header).
CHUNK_ROWS = 30
_NUMERIC = {Kind.INT, Kind.MONEY, Kind.PERCENT, Kind.LOTS, Kind.PRICE}
_env = Environment(loader=PackageLoader("veles.reports", "templates"), autoescape=select_autoescape(["html"]))


@dataclass(frozen=True)
class _Col:
    title: str
    css: str


def to_html(doc: Document) -> str:
    """The report as the HTML xhtml2pdf lays out (tests and debugging read it too)."""
    zone = doc.period.zone
    figures = [(f.label, as_text(f.value, f.kind, zone)) for f in doc.figures]
    tables: list[dict[str, Any]] = []
    for table in doc.tables:
        css = ["num" if c.kind in _NUMERIC else "" for c in table.columns]
        rows = [
            [(as_text(v, c.kind, zone), k) for v, c, k in zip(row, table.columns, css, strict=True)]
            for row in table.rows[: table.pdf_rows]
        ]
        left = len(table.rows) - len(rows)
        tables.append(
            {
                "title": table.title,
                "empty": table.empty,
                "left": f"{left:,} more row(s) in the Excel version of this report." if left else "",
                "columns": [_Col(c.title, k) for c, k in zip(table.columns, css, strict=True)],
                "chunks": [rows[i : i + CHUNK_ROWS] for i in range(0, len(rows), CHUNK_ROWS)],
            }
        )
    return _env.get_template("report.html").render(
        doc=doc,
        fonts=FONT_DIR.as_posix(),
        generated=f"{doc.generated_at:%Y-%m-%d %H:%M} UTC",
        figures=[figures[i : i + FIGURES_PER_ROW] for i in range(0, len(figures), FIGURES_PER_ROW)],
        charts=[base64.b64encode(render_chart(c, zone)).decode() for c in doc.charts],
        tables=tables,
    )


def render_pdf(doc: Document) -> bytes:
    """The report as a PDF file."""
    out = io.BytesIO()
    status = pisa.CreatePDF(to_html(doc), dest=out, encoding="utf-8")
    if status.err:
        raise ReportError(f"the PDF could not be laid out ({status.err} error(s) from xhtml2pdf)")
    return out.getvalue()
