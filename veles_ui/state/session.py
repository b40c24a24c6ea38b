"""Who is signed in: a JWT in a cookie, checked on every protected page load."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import reflex as rx
from reflex.event import EventSpec
from reflex.utils.prerequisites import get_and_validate_app
from sqlmodel import Session

from models.db import session_scope, tenant_session
from veles.config import get_settings
from veles.services.auth import AuthError, Identity, authenticate, decode_token, issue_token
from veles.services.errors import Conflict, InvalidInput, NotFound
from veles.services.permissions import Permission, PermissionDenied, allowed, require


def tab_connected(token: str) -> bool:
    """Whether the browser tab that owns `token` still has a live socket.io connection."""
    namespace = get_and_validate_app().app.event_namespace
    return namespace is not None and token in namespace.token_to_sid


# What a UI action may be refused with; each message is safe to show as it is.
USER_ERRORS = (AuthError, PermissionDenied, InvalidInput, NotFound, Conflict)


def row_id(value: str, field: str) -> int:
    """The id a button sent; InvalidInput naming `field` if it is not one (a crafted event)."""
    text = str(value)
    if not text.isdigit():
        raise InvalidInput(field, f"not an id: {text!r}")
    return int(text)


class SessionState(rx.State):
    """The signed-in identity of this browser tab."""

    token: str = rx.Cookie("", name="veles_token", same_site="strict", max_age=12 * 3600)
    email: str = ""
    tenant_id: int = 0
    role: str = ""
    login_error: str = ""

    @rx.var
    def permissions(self) -> list[str]:
        """What the role may do, so pages hide what it may not (handlers still check: `authorize`)."""
        return [p.value for p in Permission if allowed(self.role, p)] if self.role else []

    def authorize(self, permission: Permission) -> Identity:
        """The caller's identity if its role holds `permission`, read from the signed token rather
        than from state the browser could have sent; raises AuthError or PermissionDenied."""
        identity = decode_token(self.token, get_settings().secret_key.get_secret_value())
        require(identity.role, permission)
        return identity

    @contextmanager
    def tenant_db(self, permission: Permission) -> Iterator[tuple[Session, Identity]]:
        """A session confined to the caller's tenant (row-level security on PostgreSQL), once
        `authorize` let the caller through; commits when the block ends without an error."""
        identity = self.authorize(permission)
        with tenant_session(get_settings().database_url, identity.tenant_id) as db:
            yield db, identity

    def sign_in_as(self, identity: Identity) -> EventSpec:
        """Store a fresh token for `identity` in the cookie and open the dashboard."""
        settings = get_settings()
        self.token = issue_token(
            identity, settings.secret_key.get_secret_value(), settings.access_token_minutes
        )
        self.email, self.tenant_id, self.role = identity.email, identity.tenant_id, identity.role.value
        return rx.redirect("/dashboard")

    @rx.event
    def require_login(self) -> EventSpec | None:
        """Page guard: load the identity from the token, or send the user to sign in."""
        settings = get_settings()
        try:
            identity = decode_token(self.token, settings.secret_key.get_secret_value())
        except AuthError:
            self.tenant_id = 0
            return rx.redirect("/login")
        self.email, self.tenant_id, self.role = identity.email, identity.tenant_id, identity.role.value
        return None

    @rx.event
    def login(self, form: dict[str, str]) -> EventSpec | None:
        """Check the credentials; on success store a fresh token and open the dashboard."""
        settings = get_settings()
        try:
            with session_scope(settings.database_url) as db:
                identity = authenticate(db, form.get("email", ""), form.get("password", ""))
        except AuthError as exc:
            self.login_error = str(exc)
            return None
        self.login_error = ""
        return self.sign_in_as(identity)

    @rx.event
    def logout(self) -> EventSpec:
        """Forget the token and return to the sign-in page."""
        self.token, self.email, self.tenant_id, self.role = "", "", 0, ""
        return rx.redirect("/login")
