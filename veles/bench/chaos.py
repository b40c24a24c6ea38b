"""`veles chaos`: the demo engine under fire, checked alert by alert against the reference.

What runs. The engine of `veles demo` (a seeded simulated broker, the tenant's supervisor, its
account hosts and aggregator on local Ray, alerts stored in PostgreSQL, the followers delivering
them) on PostgreSQL and a private `redis-server` this run starts on a free port and stops at the end
(so restarting it disturbs nobody), in a namespace (prefix) of its own. Beside it, in this process,
the web tier's readers of every channel: a `LiveFeed` replica of the book, the report notices, the
session token cache, the rate limiter, the socket.io manager, the health and metrics readers. Alert
delivery goes to the portal inbox (`delivery` rows) and by e-mail to a real local SMTP server
(aiosmtpd).

What happens to it, at fixed fractions of the run: malformed messages on every channel and junk in
every key of the deployment (`veles/bench/chaos_targets.py`: the test of that module fails when the
code makes a Redis name the list does not cover), twice; the Redis server killed with SIGKILL and
started again (empty); one account host process killed with SIGKILL.

What is checked. The feed is the simulator's, every poll processed in order (no merging), so it is
exactly reproducible: after the run, the reference (every account stepped in this process by the
same polls, judged by an in-process `AlertEngine` with the tenant's rules and cool-down) says which
alerts an undisturbed engine raises. Each must be in the `alert` table exactly once (one row per
rule, subject and first raise, folded repeats included) and delivered (its portal `delivery` row
sent; its e-mail sent or held for the digest, and every sent e-mail received by the SMTP server).
Stored alerts the reference does not raise are reported as unexpected. Book-level exposure alerts
are judged on the aggregator's paced snapshots and stamped with the wall clock, so no reference can
predict them: they are checked for duplicates and delivery only. Every reader must still be working
at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import ray
import redis
import redis.asyncio as aioredis
import socketio
from sqlalchemy.engine import make_url
from sqlmodel import select

from actors.alert_store import tenant_rules
from actors.mt5_account import AccountActor, Step
from actors.names import aggregator_name, supervisor_name
from actors.tenant_supervisor import TenantSupervisor
from models.alerts import Alert as AlertRow
from models.columns import utcnow
from models.db import session_scope, tenant_session, upgrade
from models.notifications import Channel, Delivery, DeliveryStatus
from models.tenancy import Plan, Role, Tenant, User
from veles.api.realtime import socketio_channel
from veles.bench.chaos_targets import RATE_LIMIT_SAMPLE, TARGETS, inject
from veles.config import Settings, get_settings
from veles.mt5.connect import GatewaySpec, open_gateway
from veles.risk.alerts import Alert, AlertEngine, AlertKind, AlertStatus
from veles.risk.events import Deal, PositionSwap
from veles.services.auth import hash_password
from veles.services.delivery import alert_key, save_preferences
from veles.services.delivery_consumer import read_delivery_status
from veles.services.engine_metrics import read_engine_stats
from veles.services.followers import start_followers, stop_followers
from veles.services.live import LiveFeed
from veles.services.ratelimit import RedisRateLimiter
from veles.services.ray_runtime import connect
from veles.services.report_notices import ReportFeed
from veles.services.sessions import SessionVersions

START_MSC = 1_790_000_000_000
WARMUP_S = 20.0
CHAOS_EMAIL = "chaos-desk@veles.test"
# When each blow lands, as a fraction of the run.
INJECT_AT = (0.15, 0.55)
REDIS_RESTART_AT = 0.35
HOST_KILL_AT = 0.7
DRAIN_S = 90.0  # after the run: how long delivery may take to catch up before what is missing counts
Key = tuple[str, str, int]  # (engine rule, subject, first raise in engine ms): one alert


def chaos_spec(accounts: int, rate: float, seed: int) -> GatewaySpec:
    """The demo's simulated broker, polled `rate` times a second, every poll in order."""
    return GatewaySpec(
        kind="simulator", connection_id="chaos",
        options={"accounts": accounts, "seed": seed, "interval": 1.0 / rate, "start_msc": START_MSC,
                 "warmup": WARMUP_S, "login_base": 100_000},
        interval=1.0 / rate, merge_when_behind=False,
    )


