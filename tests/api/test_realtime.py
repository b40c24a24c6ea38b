"""The socket.io push API against two real uvicorn processes sharing the test Redis: JWT checked
at connect, each tenant's sockets get only that tenant's book diffs and alerts, and an alert
acknowledged through one process reaches sockets held by the other (AsyncRedisManager)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import socketio
from sqlmodel import select

from actors.wire import alert_topic, book_message, book_message_problem, book_topic
from models.alerts import Alert, Severity
from models.db import session_scope
from models.tenancy import Role
from veles.api.realtime import NAMESPACE, SOCKETIO_PATH
from veles.bus import RedisBus
from veles.risk.book import BookFigures

from .conftest import World
from .servers import api_server, environment_of, free_port

WAIT = 30.0  # generous bound on waiting for a push; the test asserts what arrives, not how fast


@pytest.fixture(scope="module")
def servers(
    world: World, tmp_path_factory: pytest.TempPathFactory, redis_url_module: str
) -> Iterator[list[str]]:
    """Two API processes on the world's database and Redis."""
    logs = Path(tmp_path_factory.mktemp("realtime"))
    env = environment_of(world.settings)
    first = free_port()
    with (
        api_server(env, logs / "one.log", first) as one,
        api_server(env, logs / "two.log", free_port({first})) as two,
    ):
        yield [one, two]


class Listener:
    """A socket.io client that records every event it receives."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.first: dict[str, float] = {}  # event name -> when it first arrived (monotonic)
        self.gone = asyncio.Event()  # set when the server ends the connection
        self.client.on("*", self._record, namespace=NAMESPACE)
        self.client.on("disconnect", self._gone, namespace=NAMESPACE)

    async def _gone(self, *_reason: Any) -> None:
        self.gone.set()

    async def _record(self, event: str, data: Any) -> None:
        self.first.setdefault(event, time.monotonic())
        self.events.append((event, data))

    async def connect(self, url: str, token: str | None) -> None:
        await self.client.connect(
            url,
            socketio_path=SOCKETIO_PATH,
            namespaces=[NAMESPACE],
            auth=None if token is None else {"token": token},
            transports=["websocket"],
            wait_timeout=15,  # python-socketio waits 1 s for the namespace by default: too short under load
        )

    async def until(self, event: str, predicate: Any, publish: Any = None) -> Any:
        """Wait for a matching event, calling `publish` again now and then (a relay subscribes to
        the bus a moment after the socket connects, and pub/sub keeps nothing for late joiners)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for name, data in self.events:
                if name == event and predicate(data):
                    return data
            if publish is not None:
                await publish()
            await asyncio.sleep(0.3)
        raise AssertionError(f"no {event} matching the predicate; got {self.events}")


@pytest.fixture
async def listeners() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def _listener(stack: AsyncExitStack, url: str, token: str) -> Listener:
    listener = Listener()
    await listener.connect(url, token)
    stack.push_async_callback(listener.client.disconnect)
    return listener


def _book(tenant: int, version: int) -> dict[str, Any]:
    """A diff as the aggregator publishes it (an empty book)."""
    empty = BookFigures(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, (), (), (), ())
    return book_message(tenant_id=tenant, epoch=1, version=version, full=False, book=empty, accounts=[],
                        sent_at=time.time(), published_at=time.time())


async def test_junk_on_the_book_topic_is_not_relayed(
    servers: list[str], world: World, listeners: AsyncExitStack
) -> None:
    """Only the aggregator publishes book diffs; anything else on the topic (found by the chaos
    run: a stray writer's junk went straight to integration clients) is dropped, and the relay
    goes on with the next real diff."""
    one, _ = servers
    listener = await _listener(listeners, one, world.token(world.a, Role.VIEWER))
    bus = RedisBus(world.settings.redis_url or "", world.settings.redis_prefix)
    listeners.push_async_callback(bus.aclose)

    async def junk_then_real() -> None:
        for junk in ({"tenant_id": world.a, "version": "x"}, {"full": False}, {"accounts": [{"login": "?"}]}):
            await bus.publish(book_topic(world.a), junk)
        await bus.publish(book_topic(world.a), _book(world.a, 41))

    await listener.until("book", lambda d: d["version"] == 41, junk_then_real)
    books = [data for name, data in listener.events if name == "book"]
    assert books
    assert all(book_message_problem(data) is None for data in books), books


