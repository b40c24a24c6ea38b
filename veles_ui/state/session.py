"""Who is signed in: the access token in a cookie (and the tab's state), checked on every protected
page load and every event. Signing in goes through `veles.services.auth.sign_in` (throttle, audit,
and the SMS code step for users who have one) behind the same rate limit as the API's
`/auth/token` (`veles.services.ratelimit.check_attempts`, the same counters), off the event loop.
The refresh token is never kept in the tab's state (which lives in Redis) nor in a cookie scripts
can read: the sign-in hands it to `veles.api.portal_session`, which spends it and keeps its
successor in an HttpOnly cookie; an expired or ended access token is renewed through that route
by the page's script."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import reflex as rx
from reflex.event import EventSpec
from reflex.utils.prerequisites import get_and_validate_app
from sqlmodel import Session

from models.db import session_scope, tenant_session
from veles.billing.readonly import refuse_change
from veles.config import Settings, get_settings
from veles.services.auth import (
    AuthError,
    Challenge,
    Identity,
    PasswordChangeRequired,
    Tokens,
    decode_token,
    sign_in,
    verify_code,
)
from veles.services.errors import Conflict, InvalidInput, NotFound
from veles.services.permissions import Permission, PermissionDenied, allowed, require
from veles.services.ratelimit import (
    LimiterUnavailable,
    Network,
    TooManyAttempts,
    check_attempts,
    client_address,
    parse_trusted_proxies,
    shared_login_limiter,
)
from veles.services.sessions import check_session, session_versions
from veles.services.signing_keys import keyring

_PORTAL = "/api/v1/auth/portal"  # veles.api.portal_session.PATH (the UI does not import the API)
_RENEWED_AT = "veles_renewed_at"  # sessionStorage: when this tab last tried a renewal
# Renew the access token from the HttpOnly refresh cookie and load the page again with it; sign in
# if there is no live sign-in, or if a renewal in the last 15 s did not hold (never a reload loop).
RENEW_SCRIPT = f"""(() => {{
  const last = Number(sessionStorage.getItem('{_RENEWED_AT}') || 0);
  if (Date.now() - last < 15000) {{ window.location.assign('/login'); return; }}
  sessionStorage.setItem('{_RENEWED_AT}', String(Date.now()));
  fetch('{_PORTAL}/refresh', {{method: 'POST', credentials: 'same-origin'}})
    .then(r => r.ok ? window.location.reload() : window.location.assign('/login'),
          () => window.location.assign('/login'));
}})()"""
LOGOUT_SCRIPT = f"""fetch('{_PORTAL}/logout', {{method: 'POST', credentials: 'same-origin'}})
  .finally(() => window.location.assign('/login'))"""


def handover_script(refresh_token: str) -> str:
    """The page's hand-over of a new sign-in's refresh token to the HttpOnly cookie; resolves to
    whether the server kept it."""
    body = json.dumps({"refresh_token": refresh_token})
    return (f"(sessionStorage.removeItem('{_RENEWED_AT}'), fetch('{_PORTAL}/session', "
            "{method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'}, "
            f"body: {json.dumps(body)}}}).then(r => r.ok, () => false))")


def tab_connected(token: str) -> bool:
    """Whether the browser tab that owns `token` still has a live socket.io connection."""
    namespace = get_and_validate_app().app.event_namespace
    # The token manager's own dict (the records of this worker's sockets and of others' it has
    # seen), not `namespace.token_to_sid`: that property copies every token into a new mapping on
    # each call, and every live page's stream asks on each book update, so with N tabs open the
    # copies cost N x N a second (the portal's loop at 100 dashboards spent 4% of its time there).
    return namespace is not None and token in namespace._token_manager.token_to_socket


T = TypeVar("T")


async def signed_in(token: str) -> Identity:
    """The identity of `token` if its session holds; AuthError otherwise. From the session-version
    cache without leaving the loop when it can; else the database, in a thread."""
    settings = get_settings()
    identity = decode_token(token, keyring(settings))
    versions = session_versions(settings)
    if not versions.check_cached(identity):
        await asyncio.to_thread(versions.check, identity)
    return identity


async def authorized(token: str, permission: Permission) -> Identity:
    """`signed_in`, and the role holds `permission` (PermissionDenied otherwise)."""
    identity = await signed_in(token)
    require(identity.role, permission)
    return identity


@functools.lru_cache(maxsize=4)
def _trusted_proxies(text: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES parsed once per value (the settings are read for every event)."""
    return parse_trusted_proxies(text)


def in_tenant(identity: Identity, work: Callable[[Session, Identity], T]) -> T:
    """`work(db, identity)` in a session confined to the identity's tenant, committed when it
    returns. Blocking (the database): run it in a thread (`SessionState.in_tenant`)."""
    with tenant_session(get_settings().database_url, identity.tenant_id) as db:
        return work(db, identity)


