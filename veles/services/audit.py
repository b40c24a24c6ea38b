"""The audit log writer: every security-relevant action goes through `record`.

One function so every writer fills the same fields the same way: sign-in, lockout, token reuse and
logout here; user and role changes in `veles.services.users`; connections, rules, billing and
platform actions by their own services. The row is added to the caller's session, so it commits
or rolls back with the change it describes. Never put secrets (passwords, tokens, codes,
credentials) in `details`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from models.audit import AuditLog

ACTION_MAX, TARGET_MAX = 64, 255


class Action(StrEnum):
    """The actions identity and access record; other services may pass their own dotted verbs."""

    SIGN_IN = "auth.sign_in"
    SIGN_IN_FAILED = "auth.sign_in_failed"
    LOCKOUT = "auth.lockout"
    CODE_SENT = "auth.code_sent"
    CODE_FAILED = "auth.code_failed"
    CODE_NOT_SENT = "auth.code_not_sent"
    REFRESH_REUSE = "auth.refresh_reuse"
    LOGOUT = "auth.logout"
    USER_CREATE = "user.create"
    USER_ROLE = "user.role_change"
    USER_DEACTIVATE = "user.deactivate"
    PASSWORD_CHANGE = "user.password_change"  # noqa: S105 (an action name, not a password)
    PHONE_CHANGE = "user.phone_change"


def record(
    session: Session,
    action: str,
    *,
    tenant_id: int | None,
    actor_user_id: int | None = None,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
    ip: str | None = None,
) -> AuditLog:
    """Add one audit row to `session` (committed with the caller's transaction).

    `tenant_id` None marks a platform event, which a tenant's own audit view cannot see.
    A tenant-confined session can only write rows of its own tenant (row-level security).
    """
    if not action or len(action) > ACTION_MAX:
        raise ValueError(f"action: 1 to {ACTION_MAX} characters, got {action!r}")
    if target is not None and len(target) > TARGET_MAX:
        raise ValueError(f"target: at most {TARGET_MAX} characters")
    entry = AuditLog(tenant_id=tenant_id, actor_user_id=actor_user_id, action=str(action), target=target,
                     details=dict(details or {}), ip=ip)
    session.add(entry)
    return entry
