"""Reports: request one (roles with the request_reports permission), see the tenant's reports with
their status as it changes, download the ready ones through an expiring link."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import NumberVar, ObjectVar

from models.reports import ReportFormat
from veles.services.permissions import Permission
from veles_ui.components.feedback import error_callout, notice_callout
from veles_ui.components.nav import top_nav
from veles_ui.components.record_table import record_table
from veles_ui.state.reports import TYPE_LABELS
from veles_ui.state.reports import ReportsState as S

_download = cast(Callable[[Any], EventSpec], S.download)
_CAN_REQUEST = S.permissions.contains(Permission.REQUEST_REPORTS.value)
_FORMATS = {f.value: f.value.upper() for f in ReportFormat}
_TENANT = cast(NumberVar[int], S.tenant_id)


def _field(name: str, label: str, control: rx.Component) -> rx.Component:
    """A labelled control with its own error line, shown when the last refusal named it."""
    return rx.vstack(
        rx.text(label, size="1", weight="medium", as_="label"),
        control,
        rx.cond(S.error_field == name, rx.text(S.error, size="1", color_scheme="tomato", id=f"error-{name}",
                                               role="alert")),
        spacing="1",
    )


def _select(name: str, options: dict[str, str], default: str) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(id=f"report-{name}", width="14em"),
        rx.select.content(*(rx.select.item(label, value=value) for value, label in options.items())),
        name=name,
        default_value=default,
    )


def _form() -> rx.Component:
    return rx.form(
        rx.flex(
            _field("type", "Report", _select("type", TYPE_LABELS, "daily_risk")),
            _field("format", "Format", _select("format", _FORMATS, "pdf")),
            # keyed by the default: the input is made again with it once the page's state arrives
            _field("start", "From", rx.input(name="start", type="datetime-local", id="report-start",
                                             default_value=S.default_start, key=S.default_start,
                                             required=True)),
            _field("end", "To", rx.input(name="end", type="datetime-local", id="report-end",
                                         default_value=S.default_end, key=S.default_end, required=True)),
            _field("time_zone", "Time zone (IANA)", rx.input(
                name="time_zone", id="report-zone", default_value="UTC", width="12em", required=True)),
            _field("login", "Account (statements)", rx.input(name="login", id="report-login", width="10em",
                                                             input_mode="numeric", placeholder="login")),
            rx.vstack(rx.text("\u00a0", size="1"),  # a blank label: the button lines up with the fields
                      rx.button("Request report", type="submit", id="report-request"), spacing="1"),
            spacing="3",
            align="start",
            wrap="wrap",
        ),
        on_submit=S.request,
        reset_on_submit=False,
        id="report-form",
    )


def _row(report: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(report["id"]),
        rx.table.cell(report["label"]),
        rx.table.cell(report["format"]),
        rx.table.cell(report["period"]),
        rx.table.cell(report["requested"], white_space="nowrap"),
        rx.table.cell(
            rx.badge(report["status"], color_scheme=report["status_color"], class_name="report-status"),
            rx.cond(report["error"] != "", rx.text(report["error"], size="1", color_scheme="tomato",
                                                   class_name="report-error")),
        ),
        rx.table.cell(rx.cond(report["ready"] == "yes", rx.button(
            "Download", size="1", variant="soft", on_click=_download(report["id"]),
            class_name="report-download"))),
        id="report-" + report["id"],
    )


def reports_page() -> rx.Component:
    """The form for roles that may request; the list, live, for everyone who may view risk."""
    return rx.vstack(
        top_nav(),
        rx.hstack(rx.heading("Reports", size="5"),
                  rx.link("Schedules →", href="/reports/schedules", id="reports-schedules-link", size="2"),
                  align="center", spacing="4"),
        rx.cond(_CAN_REQUEST, _form(),
                rx.callout("Your role can download reports but not request them: ask a risk manager.",
                           icon="info", id="reports-read-only")),
        rx.cond(S.error_field == "", error_callout(S.error, "reports-error")),
        notice_callout(S.notice, "reports-notice"),
        record_table(
            ("#", "Report", "Format", "Period", "Requested (UTC)", "Status", ""),
            S.reports, _row, "reports-table",
        ),
        rx.cond(S.reports.length() == 0, rx.text("No reports yet.", color_scheme="gray", id="reports-empty")),
        padding="1em",
        spacing="3",
        width="100%",
    )


def report_notices(stateful: bool) -> rx.Component | None:
    """An app-wide wrap (on every page) that starts the tab's follower of report notices, which
    shows the toasts: mounted when someone signs in and again when the signed-in tenant changes.

    The condition and the key sit outside the span on purpose: Reflex compiles the span with its
    `on_mount` into a memoized component whose effect runs once, so a key on the span itself
    would re-create the DOM node but never start a new follower (a tab that signed in without a
    page load was then never told)."""
    if not stateful:
        return None
    follower = rx.el.span(hidden=True, on_mount=S.follow, id="report-notices")
    return rx.cond(_TENANT > 0, rx.fragment(follower, key=_TENANT.to_string()))
