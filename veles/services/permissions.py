"""Who may do what: one table from role to permissions, checked by every API route and UI action.

A permission names an action on a kind of thing, not a page, so the REST API, the socket.io
namespace and the Reflex event handlers all ask the same question (`allowed`) and cannot drift.
Tenant isolation is separate: a permission never lets a user see another tenant's rows
(row-level security and the tenant in the token see to that); only `PLATFORM` permissions reach
across tenants, and only platform admins hold them.
"""

from __future__ import annotations

from enum import StrEnum

from models.tenancy import Role


class Permission(StrEnum):
    """One action a user may be allowed to take."""

    VIEW_RISK = "view_risk"  # book, accounts, account detail, history, alerts feed
    USE_CALCULATOR = "use_calculator"  # the what-if calculator
    ACK_ALERTS = "ack_alerts"  # acknowledge and resolve alerts
    EDIT_RULES = "edit_rules"  # alert rules
    REQUEST_REPORTS = "request_reports"  # queue reports (downloading them needs only VIEW_RISK)
    MANAGE_CONNECTIONS = "manage_connections"  # add, test, remove MT5 connections
    MANAGE_USERS = "manage_users"  # invite users, change roles
    MANAGE_BILLING = "manage_billing"  # plan and subscription
    VIEW_AUDIT = "view_audit"  # the tenant's own audit log
    PLATFORM = "platform"  # admin pages: every tenant, suspend/resume, engine health


_VIEWER = frozenset({Permission.VIEW_RISK, Permission.USE_CALCULATOR})
_RISK_MANAGER = _VIEWER | {Permission.ACK_ALERTS, Permission.EDIT_RULES, Permission.REQUEST_REPORTS}
_TENANT_ADMIN = _RISK_MANAGER | {
    Permission.MANAGE_CONNECTIONS,
    Permission.MANAGE_USERS,
    Permission.MANAGE_BILLING,
    Permission.VIEW_AUDIT,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.RISK_MANAGER: frozenset(_RISK_MANAGER),
    Role.TENANT_ADMIN: frozenset(_TENANT_ADMIN),
    Role.PLATFORM_ADMIN: frozenset(Permission),
}


class PermissionDenied(Exception):
    """The signed-in user's role does not allow the action; the message is safe to show."""


def allowed(role: Role | str, permission: Permission) -> bool:
    """Whether `role` holds `permission`; an unknown role holds nothing."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def require(role: Role | str, permission: Permission) -> None:
    """Raise `PermissionDenied` unless `role` holds `permission`."""
    if not allowed(role, permission):
        raise PermissionDenied(f"Your role ({role}) may not {permission.value.replace('_', ' ')}.")