def reference_alerts(spec: GatewaySpec, polls: int, cooldown_s: float) -> list[Alert]:
    """The alerts an undisturbed engine raises and clears over `polls` polls of the gateway: every
    account stepped in this process by every poll (as `veles bench engine`'s reference), its
    figures and applied deals judged by the tenant's rules, in order, with the same cool-down."""
    gateway = open_gateway(spec)
    engine = AlertEngine(tenant_rules(), cooldown_s)
    symbols = {s.name: s for s in gateway.symbols()}
    board = {q.symbol: q for q in gateway.poll().quotes}
    accounts = {a.login: AccountActor(a, symbols, board) for a in gateway.accounts()}
    alerts = [alert for actor in accounts.values() for alert in engine.on_account(actor.figures())]
    for _ in range(polls - 1):
        batch = gateway.poll()
        board.update((q.symbol, q) for q in batch.quotes)
        deals: dict[int, list[Deal]] = defaultdict(list)
        for deal in batch.deals:
            deals[deal.login].append(deal)
        swaps: dict[int, list[PositionSwap]] = defaultdict(list)
        for swap in batch.swaps:
            swaps[swap.login].append(swap)
        for login, actor in accounts.items():
            own = tuple(deals.get(login, ()))
            update = actor.apply(Step(batch.quotes, own, tuple(board.values()) if own else (),
                                      tuple(swaps.get(login, ()))))
            if update.figures is not None:
                alerts.extend(engine.on_account(update.figures))
            for deal in update.deals:
                alerts.extend(engine.on_deal(deal))
    gateway.close()
    return alerts


# -- the services this run owns ------------------------------------------------------------------


def free_port() -> int:
    """A TCP port of 127.0.0.1 nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A `redis-server` of this run alone, on a free port, without persistence (a restart comes
    back empty, as a crashed cache does)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: the chaos run starts a private one")
        self._binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="veles-chaos-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self._process = subprocess.Popen(  # noqa: S603 (fixed argv)
            [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir, "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        raise RuntimeError(f"the private redis-server on port {self.port} did not start") \
                            from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (a crash) and wait for it to be gone."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server for good and remove its directory."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


@dataclass
class MailSink:
    """A real SMTP server (aiosmtpd, in its own thread) that counts the messages it receives."""

    received: list[str] = field(default_factory=list)
    port: int = 0
    _controller: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd hook
        with self._lock:
            self.received.append((envelope.original_content or b"").decode(errors="replace"))
        return "250 Message accepted for delivery"

    def start(self) -> MailSink:
        """Listen on a free port of 127.0.0.1."""
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:  # a test extra: `pip install -e .[test]`
            raise RuntimeError("the chaos run needs aiosmtpd (the test extras) for its SMTP server") from exc
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._controller is not None:
            self._controller.stop()


def fresh_database(url: str) -> None:
    """Drop and create the chaos database (its name must say "chaos": this refuses to drop any
    other), then migrate it."""
    parsed = make_url(url)
    name = parsed.database or ""
    if parsed.get_backend_name() != "postgresql" or "chaos" not in name:
        raise ValueError(f"database: the chaos run needs a PostgreSQL database it may drop, named with "
                         f"'chaos' in it; got {parsed.render_as_string(hide_password=True)}")
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(url)


def seed_tenant(settings: Settings) -> tuple[int, int]:
    """The chaos broker and its risk manager, who takes warning and critical alerts by e-mail too
    (one-minute digests); returns (tenant id, user id)."""
    with session_scope(settings.database_url) as session:
        tenant = Tenant(name="Chaos Broker", plan=Plan.PROFESSIONAL)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        user = User(tenant_id=tenant.id, email=CHAOS_EMAIL, role=Role.RISK_MANAGER,
                    password_hash=hash_password(secrets.token_hex(16)), email_verified_at=utcnow())
        session.add(user)
        session.flush()
        assert user.id is not None
        tenant_id, user_id = tenant.id, user.id
    with tenant_session(settings.database_url, tenant_id) as db:
        save_preferences(db, tenant_id, user_id, {
            "channels": {"info": ["portal"], "warning": ["portal", "email"], "critical": ["portal", "email"]},
            "digest_minutes": 1})
    return tenant_id, user_id


# -- the readers of every channel, in this process -----------------------------------------------


@dataclass
class Readers:
    """The web tier's readers of the deployment's channels and keys, and what they saw."""

    book_updates: list[float] = field(default_factory=list)  # time.monotonic() of each replica update
    report_watch_alive: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _watch_book(feed: LiveFeed, tenant_id: int, seen: list[float]) -> None:
    async for _replica in feed.watch(tenant_id):
        seen.append(time.monotonic())


async def _watch_reports(reports: ReportFeed, tenant_id: int) -> None:
    async with reports.watch(tenant_id) as watch:
        async for _notice in watch:
            pass


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Blows:
    """What was done to the deployment, and when (seconds into the run)."""

    injected: Counter[str] = field(default_factory=Counter)
    inject_at: list[float] = field(default_factory=list)
    redis_restart_at: float | None = None
    redis_down_s: float | None = None
    host_killed: dict[str, Any] = field(default_factory=dict)


async def _until(check: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
    """The first truthy answer of `check` (sync or async) within `timeout` s, else None."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if asyncio.iscoroutine(answer):
            answer = await answer
        if answer or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(every)


