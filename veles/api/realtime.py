"""The socket.io push API for integrations: namespace `/integrations` at path `/api/v1/ws`.

A client connects with its access token (`auth={"token": ...}` or an `Authorization: Bearer`
header); an expired, tampered or foreign token, or a role without `VIEW_RISK`, is refused at
connect. An open connection is watched (`veles.services.session_watch`, as every portal tab is):
once its token expires or the user's sessions are ended (deactivated, role or password changed,
signed out, refresh token replayed, broker suspended), at once (within 2 s without a push), it
gets a `session_ended` event with the reason and is disconnected, and may connect again with a
new token. Each
connection joins its tenant's room, and only that room receives the tenant's events:

- `book`: every book message the tenant's aggregator publishes (a full snapshot or a versioned
  diff, `actors/wire.py`); a client seeing a gap in `version` re-reads `/api/v1/book`.
- `alert`: every alert raised or cleared, as the engine publishes it, in the order of its `seq`
  (the tenant's alert sequence number): the relay holds one that comes early and drops one it
  already sent.
- `alerts_reload`: `{"after_seq": N, "seq": M}`: the alert events numbered N+1 to M were lost on
  the way (the topic is latest-wins): re-read `GET /api/v1/alerts?after_seq=N`; the events after
  M follow in order.
- `alert_state`: an alert acknowledged or resolved through the API, from any web process.
- `report`: a report of the tenant queued, running, ready or failed (`report_id`, `status`,
  `type`, `format`, `requested_by`, `error`), as `veles.services.report_notices` reads it; each
  process reads the database itself (woken by the bus with Redis), so it works without Redis too.

Across processes. With REDIS_URL set the server uses python-socketio's `AsyncRedisManager`, so
an emit to a room from any web process reaches that room's clients on every process (that is how
`alert_state` from one process reaches sockets held by another). The bus relay is different:
every process that holds sockets of a tenant follows that tenant's bus topics itself and emits
to its own sockets only (`ignore_queue`), otherwise each message would arrive once per process.
Without Redis (embedded) the relay follows this process's LiveFeed and pushes `book` with the
version, totals and the stamps (`sent_at`, `published_at`) a client times it by; the engine
publishes alerts on Redis only, so `alert` needs REDIS_URL.
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

from actors.alert_store import current_seq
from actors.wire import alert_topic, book_message_problem, book_topic
from models.db import tenant_session
from veles.api.deps import ApiContext
from veles.bus import Message, RedisBus
from veles.config import redis_name
from veles.services.alert_order import AlertSequencer
from veles.services.auth import AuthError, Identity, decode_token
from veles.services.engine_metrics import count_push
from veles.services.feed_retry import GIVE_UP_S, PUSH_RELAY, REPORT_RELAY, Health, follow
from veles.services.permissions import Permission, allowed
from veles.services.report_notices import ReportFeed
from veles.services.session_watch import token_expiry, until_ended
from veles.services.sessions import check_session
from veles.services.signing_keys import keyring

log = logging.getLogger(__name__)

NAMESPACE = "/integrations"
RELAY_HELD = 1_000  # alerts waiting for this process's sockets, at most
GAP_CHECK_S = 0.5  # how often an idle alert relay looks whether a gap has waited long enough
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
        self._reports = ReportFeed(ctx.settings)
        self._watches: dict[str, asyncio.Task[None]] = {}  # sid: the watch on its session
        self._give_up_s = GIVE_UP_S  # a relay failing this long ends (`feed_retry`)
        self.malformed = 0  # messages on a book topic not relayed as junk (`book_message_problem`)

    def _identity(self, environ: Mapping[str, Any], auth: Any) -> tuple[Identity, float]:
        """Who the token says connects, and when the token expires; refused if it may not."""
        token = _bearer(environ, auth)
        if token is None:
            raise Refused("Not signed in: connect with auth={'token': ...}.")
        try:
            identity = decode_token(token, keyring(self._ctx.settings))
            check_session(self._ctx.settings, identity)  # not a user whose sessions were ended
        except AuthError as exc:
            raise Refused(str(exc)) from None
        if not allowed(identity.role, Permission.VIEW_RISK):
            raise Refused(f"Your role ({identity.role.value}) may not view risk.")
        return identity, token_expiry(token)

    async def on_connect(self, sid: str, environ: Mapping[str, Any], auth: Any = None) -> None:
        """Refuse a bad token; otherwise join the tenant's room and make sure its relay runs."""
        identity, expires = await asyncio.to_thread(self._identity, environ, auth)  # may read the database
        tenant = identity.tenant_id
        await self.save_session(sid, {"tenant_id": tenant, "user_id": identity.user_id})
        await self.enter_room(sid, tenant_room(tenant))
        self._members.setdefault(tenant, set()).add(sid)
        self._watches[sid] = asyncio.create_task(self._watch(sid, identity, expires))
        relay = self._relays.get(tenant)
        if relay is None or relay.done():
            self._relays[tenant] = asyncio.create_task(self._relay_all(tenant))

    async def _watch(self, sid: str, identity: Identity, expires: float) -> None:
        """End the connection when its token expires or its user's sessions are ended."""
        reason = await until_ended(self._ctx.settings, identity, expires)
        if self._watches.pop(sid, None) is not None:
            with suppress(Exception):
                await self.emit("session_ended", {"reason": reason}, to=sid)
            await self.disconnect(sid)

    async def on_disconnect(self, sid: str, reason: str = "") -> None:
        """Stop the tenant's relay when its last socket in this process leaves."""
        watch = self._watches.pop(sid, None)
        if watch is not None and watch is not asyncio.current_task():
            watch.cancel()
        session = await self.get_session(sid)
        tenant = int(session["tenant_id"])
        members = self._members.get(tenant, set())
        members.discard(sid)
        if not members:
            self._members.pop(tenant, None)
            relay = self._relays.pop(tenant, None)
            if relay is not None:
                relay.cancel()

    def socket_count(self) -> int:
        """Sockets connected to this process now, every tenant's (`/metrics`)."""
        return sum(len(members) for members in self._members.values())

    async def aclose(self) -> None:
        """Stop every relay and session watch (server shutdown)."""
        tasks = [*self._relays.values(), *self._watches.values()]
        self._relays.clear()
        self._watches.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _push(self, tenant_id: int, event: str, message: Message) -> None:
        await self.emit(event, message, room=tenant_room(tenant_id), ignore_queue=True)
        count_push("integration")

    async def _relay_all(self, tenant_id: int) -> None:
        """The tenant's book and alerts, and its report notices, until cancelled."""
        await asyncio.gather(self._relay(tenant_id), self._relay_reports(tenant_id))

    async def _relay_reports(self, tenant_id: int) -> None:
        """Each change of the tenant's reports as a `report` event to this process's sockets,
        followed again after a failure (`feed_retry.follow`; sockets stay). After `give_up_s` of
        failures the relay ends, logged and counted; the next socket of the tenant starts it again
        (`on_connect`)."""
        async def once(health: Health) -> None:
            async with self._reports.watch(tenant_id) as notices:
                async for notice in notices:
                    if notice is not None:
                        await self._push(tenant_id, "report", notice.message())
                        health.mark()

        await follow(REPORT_RELAY, f"tenant {tenant_id} report relay", once, give_up_s=self._give_up_s)

    async def _relay(self, tenant_id: int) -> None:
        """Follow the tenant's bus until cancelled, resubscribing after a lost connection
        (`feed_retry.follow`; sockets stay). After `give_up_s` of failures the relay ends, logged
        and counted; the next socket of the tenant starts it again (`on_connect`)."""
        async def once(health: Health) -> None:
            if self._ctx.settings.redis_url:
                await self._relay_redis(tenant_id, self._ctx.settings.redis_url, health)
            else:
                await self._relay_feed(tenant_id, health)
            raise ConnectionError("the relay's feed ended")

        await follow(PUSH_RELAY, f"tenant {tenant_id} push relay", once, give_up_s=self._give_up_s)

    async def _relay_redis(self, tenant_id: int, url: str, health: Health) -> None:
        bus = RedisBus(url, self._ctx.settings.redis_prefix)

        async def forward(topic: str, event: str) -> None:
            async for message in bus.subscribe(topic):
                health.mark()
                if (problem := book_message_problem(message)) is not None:
                    # a stray writer's junk never reaches integration clients (as in the portal)
                    self.malformed += 1
                    log.error("tenant %s book topic: not relayed: %s", tenant_id, problem)
                    continue
                await self._push(tenant_id, event, message)

        try:
            await bus.ping()
        except Exception:
            with suppress(Exception):
                await bus.aclose()
            raise
        health.mark()
        tasks = [asyncio.create_task(forward(book_topic(tenant_id), "book")),
                 asyncio.create_task(self._relay_alerts(tenant_id, bus))]
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

    async def _relay_alerts(self, tenant_id: int, bus: RedisBus) -> None:
        """The tenant's alerts in `seq` order from the moment the relay starts (a socket reads
        `GET /api/v1/alerts` and its `X-Alert-Seq` for what came before); a number still missing
        after its wait is announced as `alerts_reload` and the relay goes on after it."""
        inbox: asyncio.Queue[Message] = asyncio.Queue(RELAY_HELD)

        async def pump() -> None:
            async for message in bus.subscribe(alert_topic(tenant_id)):
                if inbox.full():  # the sockets are behind: the gap this leaves is announced
                    continue
                inbox.put_nowait(message)

        task = asyncio.create_task(pump())
        try:
            await asyncio.sleep(0)  # let the subscription start before the start is read
            sequencer = AlertSequencer(last=await asyncio.to_thread(self._alert_seq, tenant_id))
            while True:
                ready: list[Message] = []
                with suppress(TimeoutError):
                    ready = sequencer.offer(await asyncio.wait_for(inbox.get(), GAP_CHECK_S))
                if task.done():
                    task.result()  # the subscription failed: resubscribe (`_relay`)
                if sequencer.needs_reload():
                    after = sequencer.reload_after()
                    # the lost numbers run up to the oldest held, which is sent next
                    lost_to = (sequencer.oldest_held() or after + 1) - 1
                    await self._push(tenant_id, "alerts_reload", {"after_seq": after, "seq": lost_to})
                    ready.extend(sequencer.resync(lost_to))
                for message in ready:
                    await self._push(tenant_id, "alert", message)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _alert_seq(self, tenant_id: int) -> int:
        """The tenant's last alert number (blocks on the database: run in a thread)."""
        with tenant_session(self._ctx.settings.database_url, tenant_id) as db:
            return current_seq(db, tenant_id)

    async def _relay_feed(self, tenant_id: int, health: Health) -> None:
        async for replica in self._ctx.live_feed().watch(tenant_id):
            health.mark()
            await self._push(tenant_id, "book", {"tenant_id": tenant_id, "version": replica.version,
                                                 "totals": replica.totals, "sent_at": replica.sent_at,
                                                 "published_at": replica.published_at})


def socketio_channel(prefix: str) -> str:
    """The Redis channel python-socketio's manager uses across web processes, in the deployment's
    namespace."""
    return redis_name(prefix, "socketio")


def create_socket_server(ctx: ApiContext) -> tuple[socketio.AsyncServer, Integrations]:
    """The socket.io server for `ctx` (Redis manager when REDIS_URL is set) and its namespace."""
    # the manager's pub/sub channel carries the deployment's prefix like every other (pub/sub
    # ignores the database number: without it two deployments on one Redis would emit to each
    # other's rooms)
    url, prefix = ctx.settings.redis_url, ctx.settings.redis_prefix
    manager = socketio.AsyncRedisManager(url, channel=socketio_channel(prefix)) if url else None
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
