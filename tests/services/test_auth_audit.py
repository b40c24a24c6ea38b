"""`audit.record`, the one writer of the audit log: what a row holds, and that a tenant-confined
session can only write its own tenant's rows (row-level security on PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import ProgrammingError
from sqlmodel import select

from models.audit import AuditLog
from models.db import session_scope, tenant_session
from tests.auth_support import auth_db, make_user
from veles.services.audit import Action, record

__all__ = ["auth_db"]


def test_a_row_holds_who_what_on_what_and_from_where(auth_db: str) -> None:
    actor = make_user(auth_db)
    with tenant_session(auth_db, actor.tenant_id) as session:
        record(session, Action.USER_ROLE, tenant_id=actor.tenant_id, actor_user_id=actor.user_id,
               target="user:42", details={"from": "viewer", "to": "risk_manager"}, ip="2001:db8::7")
    with session_scope(auth_db) as session:
        row = session.exec(select(AuditLog).where(AuditLog.actor_user_id == actor.user_id)).one()
        stored = (row.tenant_id, row.action, row.target, row.details, row.ip)
    assert stored == (actor.tenant_id, "user.role_change", "user:42",
                      {"from": "viewer", "to": "risk_manager"}, "2001:db8::7")


def test_a_tenant_session_cannot_write_another_tenants_row(auth_db: str) -> None:
    mine, theirs = make_user(auth_db), make_user(auth_db)
    with tenant_session(auth_db, mine.tenant_id) as session:
        record(session, "connection.delete", tenant_id=theirs.tenant_id, actor_user_id=mine.user_id)
        with pytest.raises(ProgrammingError, match="row-level security"):
            session.flush()
        session.rollback()


@pytest.mark.parametrize(("action", "target", "field"), [("", None, "action"), ("x" * 65, None, "action"),
                                                          ("user.create", "t" * 256, "target")])
def test_bad_arguments_name_the_field(auth_db: str, action: str, target: str | None, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"), session_scope(auth_db) as session:
        record(session, action, tenant_id=None, target=target)