def _stored(settings: Settings, tenant_id: int) -> list[AlertRow]:
    with tenant_session(settings.database_url, tenant_id) as db:
        rows = list(db.exec(select(AlertRow).where(AlertRow.tenant_id == tenant_id)).all())
        db.expunge_all()  # read after the session: plain values, not lazy loads
        return rows


def _deliveries(settings: Settings, tenant_id: int) -> list[Delivery]:
    with tenant_session(settings.database_url, tenant_id) as db:
        rows = list(db.exec(select(Delivery).where(Delivery.tenant_id == tenant_id)).all())
        db.expunge_all()
        return rows


def _row_key(row: AlertRow) -> Key:
    return (row.engine_rule or "", row.subject, int(row.first_msc or 0))


def _alert_key(row: AlertRow) -> str:
    """The delivery key of a stored alert (`veles.services.delivery.alert_key`)."""
    rule, subject, first = _row_key(row)
    kind = AlertKind.LARGE_DEAL.value if rule == "large_deal_50" else None
    return alert_key({"rule_id": rule, "subject": subject, "first_msc": first, "time_msc": first,
                      "id": row.id, "kind": kind})


def _delivered(settings: Settings, tenant_id: int, keys: set[Key]) -> bool:
    """Whether every stored alert of `keys` has its portal delivery (the run's drain)."""
    portal = {d.alert_key for d in _deliveries(settings, tenant_id) if d.channel is Channel.PORTAL}
    rows = [row for row in _stored(settings, tenant_id) if _row_key(row) in keys]
    return {_row_key(row) for row in rows} == keys and all(_alert_key(row) in portal for row in rows)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the run (Ray workers started now inherit them), then restore."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


