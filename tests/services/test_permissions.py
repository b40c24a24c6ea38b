"""The role → permission table: each role holds exactly what its job needs."""

from __future__ import annotations

from itertools import pairwise

import pytest

from models.tenancy import Role
from veles.services.permissions import Permission, PermissionDenied, allowed, require


def test_roles_are_nested_from_viewer_to_platform_admin() -> None:
    order = [Role.VIEWER, Role.RISK_MANAGER, Role.TENANT_ADMIN, Role.PLATFORM_ADMIN]
    held = [{p for p in Permission if allowed(r, p)} for r in order]
    assert all(a < b for a, b in pairwise(held))


@pytest.mark.parametrize(
    ("role", "permission", "expected"),
    [
        (Role.VIEWER, Permission.VIEW_RISK, True),
        (Role.VIEWER, Permission.EDIT_RULES, False),
        (Role.VIEWER, Permission.ACK_ALERTS, False),
        (Role.RISK_MANAGER, Permission.ACK_ALERTS, True),
        (Role.RISK_MANAGER, Permission.MANAGE_CONNECTIONS, False),
        (Role.TENANT_ADMIN, Permission.MANAGE_USERS, True),
        (Role.TENANT_ADMIN, Permission.PLATFORM, False),
        (Role.PLATFORM_ADMIN, Permission.PLATFORM, True),
    ],
)
def test_permission_table(role: Role, permission: Permission, expected: bool) -> None:
    assert allowed(role, permission) is expected


def test_unknown_role_holds_nothing_and_require_names_the_action() -> None:
    assert not allowed("intern", Permission.VIEW_RISK)
    with pytest.raises(PermissionDenied, match="may not edit rules"):
        require(Role.VIEWER, Permission.EDIT_RULES)
