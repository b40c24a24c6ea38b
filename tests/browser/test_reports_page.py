"""The reports page end to end against a real `veles demo` (engine, report worker and portal) in
headless Chromium: refusals by field, a report requested from the page turns `ready` live (no
reload) with a toast in every open tab of the user, the file comes through the expiring signed
link and is a valid PDF (pages looked at as PNGs) or workbook; an account statement lists the
deals the engine logged; a viewer downloads but cannot request, even with a crafted event; another
tenant's user gets 404 for the report and its link. (That Ctrl-C stops the report worker with
everything else is checked where the shared demo is stopped, in test_demo.py.)"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import pypdfium2 as pdfium
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize
from sqlmodel import col, select

from models.db import session_scope
from models.deals import DealRecord
from models.reports import Report, ReportStatus
from models.tenancy import Role, Tenant, User
from tests.browser.conftest import DEMO_ACCOUNTS
from veles.services.auth import hash_password

if TYPE_CHECKING:
    from conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray]
VIEWPORT: ViewportSize = {"width": 1366, "height": 900}
VIEWER = ("viewer@reports.test", "viewer-password")
OTHER = ("admin@other.test", "other-password")
DEMO_LOGIN_BASE = 100_000  # the demo broker's simulated accounts (veles/cli/demo.py), DEMO_ACCOUNTS of them
READY_MS = 180_000  # a report on a loaded two-core machine: gather, render, store


@pytest.fixture(scope="module")
def portal(demo: Demo) -> Demo:
    """The demo with a viewer in its tenant, and a second broker with an admin of its own."""
    demo.wait_until_up()
    demo.add_users((*VIEWER, Role.VIEWER))
    with session_scope(demo.database_url) as session:
        other = Tenant(name="Other Broker")
        session.add(other)
        session.flush()
        assert other.id is not None
        session.add(User(tenant_id=other.id, email=OTHER[0], password_hash=hash_password(OTHER[1]),
                         role=Role.TENANT_ADMIN))
    return demo


Opener = Callable[[], Page]


@pytest.fixture
def tabs(portal: Demo, browser: Browser) -> Iterator[Opener]:
    """Opens tabs on the demo, each in a context of its own; no tab may log a console error."""
    url = portal.wait_until_up()[0]
    opened: list[tuple[Page, list[str]]] = []

    def open_tab() -> Page:
        tab = browser.new_context(viewport=VIEWPORT, base_url=url, accept_downloads=True).new_page()
        errors: list[str] = []

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                errors.append(f"{msg.text} {msg.location.get('url')}")

        tab.on("console", on_console)
        opened.append((tab, errors))
        return tab

    yield open_tab
    for tab, errors in opened:
        tab.context.close()
        assert errors == [], f"console errors on {tab.url}: {errors}"


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_url("**/dashboard", wait_until="commit", timeout=60_000)


def open_reports(page: Page) -> None:
    page.goto("/reports")
    page.wait_for_selector("#reports-table", timeout=60_000)


def choose(page: Page, name: str, label: str) -> None:
    """Pick `label` in the form's Radix select `name`."""
    page.click(f"#report-{name}")
    page.get_by_role("option", name=label, exact=True).click()


def rows(page: Page) -> int:
    return page.locator("#reports-table tbody tr").count()


def request(page: Page, report: str, fmt: str, login: str = "") -> str:
    """Submit the form; returns the id of the report it queued (the newest row)."""
    choose(page, "type", report)
    choose(page, "format", fmt)
    page.fill("#report-login", login)
    notice = page.locator("#reports-notice")
    before = notice.inner_text() if notice.count() else ""  # an earlier request's notice may show
    page.click("#report-request")
    page.wait_for_function(
        "(before) => { const text = document.querySelector('#reports-notice')?.innerText ?? '';"
        " return /Report \\d+ queued/.test(text) && text !== before; }",
        arg=before, timeout=30_000,
    )
    found = re.search(r"Report (\d+) queued", notice.inner_text())
    assert found, notice.inner_text()
    return found.group(1)


def wait_ready(page: Page, report_id: str) -> None:
    """The row's status turns `ready` on its own: this waits on the DOM and never reloads."""
    page.wait_for_function(
        "(id) => document.querySelector(`#report-${id} .report-status`)?.innerText === 'ready'",
        arg=report_id, timeout=READY_MS,
    )


