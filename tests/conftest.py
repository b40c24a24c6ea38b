"""Shared fixtures: the real PostgreSQL, Redis and Ray of this machine.

A test that needs a service gets it or fails with the reason; nothing here skips, so CI cannot
pass by quietly not testing. Tests use their own database (`veles_test`), Redis db (13) and Redis
prefix (one per run).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import ray
import redis
from tenacity import Retrying, stop_after_attempt, wait_fixed

from models.db import upgrade

# Tests run as development (the public development SECRET_KEY, no CREDENTIALS_KEYS needed); this
# reaches every subprocess a test starts too. Tests of production behaviour set their own settings.
os.environ["VELES_ENV"] = "development"

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("TEST_PG_DB", "veles_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", "artifacts"))
# Redis pub/sub ignores the database number: this run's channels and keys get a namespace of their
# own, so two runs (or a demo) sharing the Redis server never read each other's messages. Set here,
# before anything reads the settings; Ray workers and demo subprocesses inherit it.
REDIS_PREFIX = os.environ.setdefault("VELES_REDIS_PREFIX", f"veles-test-{uuid.uuid4().hex[:10]}:")

# Local Twilio and SMTP servers (`twilio_stub`, `smtp_server`, ...) for any test that sends messages.
pytest_plugins = ["tests.stubs.fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaos-seconds", type=float, default=45.0,
                     help="How long tests/bench/test_chaos.py runs the engine under fire (the issue's "
                          "full run: 300, or `veles chaos --seconds 300`).")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A fresh `veles_test` database on the local PostgreSQL, as a SQLAlchemy URL."""
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{PG_DB}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN} (run scripts/services.sh): {exc}")
    return PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{PG_DB}"


@pytest.fixture(scope="module")
def database(pg_url: str) -> str:
    """The test database migrated to the newest revision (nothing is dropped: tests that share it
    each make their own tenant)."""
    upgrade(pg_url)
    return pg_url


def _redis() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is required at {REDIS_URL} (run scripts/services.sh): {exc}")
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The local Redis, test db 13, emptied before and after each test."""
    yield from _redis()


@pytest.fixture(scope="module")
def redis_url_module() -> Iterator[str]:
    """The same Redis db for fixtures that live as long as a test module."""
    yield from _redis()


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A small local Ray cluster for the session, shut down at the end.

    On a loaded machine Ray's start-up can time out waiting for its own daemons (seen once in a
    full run); a half-started cluster is shut down and the start tried again, three times at most,
    so one slow start does not fail every Ray test while a real breakage still fails the run."""
    for attempt in Retrying(stop=stop_after_attempt(3), wait=wait_fixed(2), reraise=True):
        with attempt:
            try:
                ray.init(address="local", num_cpus=2, namespace="veles-test",
                         include_dashboard=False, log_to_driver=False)
            except Exception:
                ray.shutdown()
                raise
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave screenshots and files a person may want to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