async def _blow(seconds: float, begin: float, settings: Settings, tenant_id: int, private: PrivateRedis,
                supervisor: Any, blows: Blows, progress: Callable[[str], None]) -> None:
    """Land the blows at their moments: injections, the Redis restart, the host kill."""
    plan: list[tuple[float, str]] = sorted(
        [(f * seconds, "inject") for f in INJECT_AT]
        + [(REDIS_RESTART_AT * seconds, "redis"), (HOST_KILL_AT * seconds, "kill")])
    for at, what in plan:
        await asyncio.sleep(max(0.0, begin + at - time.monotonic()))
        now = round(time.monotonic() - begin, 1)
        if what == "inject":
            client = aioredis.Redis.from_url(private.url)
            try:
                blows.injected.update(await inject(client, settings.redis_prefix, tenant_id))
            finally:
                await client.aclose()
            blows.inject_at.append(now)
            progress(f"  {now:6.1f} s: malformed messages on {len(TARGETS)} channels and keys")
        elif what == "redis":
            down = time.monotonic()
            private.kill()
            await asyncio.sleep(1.0)  # down for a moment, as a crashed server is
            await asyncio.to_thread(private.start)
            blows.redis_restart_at, blows.redis_down_s = now, round(time.monotonic() - down, 2)
            progress(f"  {now:6.1f} s: Redis killed (SIGKILL) and started again, empty")
        else:
            pids: dict[int, int] = await supervisor.host_pids.remote()
            victim = sorted(pids)[0]
            os.kill(pids[victim], signal.SIGKILL)
            blows.host_killed = {"host": victim, "pid": pids[victim], "at_s": now}
            killed = time.monotonic()
            progress(f"  {now:6.1f} s: account host {victim} (pid {pids[victim]}) killed (SIGKILL)")

            async def restored() -> bool:
                conn = (await supervisor.status.remote())["connections"][0]
                return bool(sum(conn["restarts"].values()) >= 1 and conn["recovering"] == 0)

            if await _until(restored, 120.0):
                blows.host_killed["restored_s"] = round(time.monotonic() - killed, 2)
                progress(f"  {time.monotonic() - begin:6.1f} s: host {victim} restored in "
                         f"{blows.host_killed['restored_s']} s")


async def _chaos(settings: Settings, seconds: float, accounts: int, rate: float, seed: int,
                 private: PrivateRedis, mail: MailSink, progress: Callable[[str], None]) -> dict[str, Any]:
    tenant_id, _user_id = seed_tenant(settings)
    spec = chaos_spec(accounts, rate, seed)
    supervisor = TenantSupervisor.options(  # type: ignore[attr-defined]
        name=supervisor_name(tenant_id), namespace=settings.ray_namespace,
    ).remote(tenant_id, [spec], settings.publish_hz, settings.redis_url, Plan.PROFESSIONAL.value,
             settings.database_url, None, 2)
    progress(f"starting the engine: {accounts} accounts on 2 hosts, {rate:g} polls/s")
    await supervisor.start.remote()
    await start_followers(settings)
    feed, reports = LiveFeed(settings), ReportFeed(settings)
    versions = SessionVersions(settings.database_url, settings.redis_url, prefix=settings.redis_prefix)
    limiter = RedisRateLimiter(redis.Redis.from_url(private.url, socket_timeout=2), 5, 60.0,
                               settings.redis_prefix)
    readers = Readers()
    readers.tasks = [asyncio.create_task(_watch_book(feed, tenant_id, readers.book_updates)),
                     asyncio.create_task(_watch_reports(reports, tenant_id))]
    # the integrations push API's cross-process manager, listening as in every web process
    sockets = socketio.AsyncServer(async_mode="asgi", client_manager=socketio.AsyncRedisManager(
        private.url, channel=socketio_channel(settings.redis_prefix)))
    sockets.manager.initialize()
    blows = Blows()
    try:
        await _until(lambda: (versions.wait_subscribed(0.1) and len(readers.book_updates) > 0), 60.0)
        progress(f"engine ready; chaos for {seconds:.0f} s")
        begin = time.monotonic()
        striker = asyncio.create_task(_blow(seconds, begin, settings, tenant_id, private, supervisor,
                                            blows, progress))
        next_report = 10.0
        while (elapsed := time.monotonic() - begin) < seconds:
            if elapsed >= next_report:
                conn = (await supervisor.status.remote())["connections"][0]
                progress(f"  {elapsed:6.1f} s: {conn['batches']} batches, {conn['deals']} deals, "
                         f"{len(readers.book_updates)} book updates seen, {conn['recovering']} recovering")
                next_report += 10.0
            await asyncio.sleep(0.2)
        await striker
        polls: int = (await supervisor.pause.remote())[spec.connection_id]
        progress(f"paused after {polls} polls; checking every channel's reader")
        last_blow = begin + max(*INJECT_AT, REDIS_RESTART_AT, HOST_KILL_AT) * seconds
        readers_ok = await _check_readers(settings, tenant_id, versions, limiter, readers, feed, last_blow)
        readers.report_watch_alive = not readers.tasks[1].done()
        readers_ok["socketio_manager_listening"] = not sockets.manager.thread.done()
        expected = expected_rows(reference_alerts(spec, polls, settings.alert_cooldown_seconds))
        progress(f"the reference raises {expected.rows.total()} alerts; waiting for delivery")
        await _until(lambda: asyncio.to_thread(_delivered, settings, tenant_id, set(expected.rows)),
                     DRAIN_S, 1.0)
        await asyncio.sleep(2.0)  # let anything late (a duplicate) land before counting
        summary = await _summarise(settings, tenant_id, expected, mail, blows, readers, readers_ok)
        summary["run"] = {"seconds": seconds, "accounts": accounts, "rate_hz": rate, "seed": seed,
                          "polls": polls, "cooldown_s": settings.alert_cooldown_seconds,
                          "load_avg_1m": round(os.getloadavg()[0], 2)}
        return summary
    finally:
        sockets.manager.thread.cancel()
        for task in readers.tasks:
            task.cancel()
        await asyncio.gather(*readers.tasks, return_exceptions=True)
        versions.close()
        await feed.aclose()
        with contextlib.suppress(Exception):
            await supervisor.stop.remote()
        ray.kill(supervisor)
        await stop_followers(settings)