def _limited_sign_in(settings: Settings, email: str, password: str, ip: str | None,
                     new_password: str | None) -> Tokens | Challenge:
    """The API's sign-in door, for the portal: the same rate limit (counters), then `sign_in`.
    Blocking (Redis, database, Argon2): run it in a thread."""
    check_attempts(shared_login_limiter(settings), ip, email.strip().lower() or None)
    with session_scope(settings.database_url) as db:
        return sign_in(db, settings, email, password, ip=ip, new_password=new_password)


def _limited_verify(settings: Settings, challenge: str, code: str, ip: str | None) -> Tokens:
    """The API's code-check door, for the portal: the per-IP rate limit, then `verify_code`."""
    check_attempts(shared_login_limiter(settings), ip, None)
    with session_scope(settings.database_url) as db:
        return verify_code(db, settings, challenge, code, ip=ip)


def sign_in_refusal(exc: Exception) -> str:
    """The message a refused sign-in shows (each names the wait when there is one)."""
    if isinstance(exc, LimiterUnavailable):
        return exc.user_message
    if isinstance(exc, InvalidInput):
        return exc.reason
    return str(exc)


SIGN_IN_ERRORS = (AuthError, TooManyAttempts, LimiterUnavailable, InvalidInput)

# What a UI action may be refused with; each message is safe to show as it is.
USER_ERRORS = (AuthError, PermissionDenied, InvalidInput, NotFound, Conflict)


