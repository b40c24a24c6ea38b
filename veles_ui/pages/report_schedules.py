"""Report schedules: the management, stress and other reports e-mailed daily or weekly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import reflex as rx
from reflex.event import EventSpec
from reflex.vars import ObjectVar

from veles.services.permissions import Permission
from veles_ui.components.feedback import error_callout, notice_callout
from veles_ui.components.nav import top_nav
from veles_ui.state.report_schedules import ReportSchedulesState as S
from veles_ui.state.reports import TYPE_LABELS
from veles_ui.state.session import SessionState

_toggle = cast(Callable[[Any, Any], EventSpec], S.toggle)
_delete = cast(Callable[[Any], EventSpec], S.delete)
_CAN_EDIT = SessionState.permissions.contains(Permission.REQUEST_REPORTS.value)
SCHEDULED = {k: v for k, v in TYPE_LABELS.items() if k != "account_statement"}


def _select(name: str, options: dict[str, str], default: str) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(id=f"schedule-{name}", width="13em"),
        rx.select.content(*(rx.select.item(label, value=value) for value, label in options.items())),
        name=name,
        default_value=default,
    )


def _labelled(label: str, control: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, size="1", weight="medium"), control, spacing="1")


def _form() -> rx.Component:
    return rx.form(
        rx.flex(
            _labelled("Report", _select("type", SCHEDULED, "management")),
            _labelled("Format", _select("format", {"pdf": "PDF", "xlsx": "Excel"}, "pdf")),
            _labelled("Every", _select("frequency", {"daily": "day", "weekly": "week"}, "daily")),
            _labelled(
                "Weekday (weekly)",
                _select(
                    "weekday",
                    {
                        str(i): d
                        for i, d in enumerate(
                            ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
                        )
                    },
                    "0",
                ),
            ),
            _labelled(
                "At (HH:MM)",
                rx.input(name="local_time", default_value="07:00", id="schedule-time", width="6em"),
            ),
            _labelled(
                "Time zone", rx.input(name="time_zone", default_value="UTC", id="schedule-zone", width="11em")
            ),
            _labelled(
                "Recipients (comma-separated)",
                rx.input(name="recipients", id="schedule-recipients", width="20em"),
            ),
            rx.button("Add schedule", type="submit", id="schedule-add"),
            wrap="wrap",
            spacing="3",
            align="end",
        ),
        on_submit=S.create,
        reset_on_submit=False,
    )


def _row(r: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(r["id"]),
        rx.table.cell(r["type"]),
        rx.table.cell(r["format"]),
        rx.table.cell(r["when"]),
        rx.table.cell(r["recipients"]),
        rx.table.cell(r["enabled"]),
        rx.table.cell(
            rx.cond(
                _CAN_EDIT,
                rx.hstack(
                    rx.form(
                        rx.hstack(
                            rx.el.input(type="hidden", name="schedule_id", value=r["id"]),
                            rx.input(
                                name="local_time",
                                default_value=r["local_time"],
                                size="1",
                                width="5em",
                                aria_label="New local time",
                            ),
                            rx.button("Re-time", size="1", variant="soft", type="submit"),
                            spacing="1",
                        ),
                        on_submit=S.retime,
                        reset_on_submit=False,
                    ),
                    rx.button(
                        r["toggle"], size="1", variant="outline", on_click=_toggle(r["id"], r["enabled"])
                    ),
                    rx.button(
                        "Delete", size="1", variant="ghost", color_scheme="tomato", on_click=_delete(r["id"])
                    ),
                    spacing="2",
                    align="center",
                ),
            )
        ),
        class_name="schedule-row",
    )


def report_schedules_page() -> rx.Component:
    """The form for roles that may request reports; the schedules for everyone who may view risk."""
    return rx.vstack(
        top_nav(),
        rx.hstack(
            rx.heading("Report schedules", size="5"),
            rx.link("← Reports", href="/reports", size="2"),
            align="center",
            spacing="4",
        ),
        rx.text(
            "Each schedule e-mails its report at a local time, covering the day (or week) before. The daily "
            "management report has B-book P/L, volumes, money in and out, top winners and losers, stress and "
            "VaR; the stress report runs every saved stress scenario on the live book.",
            color_scheme="gray",
            size="2",
        ),
        rx.cond(_CAN_EDIT, _form()),
        error_callout(S.error, "schedule-error"),
        notice_callout(S.notice, "schedule-notice"),
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *(
                        rx.table.column_header_cell(h)
                        for h in ("#", "Report", "Format", "When", "Recipients", "Running", "")
                    )
                )
            ),
            rx.table.body(rx.foreach(S.schedules, _row)),
            size="1",
            variant="surface",
            width="100%",
            id="schedules-table",
        ),
        padding="1em",
        spacing="3",
        width="100%",
    )