async def test_each_tenant_gets_only_its_own_pushes(
    servers: list[str], world: World, listeners: AsyncExitStack
) -> None:
    one, two = servers
    a_one = await _listener(listeners, one, world.token(world.a, Role.VIEWER))
    a_two = await _listener(listeners, two, world.token(world.a, Role.RISK_MANAGER))
    b_one = await _listener(listeners, one, world.token(world.b))
    bus = RedisBus(world.settings.redis_url or "", world.settings.redis_prefix)
    listeners.push_async_callback(bus.aclose)

    def book(tenant: int, version: int) -> Any:
        return lambda: bus.publish(book_topic(tenant), _book(tenant, version))

    def alert(tenant: int, subject: str) -> Any:
        return lambda: bus.publish(alert_topic(tenant), {"subject": subject, "status": "raised"})

    for listener in (a_one, a_two):
        assert (await listener.until("book", lambda d: d["version"] == 7, book(world.a, 7)))[
            "tenant_id"
        ] == world.a
        await listener.until("alert", lambda d: d["subject"] == "a-margin", alert(world.a, "a-margin"))
    await b_one.until("book", lambda d: d["version"] == 9, book(world.b, 9))
    await b_one.until("alert", lambda d: d["subject"] == "b-margin", alert(world.b, "b-margin"))
    # B's socket shares a process with A's, and got none of A's pushes
    assert {data["tenant_id"] for name, data in b_one.events if name == "book"} == {world.b}
    assert {data["subject"] for name, data in b_one.events if name == "alert"} == {"b-margin"}
    assert all(
        data.get("tenant_id") == world.a for name, data in a_one.events + a_two.events if name == "book"
    )
    assert "b-margin" not in {
        data["subject"] for name, data in a_one.events + a_two.events if name == "alert"
    }


async def test_an_acknowledgement_reaches_sockets_on_the_other_process(
    servers: list[str], world: World, listeners: AsyncExitStack
) -> None:
    one, two = servers
    with session_scope(world.settings.database_url) as session:
        row = Alert(
            tenant_id=world.a, severity=Severity.CRITICAL, subject="100001", value=40.0, message="margin"
        )
        session.add(row)
        session.flush()
        alert_id = row.id
    try:
        a_two = await _listener(listeners, two, world.token(world.a, Role.VIEWER))
        b_two = await _listener(listeners, two, world.token(world.b))
        async with httpx.AsyncClient(base_url=one) as http:
            response = await http.post(
                f"/api/v1/alerts/{alert_id}/acknowledge", headers=world.headers(world.a, Role.RISK_MANAGER)
            )
        assert response.status_code == 200, response.text
        state = await a_two.until("alert_state", lambda d: d["id"] == alert_id)
        assert (state["state"], state["acknowledged_by"]) == (
            "acknowledged",
            world.users[world.a, Role.RISK_MANAGER],
        )
        await asyncio.sleep(1.0)  # give a wrong delivery the chance to show up
        assert [name for name, _ in b_two.events] == []
    finally:
        with session_scope(world.settings.database_url) as session:
            for alert in session.exec(select(Alert)).all():
                session.delete(alert)


async def test_alerts_reach_sockets_in_sequence_order_and_a_lost_one_asks_for_a_reload(
    servers: list[str], world: World, listeners: AsyncExitStack
) -> None:
    """Issue 15: the latest-wins topic may reorder or drop alerts; the relay sends them in `seq`
    order and announces a number that never came as `alerts_reload`."""
    from actors.alert_store import take_seqs
    from models.db import tenant_session

    listener = await _listener(listeners, servers[0], world.token(world.a, Role.VIEWER))
    bus = RedisBus(world.settings.redis_url or "", world.settings.redis_prefix)
    listeners.push_async_callback(bus.aclose)
    ready = {"subject": "relay-ready", "status": "raised"}  # no number: passed on as it comes
    await listener.until("alert", lambda d: d["subject"] == "relay-ready",
                         lambda: bus.publish(alert_topic(world.a), ready))
    with tenant_session(world.settings.database_url, world.a) as db:  # the engine stores, then publishes
        first = take_seqs(db, world.a, 4)

    def numbered(seq: int) -> dict[str, Any]:
        return {"seq": seq, "subject": f"ordered-{seq}", "status": "raised", "rule_id": "stop_out"}

    for seq in (first + 1, first, first + 3):  # first + 2 is lost on the way
        await bus.publish(alert_topic(world.a), numbered(seq))
        await asyncio.sleep(0.2)
    await listener.until("alert", lambda d: d.get("seq") == first + 3)
    got = [(name, data.get("seq") if name == "alert" else data) for name, data in listener.events
           if name == "alerts_reload" or (name == "alert" and data.get("seq") is not None)]
    assert got == [("alert", first), ("alert", first + 1),
                   ("alerts_reload", {"after_seq": first + 1, "seq": first + 2}), ("alert", first + 3)]