@dataclass
class Expected:
    """What the reference says the `alert` table must hold: rows per alert key (one per raise that
    is not a cool-down repeat; two large deals of one account in one millisecond are two rows of
    one key) and the latest raise of each key (its row ends with that raise's repeat count)."""

    rows: Counter[Key] = field(default_factory=Counter)
    latest: dict[Key, Alert] = field(default_factory=dict)


def expected_rows(alerts: list[Alert]) -> Expected:
    """The reference's raises as the rows they make (exposure alerts left out: see the module doc)."""
    expected = Expected()
    for alert in alerts:
        if alert.status is AlertStatus.RAISED and alert.kind is not AlertKind.SYMBOL_EXPOSURE:
            key = (alert.rule_id, alert.subject, alert.first)
            if alert.repeats == 1:
                expected.rows[key] += 1
            expected.latest[key] = alert
    return expected


async def _check_readers(settings: Settings, tenant_id: int, versions: SessionVersions,
                         limiter: RedisRateLimiter, readers: Readers, feed: LiveFeed, last_blow: float
                         ) -> dict[str, Any]:
    """Whether every reader of every channel and key still works after the blows."""
    aggregator = ray.get_actor(aggregator_name(tenant_id), namespace=settings.ray_namespace)
    await aggregator.flush.remote()
    ok: dict[str, Any] = {}
    # the book: updates kept coming after the last blow, and the replica reached the final version
    ok["book_updates_after_last_blow"] = any(t > last_blow for t in readers.book_updates)
    snapshot = await aggregator.snapshot.remote()
    ok["book_replica_current"] = bool(await _until(
        lambda: feed.replica(tenant_id).version >= snapshot["version"], 15.0))
    # the session token cache: subscribed again, and a real push still applies
    ok["token_versions_subscribed"] = await asyncio.to_thread(versions.wait_subscribed, 15.0)
    # the rate limiter: a counter whose key held junk counts again
    try:
        decision = await asyncio.to_thread(limiter.hit, RATE_LIMIT_SAMPLE)
        ok["rate_limit_counts"] = decision.allowed
    except Exception as exc:
        ok["rate_limit_counts"] = f"{type(exc).__name__}: {exc}"
    # the metrics and health readers: they answer (the writers replace the junk within seconds)
    ok["engine_stats_read"] = bool(await _until(lambda: read_engine_stats(settings), 15.0))
    ok["delivery_status_read"] = bool(await _until(lambda: read_delivery_status(settings), 15.0))
    return ok


