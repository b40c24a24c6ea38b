"""The Reflex app: routes and their guards."""

from __future__ import annotations

import os

import reflex as rx

from veles.api import create_api
from veles.config import get_settings
from veles.services.preflight import enforce
from veles.services.ratelimit import shared_login_limiter
from veles.services.web_sessions import register as register_sessions
from veles_ui.components.freshness import freshness_script
from veles_ui.components.margin_sound import margin_sound_script
from veles_ui.components.nav import alert_bell_follower
from veles_ui.pages.account import account_page
from veles_ui.pages.accounts import accounts_page
from veles_ui.pages.admin import admin_page
from veles_ui.pages.alerts import alerts_page
from veles_ui.pages.calculator import calculator_page
from veles_ui.pages.connections import connections_page
from veles_ui.pages.dashboard import dashboard_page
from veles_ui.pages.exposure import exposure_page
from veles_ui.pages.flow import flow_page
from veles_ui.pages.invite import invite_page
from veles_ui.pages.landing import landing_page
from veles_ui.pages.login import login_page
from veles_ui.pages.notifications import notifications_page
from veles_ui.pages.plan import plan_page
from veles_ui.pages.report_schedules import report_schedules_page
from veles_ui.pages.reports import report_notices, reports_page
from veles_ui.pages.reset import forgot_page, reset_page
from veles_ui.pages.rules import rules_page
from veles_ui.pages.signup import signup_page, verify_email_page
from veles_ui.pages.stress import stress_page
from veles_ui.pages.users import users_page
from veles_ui.state.accounts import AccountDetailState, AccountsState
from veles_ui.state.admin import AdminState
from veles_ui.state.alert_bell import AlertBellState
from veles_ui.state.alerts import AlertsState, RulesState
from veles_ui.state.billing_banner import BillingBanner
from veles_ui.state.connections import ConnectionsState
from veles_ui.state.dashboard import DashboardState
from veles_ui.state.exposure import ExposureState
from veles_ui.state.flow import FlowProfileState
from veles_ui.state.invite import InviteState
from veles_ui.state.notifications import NotificationsState
from veles_ui.state.plan import PlanState
from veles_ui.state.report_schedules import ReportSchedulesState
from veles_ui.state.reports import ReportsState
from veles_ui.state.reset import ForgotState, ResetState
from veles_ui.state.session import SessionState
from veles_ui.state.signup import SignupState, VerifyEmailState
from veles_ui.state.stress import StressState
from veles_ui.state.users import UsersState
from veles_ui.state.watch import SessionWatch

# What every signed-in page runs first on load: refuse a visitor without a session, then watch
# the session so a sign-out or revocation elsewhere ends this tab too; then the billing banner.
SIGNED_IN = (SessionState.require_login, SessionWatch.watch, BillingBanner.check)

app = rx.App(
    # REST API and /metrics in front of Reflex; its sign-in routes count on the portal's limiter
    api_transformer=create_api(limiter=shared_login_limiter(get_settings())),
    # report toasts and the alert bell's follower on every page
    extra_app_wraps={(3, "ReportNotices"): report_notices, (4, "AlertBell"): alert_bell_follower},
    # the age of a live page's figures, ticking in the browser; the dashboard's margin-call sound
    head_components=[freshness_script(), margin_sound_script()],
)


def refuse_unsafe_start() -> None:
    """Run the production start-up checks before the backend serves anything (a plain function
    lifespan task runs to its end before start-up completes, so this deliberately blocks: nothing is
    served yet). A refusal ends the process with exit code 2 and its lines on stderr, rather than
    the server's own "startup failed" code."""
    try:
        enforce(get_settings(), "veles portal")
    except SystemExit as refused:
        os._exit(refused.code if isinstance(refused.code, int) else 2)


app.register_lifespan_task(refuse_unsafe_start)


def _portal_sockets() -> int:
    """Browser tabs connected to this backend's event socket (`/metrics`: veles_web_sessions)."""
    namespace = app.event_namespace
    return len(namespace.sid_to_token) if namespace is not None else 0


register_sessions("portal", _portal_sockets)
app.add_page(login_page, route="/login", title="Sign in · Veles")
app.add_page(forgot_page, route="/forgot", title="Forgot password · Veles", on_load=ForgotState.clear_forgot)
app.add_page(reset_page, route="/reset", title="New password · Veles", on_load=ResetState.open_link)
app.add_page(invite_page, route="/invite", title="Join · Veles", on_load=InviteState.open_invite)
app.add_page(
    dashboard_page,
    route="/dashboard",
    title="Dashboard · Veles",
    on_load=[*SIGNED_IN, DashboardState.stream],
)
app.add_page(
    accounts_page,
    route="/accounts",
    title="Accounts · Veles",
    on_load=[*SIGNED_IN, AccountsState.load_filter, AccountsState.stream],
)
app.add_page(
    account_page,
    route="/accounts/[login]",
    title="Account · Veles",
    on_load=[*SIGNED_IN, AccountDetailState.load,
             AccountDetailState.stream],
)
app.add_page(
    exposure_page,
    route="/exposure",
    title="Exposure · Veles",
    on_load=[*SIGNED_IN, ExposureState.load, ExposureState.stream],
)
app.add_page(
    flow_page,
    route="/flow/[login]",
    title="Trader profile · Veles",
    on_load=[*SIGNED_IN, FlowProfileState.load, FlowProfileState.stream],
)
app.add_page(landing_page, route="/", title="Veles · real-time risk for MT5 brokers")
app.add_page(signup_page, route="/signup", title="Sign up · Veles", on_load=SignupState.choose_plan_from_url)
app.add_page(verify_email_page, route="/verify-email", title="Confirm your e-mail · Veles",
             on_load=VerifyEmailState.confirm)
app.add_page(
    alerts_page,
    route="/alerts",
    title="Alerts · Veles",
    on_load=[*SIGNED_IN, AlertsState.load, AlertsState.stream],
)
app.add_page(rules_page, route="/rules", title="Alert rules · Veles",
             on_load=[*SIGNED_IN, RulesState.load])
app.add_page(connections_page, route="/connections", title="Connections · Veles",
             on_load=[*SIGNED_IN, ConnectionsState.load])
app.add_page(admin_page, route="/admin", title="Platform admin · Veles",
             on_load=[*SIGNED_IN, AdminState.load])
app.add_page(users_page, route="/users", title="Users · Veles",
             on_load=[*SIGNED_IN, UsersState.load])
app.add_page(plan_page, route="/plan", title="Plan · Veles",
             on_load=[*SIGNED_IN, PlanState.load])
app.add_page(reports_page, route="/reports", title="Reports · Veles",
             on_load=[*SIGNED_IN, ReportsState.load])
app.add_page(report_schedules_page, route="/reports/schedules", title="Report schedules · Veles",
             on_load=[*SIGNED_IN, ReportSchedulesState.load])
app.add_page(stress_page, route="/stress", title="Stress test · Veles",
             on_load=[*SIGNED_IN, StressState.load,
                      StressState.compute_var])
app.add_page(calculator_page, route="/calculator", title="What-if calculator · Veles",
             on_load=list(SIGNED_IN))
app.add_page(notifications_page, route="/settings/notifications", title="Notification settings · Veles",
             on_load=[*SIGNED_IN, NotificationsState.load,
                      AlertBellState.refresh])
