"""The first platform admin (and any later one) from the command line: `veles admin
create-platform-admin EMAIL`.

Platform admins belong to the platform's own tenant (`Tenant.is_platform`), made here on first use:
not a broker, so no engine runs for it, the admin page does not list it among brokers, and a
platform admin has no broker's book as their own. The password is a random temporary one, printed
once, and temporary: it stops working after TEMPORARY_PASSWORD_HOURS and must be replaced at the
first sign-in (`User.must_change_password`, `User.password_expires_at`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.columns import utcnow
from models.db import session_scope
from models.tenancy import Plan, Role, Tenant, User
from veles.config import Settings
from veles.services.audit import Action, record
from veles.services.auth import hash_password, normalize_email
from veles.services.errors import Conflict
from veles.services.messaging import check_email

PLATFORM_TENANT = "Veles platform"


@dataclass(frozen=True, slots=True)
class PlatformAdmin:
    """A platform admin just made, and the temporary password to give them (shown once)."""

    user_id: int
    tenant_id: int
    email: str
    temporary_password: str


def platform_tenant(session: Session) -> Tenant:
    """The platform's own tenant, made the first time it is needed."""
    tenant = session.exec(select(Tenant).where(col(Tenant.is_platform).is_(True))).first()
    if tenant is None:
        tenant = Tenant(name=PLATFORM_TENANT, plan=Plan.ENTERPRISE, is_platform=True)
        try:
            with session.begin_nested():
                session.add(tenant)
                session.flush()
        except IntegrityError:
            raise Conflict(f"a broker is already called {PLATFORM_TENANT!r}; rename it first") from None
    return tenant


def create_platform_admin(settings: Settings, email: str) -> PlatformAdmin:
    """A new platform admin in the platform tenant with a temporary password; ValueError for an
    address that is not one, Conflict when the address is already registered (in any tenant)."""
    normalized = normalize_email(email)
    if normalized is None:
        raise ValueError("email: control characters are not allowed in an address")
    address = check_email(normalized, "email")
    temporary = secrets.token_urlsafe(12)
    with session_scope(settings.database_url) as session:
        tenant = platform_tenant(session)
        assert tenant.id is not None
        user = User(tenant_id=tenant.id, email=address, role=Role.PLATFORM_ADMIN,
                    password_hash=hash_password(temporary), must_change_password=True,
                    password_expires_at=utcnow() + timedelta(hours=settings.temporary_password_hours))
        try:
            with session.begin_nested():
                session.add(user)
                session.flush()
        except IntegrityError:
            raise Conflict(f"{address} is already registered.") from None
        assert user.id is not None
        record(session, Action.USER_CREATE, tenant_id=tenant.id, actor_user_id=None,
               target=f"user:{user.id}",
               details={"email": address, "role": Role.PLATFORM_ADMIN.value, "by": "veles admin"})
        return PlatformAdmin(user_id=user.id, tenant_id=tenant.id, email=address,
                             temporary_password=temporary)
