"""A document to file bytes in the requested format, with the file's name and MIME type."""

from __future__ import annotations

from dataclasses import dataclass

from models.reports import ReportFormat
from veles.reports.document import Document
from veles.reports.excel import render_xlsx
from veles.reports.pdf import render_pdf

CONTENT_TYPES = {
    ReportFormat.PDF: "application/pdf",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class RenderedFile:
    """A finished report file."""

    content: bytes
    content_type: str
    extension: str


def render(doc: Document, fmt: ReportFormat) -> RenderedFile:
    """Render `doc` as PDF or Excel."""
    content = render_pdf(doc) if fmt is ReportFormat.PDF else render_xlsx(doc)
    return RenderedFile(content, CONTENT_TYPES[fmt], fmt.value)


def file_name(title: str, report_id: int, fmt: ReportFormat) -> str:
    """What the download is called: the title in lower-case words, and the report's id."""
    words = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
    return f"{'-'.join(w for w in words.split('-') if w)}-{report_id}.{fmt.value}"
