"""The socket.io push API for integrations: namespace `/integrations` at path `/api/v1/ws`.

A client connects with its access token (`auth={"token": ...}` or an `Authorization: Bearer`
header); an expired, tampered or foreign token, or a role without `VIEW_RISK`, is refused at
connect. Each connection joins its tenant's room, and only that room receives the tenant's events:

- `book`: every book message the tenant's aggregator publishes (a full snapshot or a versioned
  diff, `actors/wire.py`); a client seeing a gap in `version` re-reads `/api/v1/book`.
- `alert`: every alert raised or cleared, as the engine publishes it.
- `alert_state`: an alert acknowledged or resolved through the API, from any web process.

Across processes. With REDIS_URL set the server uses python-socketio's `AsyncRedisManager`, so
an emit to a room from any web process reaches that room's clients on every process (that is how
`alert_state` from one process reaches sockets held by another). The bus relay is different:
every process that holds sockets of a tenant follows that tenant's bus topics itself and emits
to its own sockets only (`ignore_queue`), otherwise each message would arrive once per process.
Without Redis (embedded) the relay follows this process's LiveFeed and pushes `book` with the
version and totals; the engine publishes alerts on Redis only, so `alert` needs REDIS_URL.
Bus subscribers are latest-wins: a client that must see every alert reads `/api/v1/alerts`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

import socketio
from fastapi import FastAPI
from socketio.exceptions import ConnectionRefusedError as Refused

from actors.wire import alert_topic, book_topic
from veles.api.deps import ApiContext
from veles.bus import Message, RedisBus
from veles.services.auth import AuthError, Identity, decode_token
from veles.services.permissions import Permission, allowed

log = logging.getLogger(__name__)

NAMESPACE = "/integrations"
SOCKETIO_PATH = "/api/v1/ws"


def tenant_room(tenant_id: int) -> str:
    """The room every socket of one tenant joins."""
    return f"tenant:{tenant_id}"


def _bearer(environ: Mapping[str, Any], auth: Any) -> str | None:
    if isinstance(auth, Mapping) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    scheme, _, token = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Integrations(socketio.AsyncNamespace):
    """Authenticates sockets, keeps them in their tenant's room, and relays the tenant's bus."""

    def __init__(self, ctx: ApiContext) -> None:
        super().__init__(NAMESPACE)
        self._ctx = ctx
        self._members: dict[int, set[str]] = {}
        self._relays: dict[int, asyncio.Task[None]] = {}

    def _identity(self, environ: Mapping[str, Any], auth: Any) -> Identity:
        token = _bearer(environ, auth)
        if token is None:
            raise Refused("Not signed in: connect with auth={'token': ...}.")
        try:
            identity = decode_token(token, self._ctx.settings.secret_key.get_secret_value())
        except AuthError as exc:
            raise Refused(str(exc)) from None
        if not allowed(identity.role, Permission.VIEW_RISK):
            raise Refused(f"Your role ({identity.role.value}) may not view risk.")
        return identity

    async def on_connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        """Refuse a bad token; otherwise join the tenant's room and make sure its relay runs."""
        identity = self._identity(environ, auth)
        tenant = identity.tenant_id
        await self.save_session(sid, {"tenant_id": tenant, "user_id": identity.user_id})
        await self.enter_room(sid, tenant_room(tenant))
        self._members.setdefault(tenant, set()).add(sid)
        relay = self._relays.get(tenant)
        if relay is None or relay.done():
            self._relays[tenant] = asyncio.create_task(self._relay(tenant))

    async def on_disconnect(self, sid: str, reason: str = "") -> None:
        """Stop the tenant's relay when its last socket in this process leaves."""
        session = await self.get_session(sid)
        tenant = int(session["tenant_id"])
        members = self._members.get(tenant, set())
        members.discard(sid)
        if not members:
            self._members.pop(tenant, None)
            relay = self._relays.pop(tenant, None)
            if relay is not None:
                relay.cancel()

    async def aclose(self) -> None:
        """Stop every relay (server shutdown)."""
        relays = list(self._relays.values())
        self._relays.clear()
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _push(self, tenant_id: int, event: str, message: Message) -> None:
        await self.emit(event, message, room=tenant_room(tenant_id), ignore_queue=True)

    async def _relay(self, tenant_id: int) -> None:
        """Follow the tenant's bus until cancelled, resubscribing after a lost connection."""
        while True:
            try:
                if self._ctx.settings.redis_url:
                    await self._relay_redis(tenant_id, self._ctx.settings.redis_url)
                else:
                    await self._relay_feed(tenant_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or Ray gone: keep trying, sockets stay
                log.warning("tenant %s push relay: %s; resubscribing", tenant_id, exc)
                await asyncio.sleep(1.0)

    async def _relay_redis(self, tenant_id: int, url: str) -> None:
        bus = RedisBus(url)

        async def forward(topic: str, event: str) -> None:
            async for message in bus.subscribe(topic):
                await self._push(tenant_id, event, message)

        tasks = [asyncio.create_task(forward(book_topic(tenant_id), "book")),
                 asyncio.create_task(forward(alert_topic(tenant_id), "alert"))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with suppress(Exception):
                await bus.aclose()

    async def _relay_feed(self, tenant_id: int) -> None:
        async for replica in self._ctx.live_feed().watch(tenant_id):
            await self._push(tenant_id, "book", {"tenant_id": tenant_id, "version": replica.version,
                                                 "totals": replica.totals})


def create_socket_server(ctx: ApiContext) -> tuple[socketio.AsyncServer, Integrations]:
    """The socket.io server for `ctx` (Redis manager when REDIS_URL is set) and its namespace."""
    manager = socketio.AsyncRedisManager(ctx.settings.redis_url) if ctx.settings.redis_url else None
    server = socketio.AsyncServer(async_mode="asgi", client_manager=manager, cors_allowed_origins=[])
    namespace = Integrations(ctx)
    server.register_namespace(namespace)
    return server, namespace


async def announce_alert_state(
    server: socketio.AsyncServer, tenant_id: int, alert: Mapping[str, Any]
) -> None:
    """Tell the tenant's sockets on every process that an alert was acknowledged or resolved."""
    await server.emit("alert_state", dict(alert), room=tenant_room(tenant_id), namespace=NAMESPACE)


def mount_socketio(app: FastAPI) -> None:
    """Serve the push API from `app` at SOCKETIO_PATH; the server is kept on `app.state.sio`
    so routes can announce changes (`announce_alert_state`)."""
    server, namespace = create_socket_server(app.state.context)
    app.state.sio, app.state.sio_namespace = server, namespace
    app.mount(SOCKETIO_PATH, socketio.ASGIApp(server, socketio_path=SOCKETIO_PATH.strip("/")))
