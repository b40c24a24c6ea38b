"""Acceptance: restarting PostgreSQL or Redis while the app runs loses no committed data, and the
app recovers without a restart of its own.

The machine's shared PostgreSQL and Redis are left alone: this module starts its OWN PostgreSQL
(initdb into a temporary directory, a free port) and its own redis-server, runs the API in a
uvicorn process against them, and keeps writing MT5 connections through the API from a client
thread while the database is crashed (`pg_ctl stop -m immediate`, then started again) and while
Redis is shut down and started again. Every write the API answered 201 must be in the database
afterwards, and writes must succeed again after each restart, from the same server process.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from pydantic import SecretStr

from models.db import session_scope, upgrade
from models.tenancy import Plan, Role, Tenant, User
from veles.config import Settings
from veles.services.auth import Identity, issue_token
from veles.services.credentials import generate_key

from .servers import api_server, environment_of, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
LOGINS = itertools.count(10_001)  # unique across writers: a duplicate would be a 409, not a lost write
RECOVERY_WAIT = 90.0  # bound on waiting for the first good answer after a restart


def _as_postgres(*command: str) -> None:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` system user."""
    done = subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True, check=False)
    assert done.returncode == 0, f"{command[0]} failed: {done.stdout.decode()} {done.stderr.decode()}"


@dataclass
class OwnPostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:port, trust authentication."""

    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/veles"

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root, "postgres")
        _as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "pg.log"),
            "-w",
            "start",
        )

    def crash(self) -> None:
        """Stop without a checkpoint, as a crash would: committed work must come back from the WAL."""
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@dataclass
class OwnRedis:
    """A redis-server on 127.0.0.1:port, no persistence (Redis holds only counters and pub/sub)."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=(self.root / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while (
            subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None


@dataclass
class Writer:
    """Adds connections through the API, one after another, and remembers which were answered
    201 (committed, as far as the client knows) and how many attempts failed."""

    url: str
    token: str
    created: list[int] = field(default_factory=list)
    failures: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def write_one(self, client: httpx.Client) -> bool:
        login = next(LOGINS)
        try:
            response = client.post(
                "/api/v1/connections",
                json={"server": "sim://resilience", "login": login, "password": "manager-pass"},
            )
        except httpx.TransportError as exc:
            self.failures += 1
            self.reasons[type(exc).__name__] += 1
            return False
        if response.status_code == 201:
            self.created.append(response.json()["id"])
            return True
        self.failures += 1
        self.reasons[f"{response.status_code} {response.text[:80]}"] += 1
        return False

    def run(self) -> None:
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=20
        ) as client:
            while not self.stop.is_set():
                self.write_one(client)
                time.sleep(0.05)

    def wait_for_success(self) -> None:
        """Block until a write made after now is answered 201 (the app has recovered)."""
        before = len(self.created)
        deadline = time.monotonic() + RECOVERY_WAIT
        while len(self.created) <= before + 1:
            assert time.monotonic() < deadline, (
                f"no successful write since the restart ({self.failures} failures)"
            )
            time.sleep(0.2)


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[OwnPostgres, OwnRedis, str, str]]:
    """Own PostgreSQL and Redis, migrated and seeded, and the API running against them."""
    # pytest's temporary directories are private to root; the postgres user needs its own.
    root = Path(tempfile.mkdtemp(prefix="veles-api-resilience-"))
    shutil.chown(root, "postgres")
    pg_port = free_port()
    postgres = OwnPostgres(root / "pg", pg_port)
    redis = OwnRedis(root, free_port({pg_port}))
    postgres.init()
    postgres.start()
    try:
        redis.start()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg_port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE veles")
        upgrade(postgres.url)
        settings = Settings(
            _env_file=None,
            database_url=postgres.url,
            redis_url=redis.url,
            credentials_keys=SecretStr(generate_key()),
        )
        with session_scope(postgres.url) as session:
            tenant = Tenant(name="Resilient Broker", plan=Plan.ENTERPRISE)
            session.add(tenant)
            session.flush()
            assert tenant.id is not None
            user = User(
                tenant_id=tenant.id, email="admin@resilient.test", password_hash="x", role=Role.TENANT_ADMIN
            )
            session.add(user)
            session.flush()
            assert user.id is not None
            identity = Identity(
                user_id=user.id, tenant_id=tenant.id, role=Role.TENANT_ADMIN, email=user.email
            )
        token = issue_token(identity, settings.secret_key.get_secret_value(), 60)
        with api_server(environment_of(settings), root / "api.log") as url:
            yield postgres, redis, url, token
    finally:
        redis.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def _stored_ids(postgres: OwnPostgres) -> set[int]:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/veles") as conn:
        return {row[0] for row in conn.execute("SELECT id FROM mt5_connection")}


@pytest.mark.parametrize("target", ["postgres", "redis"])
def test_a_restart_loses_nothing_committed_and_the_app_recovers(
    stack: tuple[OwnPostgres, OwnRedis, str, str], target: str
) -> None:
    postgres, redis, url, token = stack
    writer = Writer(url, token)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        writer.wait_for_success()  # writing before the restart
        before = (len(writer.created), writer.failures)
        if target == "postgres":
            postgres.crash()
            time.sleep(2.0)  # the app meets a dead database for a while
            during = (len(writer.created), writer.failures)
            postgres.start()
        else:
            redis.stop()
            time.sleep(2.0)
            during = (len(writer.created), writer.failures)
            redis.start()
        restarted = time.monotonic()
        writer.wait_for_success()  # the same server process writes again
        print(
            f"{target}: {during[0] - before[0]} writes and {during[1] - before[1]} failures while down; "
            f"first write after the restart {time.monotonic() - restarted:.2f} s; "
            f"failures: {dict(writer.reasons)}"
        )
    finally:
        writer.stop.set()
        thread.join(timeout=60)
    if target == "postgres":
        assert during[1] > before[1], (
            "no write failed while the database was down: the crash was not exercised"
        )
        refusals = [reason for reason in writer.reasons if reason[:1].isdigit()]
        assert all(reason.startswith("503") for reason in refusals), f"not a 503 while down: {refusals}"
    else:  # Redis holds no data: writes go on while it is down (rate limits fail open)
        assert during[0] > before[0], "no write succeeded while Redis was down"
    stored = _stored_ids(postgres)
    assert writer.created, "nothing was written"
    missing = set(writer.created) - stored
    assert not missing, f"answered 201 but not in the database after the restart: {sorted(missing)}"
    # and the app reads what it wrote (through the restarted database, from the same process)
    listed = httpx.get(f"{url}/api/v1/connections", headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert listed.status_code == 200
    assert set(writer.created) <= {row["id"] for row in listed.json()}