def download(page: Page, report_id: str, artifacts: Path, name: str) -> bytes:
    with page.expect_download(timeout=60_000) as info:
        page.click(f"#report-{report_id} .report-download")
    path = artifacts / name
    info.value.save_as(path)
    assert info.value.url.split("?")[0].endswith(f"/api/v1/reports/{report_id}/file")  # the signed link
    assert "sig=" in info.value.url
    return path.read_bytes()


def pdf_text(content: bytes, artifacts: Path, name: str) -> str:
    """The PDF's text; each page is saved as a PNG beside it for a person to look at."""
    document = pdfium.PdfDocument(content)
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            page.render(scale=1.4).to_pil().save(artifacts / f"{name}-page{index + 1}.png")
            texts.append(page.get_textpage().get_text_range())
    finally:
        document.close()
    return "\n".join(texts)


def test_bad_fields_are_named_and_nothing_is_queued(tabs: Opener, portal: Demo, artifacts: Path) -> None:
    _, email, password = portal.wait_until_up()
    page = tabs()
    sign_in(page, email, password)
    open_reports(page)
    before = rows(page)
    with session_scope(portal.database_url) as session:
        stored = len(session.exec(select(Report)).all())
    page.fill("#report-zone", "Moon/Base")
    page.click("#report-request")
    page.wait_for_selector("#error-time_zone")
    assert "not a known IANA time zone" in page.locator("#error-time_zone").inner_text()
    page.fill("#report-zone", "Europe/London")
    choose(page, "type", "Account statement")
    page.click("#report-request")
    page.wait_for_selector("#error-login")
    assert "needs the account's login" in page.locator("#error-login").inner_text()
    assert page.locator("#error-time_zone").count() == 0
    page.fill("#report-login", "12ab")
    page.click("#report-request")
    page.wait_for_function("() => document.querySelector('#error-login')?.innerText.includes('12ab')")
    page.screenshot(path=str(artifacts / "reports-field-errors.png"))
    assert rows(page) == before
    with session_scope(portal.database_url) as session:
        assert len(session.exec(select(Report)).all()) == stored


def test_request_ready_live_toast_everywhere_and_download(
    tabs: Opener, portal: Demo, artifacts: Path
) -> None:
    _, email, password = portal.wait_until_up()
    elsewhere = tabs()  # the same user on another page: told too
    sign_in(elsewhere, email, password)
    page = tabs()
    sign_in(page, email, password)
    open_reports(page)
    time.sleep(2.0)  # both tabs' followers have read their starting point

    pdf_id = request(page, "Daily risk summary", "PDF")
    page.wait_for_selector(f"#report-{pdf_id}")
    wait_ready(page, pdf_id)
    for tab in (elsewhere, page):  # the toast stays 20 s: long enough for both to be looked at
        toast = tab.locator("[data-sonner-toast]", has_text=f"report {pdf_id}")
        toast.wait_for(timeout=20_000)
        assert "is ready to download" in toast.inner_text()
    assert elsewhere.url.endswith("/dashboard")
    page.screenshot(path=str(artifacts / "reports-ready-toast.png"))
    elsewhere.screenshot(path=str(artifacts / "reports-toast-on-dashboard.png"))

    content = download(page, pdf_id, artifacts, "portal-daily-risk.pdf")
    assert content.startswith(b"%PDF")
    text = pdf_text(content, artifacts, "portal-daily-risk")
    assert "Daily risk summary" in text

    xlsx_id = request(page, "Exposure report", "XLSX")
    wait_ready(page, xlsx_id)
    workbook = download(page, xlsx_id, artifacts, "portal-exposure.xlsx")
    with zipfile.ZipFile(BytesIO(workbook)) as book:
        assert "xl/workbook.xml" in book.namelist()
        assert "Net exposure by symbol" in book.read("xl/sharedStrings.xml").decode()


