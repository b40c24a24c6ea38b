"""A trader's toxic-flow profile: score and labels, each detector's points and evidence, the
markout curve, the holding-time histogram, linked accounts and the A/B-book advice."""

from __future__ import annotations

import reflex as rx
from reflex.vars import ObjectVar

from veles_ui.components.freshness import freshness
from veles_ui.components.metrics import metric
from veles_ui.components.nav import top_nav
from veles_ui.components.sortable_accounts import NUMERIC
from veles_ui.components.toxic_flow import holds_chart, markout_chart
from veles_ui.state.flow import FlowProfileState as S


def _finding(row: ObjectVar[dict[str, str]]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["detector"]),
        rx.table.cell(row["points"], style=NUMERIC, class_name="finding-points"),
        rx.table.cell(rx.badge(row["fired"], color_scheme=row["fired_color"])),
        rx.table.cell(row["strength"], style=NUMERIC),
        rx.table.cell(rx.text(row["numbers"], size="1")),
        rx.table.cell(rx.text(row["tickets"], size="1")),
        id="finding-" + row["key"],
    )


def _found() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.heading("Trader ", S.account, size="5", id="flow-title"),
            rx.badge(S.label, color_scheme=S.label_color, size="2", id="flow-label"),
            rx.link("Account figures", href="/accounts/" + S.account.to_string(), size="2"),
            freshness(S.stamp),
            align="center",
            spacing="3",
        ),
        rx.flex(
            metric("Toxicity (0-100)", S.score, test_id="flow-score"),
            metric("Margin risk", S.margin_risk, test_id="flow-margin-risk"),
            metric("Labels", S.labels, test_id="flow-labels"),
            metric("Book", S.book),
            metric("Client result (USD)", S.client_result, S.client_color, test_id="flow-client-result"),
            metric("A-book would save", S.saved, test_id="flow-saved"),
            wrap="wrap",
            spacing="3",
        ),
        rx.callout(S.advice_text, icon="info", color_scheme=rx.cond(S.advice == "A", "tomato", "gray"),
                   id="flow-advice"),
        rx.heading("Score breakdown", size="4"),
        rx.table.root(
            rx.table.header(rx.table.row(
                rx.table.column_header_cell("Detector"),
                rx.table.column_header_cell("Points", style=NUMERIC),
                rx.table.column_header_cell("Fired"),
                rx.table.column_header_cell("Strength", style=NUMERIC),
                rx.table.column_header_cell("Measured"),
                rx.table.column_header_cell("Evidence deals"),
            )),
            rx.table.body(rx.foreach(S.findings, _finding)),
            size="1", variant="surface", width="100%", id="flow-findings",
        ),
        rx.grid(
            rx.card(rx.text("Markout after fills (spreads, client's favour)", size="2", weight="bold"),
                    markout_chart(S.markout)),
            rx.card(rx.text("Holding time of closed trades", size="2", weight="bold"), holds_chart(S.holds)),
            columns="2", spacing="3", width="100%",
        ),
        rx.hstack(
            rx.text("Evidence deals: ", size="2", weight="bold"),
            rx.text(S.evidence, size="2", id="flow-evidence"),
        ),
        rx.hstack(
            rx.text("Linked accounts: ", size="2", weight="bold"),
            rx.cond(
                S.linked.length() > 0,
                rx.foreach(S.linked, lambda x: rx.link(x["login"], href=x["href"], class_name="linked-link")),
                rx.text("none", size="2", color_scheme="gray"),
            ),
            id="flow-linked",
        ),
        spacing="4",
        width="100%",
    )


def flow_page() -> rx.Component:
    """The tab's FlowProfileState stream re-reads the profile whenever the account changes."""
    return rx.vstack(
        top_nav(),
        rx.link("← All accounts", href="/accounts", size="2"),
        rx.match(
            S.status,
            ("found", _found()),
            ("missing", rx.callout("Account not found: this login is not one of your accounts.",
                                   color_scheme="amber", icon="circle_alert", id="flow-not-found")),
            rx.text("Loading…", color_scheme="gray"),
        ),
        padding="1.5em",
        spacing="4",
        width="100%",
    )