async def _summarise(settings: Settings, tenant_id: int, expected: Expected, mail: MailSink,
                     blows: Blows, readers: Readers, readers_ok: dict[str, Any]) -> dict[str, Any]:
    rows = await asyncio.to_thread(_stored, settings, tenant_id)
    deliveries = await asyncio.to_thread(_deliveries, settings, tenant_id)
    per_key = Counter(_row_key(row) for row in rows)
    judged = Counter({key: n for key, n in per_key.items() if key[0] != "symbol_exposure_5m"})
    portal = Counter(d.alert_key for d in deliveries if d.channel is Channel.PORTAL
                     and d.status is DeliveryStatus.SENT)
    email = {d.alert_key for d in deliveries if d.channel is Channel.EMAIL}
    missing = sorted(key for key, n in expected.rows.items() if judged[key] < n)
    duplicated = sorted(key for key, n in judged.items() if n > expected.rows[key] > 0)
    duplicated += sorted(key for key, n in per_key.items() if key not in judged and n > 1)
    unexpected = sorted(key for key in judged if key not in expected.rows)
    undelivered = sorted({_row_key(row) for row in rows if portal[_alert_key(row)] != 1})
    # the chaos desk takes warning and critical alerts by e-mail (sent, or held for the digest)
    no_email = sorted({_row_key(row) for row in rows if row.severity.value != "info"
                       and _alert_key(row) not in email})
    repeats_differ = sorted(_row_key(row) for row in rows if _row_key(row) in expected.latest
                            and row.repeats != expected.latest[_row_key(row)].repeats)
    sent = sum(1 for d in deliveries if d.channel is Channel.EMAIL and d.status is DeliveryStatus.SENT)
    status = await read_delivery_status(settings) or []
    consumer = next((row for row in status if row["tenant_id"] == tenant_id), None)
    return {
        "ok": not (missing or duplicated or unexpected or undelivered or no_email)
              and sent == len(mail.received)
              and all(v is True for v in readers_ok.values()) and readers.report_watch_alive
              and consumer is not None and consumer["state"] == "running",
        "alerts": {
            "expected": expected.rows.total(),
            "stored": len(rows),
            "stored_exposure": len(rows) - judged.total(),
            "delivered_portal": sum(1 for row in rows if portal[_alert_key(row)] == 1),
            "email_sent": sent,
            "email_received": len(mail.received),
            "duplicates": [list(key) for key in duplicated],
            "missing": [list(key) for key in missing],
            "unexpected": [list(key) for key in unexpected],
            "undelivered": [list(key) for key in undelivered],
            "without_email_record": [list(key) for key in no_email],
            "repeats_differ": [list(key) for key in repeats_differ],
        },
        "injected": dict(sorted(blows.injected.items())),
        "inject_at_s": blows.inject_at,
        "redis_restart": {"at_s": blows.redis_restart_at, "down_s": blows.redis_down_s},
        "host_kill": blows.host_killed,
        "recovery": {"readers": readers_ok, "report_watch_alive": readers.report_watch_alive,
                     "book_updates_seen": len(readers.book_updates), "delivery_consumer": consumer},
    }


def run(seconds: float, database_url: str, accounts: int = 50, rate: float = 4.0, seed: int = 2,
        cooldown_s: float = 30.0, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole chaos run on a fresh database (dropped and created: its name must say "chaos"),
    a private Redis and a local Ray cluster, all stopped at the end; the summary."""
    fresh_database(database_url)
    private = PrivateRedis()
    mail = MailSink()
    private.start()
    mail.start()
    prefix = f"veles-chaos-{secrets.token_hex(4)}:"
    env = {"DATABASE_URL": database_url, "REDIS_URL": private.url, "VELES_REDIS_PREFIX": prefix,
           "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mail.port), "SMTP_STARTTLS": "false",
           "ALERT_COOLDOWN_SECONDS": str(cooldown_s), "VELES_ENV": "development",
           "RAY_NAMESPACE": f"veles-chaos-{secrets.token_hex(4)}"}
    try:
        with _environment(env):
            settings = get_settings()
            connect(settings)
            try:
                return asyncio.run(_chaos(settings, seconds, accounts, rate, seed, private, mail, progress))
            finally:
                ray.shutdown()
    finally:
        mail.stop()
        private.stop()

