"""Demo data: one broker and its risk manager, so `veles demo` has someone to sign in as."""

from __future__ import annotations

import os
from pathlib import Path

from sqlmodel import select

from models.columns import utcnow
from models.db import session_scope, upgrade
from models.tenancy import Plan, Role, Tenant, User
from veles.config import DATA_DIR, Settings
from veles.services.auth import hash_password
from veles.services.credentials import generate_key

DEMO_TENANT = "Demo Broker"
DEMO_CREDENTIALS_KEY = DATA_DIR / "credentials.key"


def development_credentials_key(path: Path = DEMO_CREDENTIALS_KEY) -> str:
    """The demo's own CREDENTIALS_KEYS key, made once and kept (owner-only, mode 0600) beside the
    demo database, so "Add connection" works in the demo and its stored MT5 passwords still open
    after a restart. Production sets CREDENTIALS_KEYS and refuses to start without it."""
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    # Created with 0600 from the start (no window in which another user could read it).
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)  # an existing empty file may have had wider permissions
    return key


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
                    email_verified_at=utcnow(),  # seeded, not signed up: no confirmation link
                )
            )
        return tenant.id