def test_account_statement_lists_the_deals_the_engine_logged(
    tabs: Opener, portal: Demo, artifacts: Path
) -> None:
    _, email, password = portal.wait_until_up()
    # Only the demo broker's own accounts: other modules add connections to the shared demo whose
    # accounts' deals stay in the log after the connection is removed, and a statement of an
    # account the broker no longer holds is refused ("the broker has no account ...").
    own = select(DealRecord).where(col(DealRecord.tenant_id) == portal.tenant_id(),
                                   col(DealRecord.login) >= DEMO_LOGIN_BASE,
                                   col(DealRecord.login) < DEMO_LOGIN_BASE + DEMO_ACCOUNTS)
    with session_scope(portal.database_url) as session:  # wait for the live engine's first deals
        deadline = time.monotonic() + 120
        while not (deals := list(session.exec(own))) and time.monotonic() < deadline:
            time.sleep(1.0)
        logins = [d.login for d in deals]  # read before the session closes and expires the rows
    assert deals, "the demo engine logged no deal of its own accounts in two minutes"
    login = max(set(logins), key=logins.count)
    page = tabs()
    sign_in(page, email, password)
    open_reports(page)
    page.fill("#report-end", f"{datetime.now(UTC) + timedelta(minutes=5):%Y-%m-%dT%H:%M}")  # UTC form
    statement_id = request(page, "Account statement", "PDF", str(login))
    wait_ready(page, statement_id)
    text = pdf_text(download(page, statement_id, artifacts, "portal-statement.pdf"), artifacts,
                    "portal-statement")
    assert f"Account statement {login}" in text
    assert "Deals in the period" in text
    with session_scope(portal.database_url) as session:
        report = session.get(Report, int(statement_id))
        assert report is not None
        assert report.finished_at is not None
        assert report.period_end is not None
        end = report.period_end
        logged = session.exec(
            select(DealRecord).where(col(DealRecord.login) == login, col(DealRecord.executed_at) < end)
        ).all()
        tickets = [deal.ticket for deal in logged]  # read before the session closes
    assert tickets
    for ticket in tickets[:20]:
        assert str(ticket) in text


def test_viewer_downloads_but_cannot_request_even_with_a_crafted_event(
    tabs: Opener, portal: Demo, artifacts: Path
) -> None:
    with session_scope(portal.database_url) as session:
        ready = session.exec(select(Report).where(col(Report.status) == ReportStatus.READY)).first()
        session.expunge_all()  # the rows' ids are read after the session closes
        before = len(session.exec(select(Report)).all())
    assert ready is not None, "the test before this one leaves ready reports"
    page = tabs()
    sign_in(page, *VIEWER)
    open_reports(page)
    page.wait_for_selector("#reports-read-only")
    assert page.locator("#report-form").count() == 0
    assert download(page, str(ready.id), artifacts, "viewer-download.bin")[:2] in (b"%P", b"PK")
    # As a user who edits the page's JavaScript could: the next event the page sends (Sign out)
    # is rewritten, just before it leaves, into the reports page's "request" event.
    page.evaluate(r"""() => { window.__reflex_otel = {onEventSend: (event) => {
        if (event.name.endsWith('.logout') && !window.__crafted) {
            window.__crafted = event.name;
            event.name = event.name.replace(/session_state\.logout$/,
                'session_state.veles_ui___state___reports____reports_state.request');
            const now = new Date().toISOString().slice(0, 16);
            event.payload = {form: {type: 'alerts_log', format: 'pdf', start: '2020-01-01T00:00', end: now,
                                    time_zone: 'UTC'}};
        }
    }}; }""")
    page.click("#sign-out")
    page.wait_for_selector("#reports-error")
    assert "may not request reports" in page.locator("#reports-error").inner_text()
    assert page.evaluate("window.__crafted").endswith(".logout")
    page.screenshot(path=str(artifacts / "reports-viewer-refused.png"))
    with session_scope(portal.database_url) as session:
        assert len(session.exec(select(Report)).all()) == before


def test_another_tenants_user_gets_404_for_the_report_and_its_link(
    tabs: Opener, portal: Demo, artifacts: Path
) -> None:
    with session_scope(portal.database_url) as session:
        ready = session.exec(select(Report).where(col(Report.status) == ReportStatus.READY)).first()
        session.expunge_all()  # the rows' ids are read after the session closes
    assert ready is not None
    page = tabs()
    sign_in(page, *OTHER)
    open_reports(page)
    assert page.locator(f"#report-{ready.id}").count() == 0  # not in the other broker's list
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "veles_token")
    headers = {"Authorization": f"Bearer {token}"}
    for path in (f"/api/v1/reports/{ready.id}", f"/api/v1/reports/{ready.id}/download"):
        assert page.request.get(path, headers=headers).status == 404
    assert page.request.post(f"/api/v1/reports/{ready.id}/link", headers=headers).status == 404
    page.screenshot(path=str(artifacts / "reports-other-tenant.png"))