def fields(form: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """Only the named inputs of a submitted form: Reflex also sends each input under its element
    id, which the services' strict forms would refuse as unknown fields."""
    return {name: form[name] for name in names if name in form}


def row_id(value: str, field: str) -> int:
    """The id a button sent; InvalidInput naming `field` if it is not one (a crafted event)."""
    text = str(value)
    if not text.isdigit():
        raise InvalidInput(field, f"not an id: {text!r}")
    return int(text)


class SessionState(rx.State):
    """The signed-in identity of this browser tab."""

    # The access token only: the refresh token is in an HttpOnly cookie, see above. The cookie
    # goes when the token expires (ACCESS_TOKEN_MINUTES), so no dead bearer token stays in the
    # browser; the page guard then renews from the refresh cookie, as for an expired one.
    token: str = rx.Cookie("", name="veles_token", same_site="strict",
                           max_age=get_settings().access_token_minutes * 60,
                           secure=(get_settings().public_url or "").startswith("https://"))
    email: str = ""
    tenant_id: int = 0
    role: str = ""
    login_error: str = ""
    # Set while the SMS code step of a sign-in is pending: what `verify_code` needs, and a hint.
    challenge: str = ""
    phone_hint: str = ""
    # Set when the password typed was a temporary one: the form then asks for a new password too.
    password_change: bool = False

    @rx.var
    def permissions(self) -> list[str]:
        """What the role may do, so pages hide what it may not (handlers still check: `authorize`)."""
        return [p.value for p in Permission if allowed(self.role, p)] if self.role else []

    async def authorized(self, permission: Permission) -> Identity:
        """The caller's identity if its role holds `permission`, read from the signed token rather
        than from state the browser could have sent; raises AuthError or PermissionDenied. The
        session check reads the database only when this process's cache holds nothing for the
        user, and then in a thread."""
        return await authorized(self.token, permission)

    async def changing(self, permission: Permission) -> Identity:
        """`authorized` for an action that changes something: also refused (BillingReadOnly, with
        the API's own sentence) while billing holds the tenant read-only, as the API refuses every
        change then (`veles.billing.readonly`). The check reads the database in a thread."""
        identity = await self.authorized(permission)
        await asyncio.to_thread(refuse_change, get_settings(), identity.tenant_id)
        return identity

    def authorize(self, permission: Permission) -> Identity:
        """`authorized`, blocking (the session check may read the database): only for code already
        off the loop."""
        settings = get_settings()
        identity = check_session(settings, decode_token(self.token, keyring(settings)))
        require(identity.role, permission)
        return identity

    @contextmanager
    def tenant_db(self, permission: Permission) -> Iterator[tuple[Session, Identity]]:
        """`in_tenant` as a block, blocking: only for code already off the loop."""
        identity = self.authorize(permission)
        with tenant_session(get_settings().database_url, identity.tenant_id) as db:
            yield db, identity

    async def in_tenant(self, permission: Permission, work: Callable[[Session, Identity], T],
                        change: bool = False) -> T:
        """`work(db, identity)` in a thread, once `authorized` let the caller through, with a
        session confined to the caller's tenant (row-level security on PostgreSQL) that commits
        when `work` returns. Every portal action that reads or writes the database goes through
        here (or another thread): a handler runs on the one event loop of the process, and while
        it waits on the database every live page of every tab of the process stands still. A
        `change` is refused while billing holds the tenant read-only (`changing`)."""
        identity = await (self.changing(permission) if change else self.authorized(permission))
        return await asyncio.to_thread(in_tenant, identity, work)

    def _client_ip(self) -> str | None:
        """The client's IP for limits and the audit log, taken as the API takes it
        (`veles.services.ratelimit.client_address`): the socket's TCP peer, or, when that peer is
        in TRUSTED_PROXIES, what the proxies' X-Forwarded-For says. Behind a proxy the peer alone
        is the proxy, so every sign-in would share one IP's limit and throttle."""
        peer = getattr(self.router.session, "client_ip", None)  # Reflex's: the TCP peer (no proxy hops set)
        if not peer:
            return None
        forwarded = self.router.headers.raw_headers.get("x-forwarded-for")
        return client_address(peer, forwarded, _trusted_proxies(get_settings().trusted_proxies))

    def _keep(self, tokens: Tokens) -> EventSpec:
        """Keep the access token; returns the hand-over of the refresh token to its HttpOnly cookie
        (then the dashboard opens: `entered`)."""
        identity = tokens.identity
        self.token = tokens.access_token
        self.email, self.tenant_id, self.role = identity.email, identity.tenant_id, identity.role.value
        self.challenge = self.phone_hint = self.login_error = ""
        return rx.call_script(handover_script(tokens.refresh_token), callback=SessionState.entered)

    @rx.event
    def entered(self, kept: bool) -> EventSpec:
        """The hand-over's answer: open the dashboard (a sign-in whose refresh token could not be
        kept still works until its access token expires, then asks to sign in again)."""
        return rx.redirect("/dashboard")

    async def sign_in_with(self, email: str, password: str, new_password: str | None = None
                           ) -> EventSpec | None:
        """Check the credentials (rate limit first); open the dashboard, ask for the SMS code if the
        user has one, or for a new password if this one was temporary."""
        try:
            result = await asyncio.to_thread(_limited_sign_in, get_settings(), email, password,
                                             self._client_ip(), new_password)
        except PasswordChangeRequired as exc:
            self.password_change, self.login_error = True, str(exc)
            return None
        except SIGN_IN_ERRORS as exc:  # rate limit or throttle (with the wait), an SMS that did not go out
            self.login_error = sign_in_refusal(exc)
            return None
        self.password_change = False
        if isinstance(result, Challenge):
            self.challenge, self.phone_hint, self.login_error = result.challenge, result.phone_hint, ""
            return None
        return self._keep(result)

    @rx.event
    async def require_login(self) -> EventSpec | None:
        """Page guard: load the identity from the token; renew an absent, expired or ended one from
        the HttpOnly refresh cookie (the page's script, `RENEW_SCRIPT`), or send a token that is not
        ours (forged, tampered) straight to sign in. Every page load runs it: the session check
        leaves the loop when it must read the database (`authorized`)."""
        try:
            identity = await signed_in(self.token)
        except AuthError:  # absent, expired, forged, or the user's sessions were ended
            self.tenant_id = 0
            return rx.call_script(RENEW_SCRIPT) if self._renewable() else rx.redirect("/login")
        self.email, self.tenant_id, self.role = identity.email, identity.tenant_id, identity.role.value
        return None

    def _renewable(self) -> bool:
        """Whether a refresh may help: no token, or one of ours that expired or whose sessions were
        ended (a renewal brings the current role); not a token that fails its signature."""
        if not self.token:
            return True
        try:
            decode_token(self.token, keyring(get_settings()))
        except AuthError as exc:
            return "expired" in str(exc)
        return True

    @rx.event
    async def login(self, form: dict[str, str]) -> EventSpec | None:
        """The sign-in form (with a new password when the last attempt said the password was temporary)."""
        new_password = form.get("new_password") if self.password_change else None
        return await self.sign_in_with(str(form.get("email", "")), str(form.get("password", "")),
                                       None if new_password is None else str(new_password))

    @rx.event
    async def verify(self, form: dict[str, str]) -> EventSpec | None:
        """The SMS code step: finish the sign-in, or say why not (a wrong code counts toward the throttle)."""
        try:
            tokens = await asyncio.to_thread(_limited_verify, get_settings(), self.challenge,
                                             str(form.get("code", "")).strip(), self._client_ip())
        except SIGN_IN_ERRORS as exc:
            self.login_error = sign_in_refusal(exc)
            return None
        return self._keep(tokens)

    @rx.event
    def restart_login(self) -> None:
        """Back from the code step to email and password."""
        self.challenge = self.phone_hint = self.login_error = ""
        self.password_change = False

    @rx.event
    def logout(self) -> EventSpec:
        """Forget the token here; the page's script ends the sign-in on the server (its refresh
        tokens stop, and the user's access tokens at once), clears the cookies and signs in anew."""
        self.token = self.email = self.role = ""
        self.tenant_id = 0
        return rx.call_script(LOGOUT_SCRIPT)
