"""Demo data: one broker and its risk manager, so `veles demo` has someone to sign in as."""

from __future__ import annotations

from sqlmodel import select

from models.db import session_scope, upgrade
from models.tenancy import Plan, Role, Tenant, User
from veles.config import Settings
from veles.services.auth import hash_password

DEMO_TENANT = "Demo Broker"


def seed_demo(settings: Settings) -> int:
    """Create the demo tenant and user if missing (idempotent); returns the tenant id."""
    upgrade(settings.database_url)
    with session_scope(settings.database_url) as session:
        tenant = session.exec(select(Tenant).where(Tenant.name == DEMO_TENANT)).first()
        if tenant is None:
            tenant = Tenant(name=DEMO_TENANT, plan=Plan.PROFESSIONAL)
            session.add(tenant)
            session.flush()
        assert tenant.id is not None
        email = settings.demo_email.lower()
        user = session.exec(select(User).where(User.email == email)).first()
        password = settings.demo_password.get_secret_value()
        if user is None:
            session.add(
                User(
                    tenant_id=tenant.id,
                    email=email,
                    password_hash=hash_password(password),
                    role=Role.RISK_MANAGER,
                )
            )
        return tenant.id