def _none_token(world: World) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    claims = {
        "sub": str(world.users[world.a, Role.VIEWER]),
        "tenant_id": world.b,
        "role": "viewer",
        "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
    }
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}."


@pytest.mark.parametrize("kind", ["none", "expired", "tampered", "other-key", "alg-none", "ended",
                                  "foreign-tenant"])
async def test_bad_tokens_are_refused_at_connect(servers: list[str], world: World, kind: str) -> None:
    secret = world.settings.secret_key.get_secret_value()
    good = world.token(world.a)
    claims = jwt.decode(good, secret, algorithms=["HS256"])
    tokens = {
        "none": None,
        "expired": jwt.encode(
            {**claims, "exp": datetime.now(UTC) - timedelta(minutes=1)}, secret, algorithm="HS256"
        ),
        "tampered": jwt.encode({**claims, "tenant_id": world.b}, "x" * 40, algorithm="HS256").rsplit(".", 1)[
            0
        ]
        + "."
        + good.rsplit(".", 1)[1],
        "other-key": jwt.encode(claims, "another-secret-key-of-enough-length-0123", algorithm="HS256"),
        "alg-none": _none_token(world),
        # signed right, but issued under a token version the user no longer has (sessions ended)
        "ended": jwt.encode({**claims, "ver": 7}, secret, algorithm="HS256"),
        # signed with the right key, but naming a tenant that is not the user's
        "foreign-tenant": jwt.encode({**claims, "tenant_id": world.b}, secret, algorithm="HS256"),
    }
    listener = Listener()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await listener.connect(servers[0], tokens[kind])
    assert not listener.client.connected


async def test_an_open_socket_ends_when_its_token_expires(servers: list[str], world: World) -> None:
    """Connected with a token that expires in three seconds: told why, then disconnected."""
    secret = world.settings.secret_key.get_secret_value()
    claims = jwt.decode(world.token(world.a, Role.VIEWER), secret, algorithms=["HS256"])
    short = jwt.encode({**claims, "exp": datetime.now(UTC) + timedelta(seconds=3)}, secret, algorithm="HS256")
    listener = Listener()
    await listener.connect(servers[0], short)
    try:
        ended = await listener.until("session_ended", lambda _data: True)
        assert "expired" in ended["reason"]
        await asyncio.wait_for(listener.gone.wait(), WAIT)
    finally:
        await listener.client.disconnect()


async def test_an_open_socket_ends_when_the_users_sessions_are_ended(servers: list[str],
                                                                     world: World) -> None:
    """A risk manager connected to one process is made a viewer through the other: the change
    ends their sessions, and the socket they already hold is told so and closed within seconds,
    not left streaming until the token runs out. (Last in the module: the role stays changed.)"""
    one, two = servers
    listener = Listener()
    await listener.connect(two, world.token(world.a, Role.RISK_MANAGER))
    try:
        await asyncio.sleep(3.0)  # a recheck passes while nothing changed: the socket stays
        assert listener.client.connected
        assert [name for name, _ in listener.events if name == "session_ended"] == []
        async with httpx.AsyncClient(base_url=one) as http:
            response = await http.patch(f"/api/v1/users/{world.users[world.a, Role.RISK_MANAGER]}",
                                        json={"role": "viewer"}, headers=world.headers(world.a))
        assert response.status_code == 200, response.text
        changed_at = time.monotonic()
        ended = await listener.until("session_ended", lambda _data: True)
        assert ended["reason"]
        assert listener.first["session_ended"] - changed_at < 2.0  # pushed over Redis, not polled
        await asyncio.wait_for(listener.gone.wait(), WAIT)
    finally:
        await listener.client.disconnect()
