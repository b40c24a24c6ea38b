"""Watching a signed-in session from a long-lived connection: the integrations socket
(`veles.api.realtime`) and every portal tab (`veles_ui.state.watch`) wait here for the moment
their session ends, so neither keeps pushing to a user who was deactivated, changed role or
password, signed out, replayed a refresh token, or whose broker was suspended.

`until_ended` returns the reason as soon as it happens: `SessionVersions` (in
`veles.services.sessions`) calls back when a user's version moves, in this process or, pushed
over Redis, in another, and the waiting coroutine re-checks at once. It also re-checks every
RECHECK_S on its own, which bounds the delay if a push was lost (then the check reads the
database) and ends a connection whose access token expires (`expires_at`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

import jwt

from veles.config import Settings
from veles.services.sessions import SessionVersions, session_versions
from veles.services.tokens import AuthError, Identity

log = logging.getLogger(__name__)

RECHECK_S = 2.0  # without a push: the longest an ended session may keep its connection
EXPIRED = "Your session expired: connect again with a new token."


class _Waiters:
    """The coroutines waiting on users of one `SessionVersions`, woken from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_user: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def add(self, user_id: int, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._by_user.setdefault(user_id, set()).add(waiter)

    def discard(self, user_id: int, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            waiting = self._by_user.get(user_id)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._by_user[user_id]

    def wake(self, user_ids: Iterable[int]) -> None:
        with self._lock:
            woken = [w for user in user_ids for w in self._by_user.get(user, ())]
        for loop, event in woken:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)


_registry: dict[int, _Waiters] = {}  # id(SessionVersions) -> its waiters
_registry_lock = threading.Lock()


def _waiters(versions: SessionVersions) -> _Waiters:
    with _registry_lock:
        waiters = _registry.get(id(versions))
        if waiters is None:
            waiters = _registry[id(versions)] = _Waiters()
            versions.add_listener(waiters.wake)
        return waiters


def token_expiry(token: str) -> float:
    """The epoch second a token expires; read without checking the signature, so call it only on a
    token `decode_token` accepted."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return float(claims["exp"])


async def verdict(settings: Settings, identity: Identity, expires_at: float | None = None) -> str | None:
    """Why the session of `identity` is over (token expired, sessions ended, wrong tenant), or None
    while it lasts. From the cache without leaving the loop when it can; else the database, off the
    loop. If neither the cache nor the database can answer, the session is kept for now."""
    if expires_at is not None and time.time() >= expires_at:
        return EXPIRED
    versions = session_versions(settings)
    try:
        if not versions.check_cached(identity):
            await asyncio.to_thread(versions.check, identity)
    except AuthError as exc:
        return str(exc)
    except Exception as exc:  # the database is away: keep the connection, look again soon
        log.warning("session of user %s not checked: %s", identity.user_id, exc)
    return None


async def until_ended(settings: Settings, identity: Identity, expires_at: float | None = None) -> str:
    """Wait until the session of `identity` ends and say why (safe to show the user). Cancel the
    call to stop watching."""
    versions = session_versions(settings)
    waiters = _waiters(versions)
    waiter = (asyncio.get_running_loop(), asyncio.Event())
    waiters.add(identity.user_id, waiter)
    try:
        while True:
            reason = await verdict(settings, identity, expires_at)
            if reason is not None:
                return reason
            timeout = RECHECK_S if expires_at is None else max(0.0, min(RECHECK_S, expires_at - time.time()))
            with suppress(TimeoutError):
                await asyncio.wait_for(waiter[1].wait(), timeout)
            waiter[1].clear()
    finally:
        waiters.discard(identity.user_id, waiter)
