"""Self-service sign-up: a broker creates its tenant and the tenant's first administrator at once.

Validation happens before anything is written, and every refusal names the form field it is about,
so the sign-up page can show the message next to that field and keep what the user typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import select

from models.db import session_scope
from models.tenancy import Plan, Role, Tenant, User
from veles.services.auth import Identity, hash_password

MIN_PASSWORD = 10
# Deliberately loose: one @, something on each side, a dot in the domain. Delivery proves the rest.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SignupError(ValueError):
    """A sign-up field was refused; `field` is the form field's name, the message is safe to show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class SignupForm:
    """What the sign-up page sends, already stripped of surrounding blanks."""

    broker: str
    email: str
    password: str
    plan: str

    @classmethod
    def from_form(cls, form: dict[str, str]) -> SignupForm:
        """Build from a submitted form; missing fields become empty (and are then refused)."""
        return cls(
            broker=str(form.get("broker", "")).strip(),
            email=str(form.get("email", "")).strip().lower(),
            password=str(form.get("password", "")),
            plan=str(form.get("plan", "")).strip().lower() or Plan.STARTER.value,
        )


def validate(form: SignupForm) -> None:
    """Raise SignupError for the first field that is not acceptable (before touching the database)."""
    if not 2 <= len(form.broker) <= 120:
        raise SignupError("broker", "Broker name must be 2 to 120 characters.")
    if len(form.email) > 254 or not _EMAIL.match(form.email):
        raise SignupError("email", "Enter a valid email address.")
    if len(form.password) < MIN_PASSWORD:
        raise SignupError("password", f"Password must be at least {MIN_PASSWORD} characters.")
    if form.plan not in {plan.value for plan in Plan}:
        raise SignupError("plan", f"Unknown plan {form.plan!r}: choose starter, professional or enterprise.")


def sign_up(database_url: str, form: SignupForm) -> Identity:
    """Create the tenant (active, on the chosen plan) and its tenant_admin; returns who signed up.

    The broker name and the email must both be unused; one transaction, so a refusal writes nothing.
    """
    validate(form)
    with session_scope(database_url) as session:
        if session.exec(select(Tenant).where(Tenant.name == form.broker)).first() is not None:
            raise SignupError("broker", "A broker with this name already has an account.")
        if session.exec(select(User).where(User.email == form.email)).first() is not None:
            raise SignupError("email", "This email is already registered; sign in instead.")
        tenant = Tenant(name=form.broker, plan=Plan(form.plan))
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        user = User(tenant_id=tenant.id, email=form.email, password_hash=hash_password(form.password),
                    role=Role.TENANT_ADMIN)
        session.add(user)
        session.flush()
        assert user.id is not None
        return Identity(user_id=user.id, tenant_id=tenant.id, role=Role.TENANT_ADMIN, email=user.email)
