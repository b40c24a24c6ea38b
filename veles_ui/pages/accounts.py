"""Every account of the book, a page at a time: sort by any column, filter by login or group."""

from __future__ import annotations

import reflex as rx

from veles_ui.components.freshness import freshness
from veles_ui.components.nav import top_nav
from veles_ui.components.sortable_accounts import sortable_accounts
from veles_ui.components.toxic_flow import label_filter
from veles_ui.state.accounts import AccountsState


def _toolbar() -> rx.Component:
    return rx.hstack(
        rx.input(
            placeholder="Filter by login, name, group, country or server",
            value=AccountsState.query,
            on_change=AccountsState.set_query,
            debounce_timeout=250,
            id="accounts-filter",
            width="18em",
        ),
        rx.cond(
            AccountsState.state_label != "",
            rx.badge(AccountsState.state_label, " only",
                     rx.icon("x", size=12, on_click=AccountsState.clear_state_filter, cursor="pointer",
                             id="accounts-state-clear"),
                     color_scheme="amber", size="2", id="accounts-state-filter"),
        ),
        label_filter(),
        rx.spacer(),
        rx.button(rx.icon("download", size=14), "CSV", variant="soft", on_click=AccountsState.export_csv,
                  id="accounts-csv"),
        freshness(AccountsState.stamp),
        rx.text(AccountsState.range_label, size="2", color_scheme="gray", id="accounts-range"),
        rx.button("Prev", variant="soft", disabled=~AccountsState.has_prev,
                  on_click=AccountsState.prev_page, id="accounts-prev"),
        rx.button("Next", variant="soft", disabled=~AccountsState.has_next,
                  on_click=AccountsState.next_page, id="accounts-next"),
        align="center",
        width="100%",
    )


def accounts_page() -> rx.Component:
    """The tab's AccountsState stream keeps the visible page current at the book's pace."""
    return rx.vstack(
        top_nav(),
        rx.hstack(
            rx.heading("Accounts", size="5"),
            rx.text("money in each account's deposit currency (Currency column)", size="2",
                    color_scheme="gray"),
            align="baseline",
            spacing="3",
        ),
        _toolbar(),
        sortable_accounts(),
        padding="1.5em",
        spacing="4",
        width="100%",
    )
