"""The portal's top bar: where you can go (only what your role may use), the connection, who you
are, the theme and the way out."""

from __future__ import annotations

from typing import cast

import reflex as rx
from reflex.vars import NumberVar

from veles.services.permissions import Permission
from veles_ui.components.connection import connection_status
from veles_ui.state.alert_bell import AlertBellState as Bell
from veles_ui.state.billing_banner import BillingBanner
from veles_ui.state.session import SessionState

# (label, href, element id, permission needed to see the link; None: every signed-in user)
LINKS: tuple[tuple[str, str, str, Permission | None], ...] = (
    ("Overview", "/dashboard", "nav-dashboard", None),
    ("Accounts", "/accounts", "nav-accounts", None),
    ("Exposure", "/exposure", "nav-exposure", None),
    ("Alerts", "/alerts", "nav-alerts", None),
    ("Rules", "/rules", "nav-rules", None),
    ("Stress", "/stress", "nav-stress", Permission.VIEW_RISK),
    ("Reports", "/reports", "nav-reports", Permission.VIEW_RISK),
    ("Connections", "/connections", "nav-connections", Permission.MANAGE_CONNECTIONS),
    ("Calculator", "/calculator", "nav-calculator", Permission.USE_CALCULATOR),
    ("Users", "/users", "nav-users", Permission.MANAGE_USERS),
    ("Plan", "/plan", "nav-plan", Permission.MANAGE_BILLING),
    ("My alerts", "/settings/notifications", "nav-notifications", None),
    ("Admin", "/admin", "nav-admin", Permission.PLATFORM),
)


def _link(label: str, href: str, test_id: str, permission: Permission | None) -> rx.Component:
    link = rx.link(label, href=href, id=test_id, size="2", weight="medium")
    if permission is None:
        return link
    return rx.cond(SessionState.permissions.contains(permission.value), link)


def alert_bell() -> rx.Component:
    """The signed-in user's unread alerts (open alerts raised since they last marked them read),
    a link to the feed, and "mark all read"."""
    return rx.hstack(
        rx.link(
            rx.hstack(
                rx.icon("bell", size=16),
                rx.badge(Bell.unread.to_string(), color_scheme=rx.cond(Bell.unread > 0, "tomato", "gray"),
                         variant="solid", id="unread-count", role="status"),
                spacing="1", align="center",
            ),
            href="/alerts", id="alert-bell", title="Unread alerts",
        ),
        rx.icon_button(rx.icon("check", size=14), size="1", variant="ghost", on_click=Bell.read_all,
                       id="mark-read", title="Mark all alerts read", aria_label="Mark all alerts read"),
        spacing="1", align="center",
    )


def alert_bell_follower(stateful: bool) -> rx.Component | None:
    """An app-wide wrap (on every page) that starts the tab's alert bell follower: mounted when
    someone signs in and again when the signed-in tenant changes (keyed outside the memoized span,
    as `report_notices` explains)."""
    if not stateful:
        return None
    tenant = cast(NumberVar[int], SessionState.tenant_id)
    follower = rx.el.span(hidden=True, on_mount=Bell.follow, id="alert-bell-follower")
    return rx.cond(tenant > 0, rx.fragment(follower, key=tenant.to_string()))


def billing_banner() -> rx.Component:
    """Past due, read-only or suspended: what happened and what to do, with the way to the Plan
    page for those who manage billing."""
    return rx.cond(
        BillingBanner.billing_notice != "",
        rx.callout(
            rx.hstack(
                rx.text(BillingBanner.billing_notice),
                rx.cond(SessionState.permissions.contains(Permission.MANAGE_BILLING.value),
                        rx.link("Open the Plan page", href="/plan", weight="bold", id="billing-banner-plan")),
                spacing="3", align="center", wrap="wrap",
            ),
            color_scheme=rx.cond(BillingBanner.billing_state == "past_due", "amber", "tomato"),
            icon="triangle_alert", role="alert", id="billing-banner", width="100%",
        ),
    )


def top_nav() -> rx.Component:
    """On every signed-in page; fits a 1366 px wide screen on one line; the billing banner under it."""
    return rx.fragment(_bar(), billing_banner())


def _bar() -> rx.Component:
    return rx.hstack(
        rx.heading("Veles", size="5"),
        *(_link(*link) for link in LINKS),
        rx.spacer(),
        alert_bell(),
        connection_status(),
        rx.text(SessionState.email, color_scheme="gray", size="1"),
        rx.color_mode.button(id="theme-toggle", size="1"),
        rx.button("Sign out", variant="soft", size="1", on_click=SessionState.logout, id="sign-out"),
        align="center",
        spacing="3",
        width="100%",
    )
