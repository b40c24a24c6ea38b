"""Run the API in a real uvicorn process for tests that need a network server (socket.io clients,
schemathesis, database and Redis restarts), configured only through its environment."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import psutil
from fastapi import Depends, FastAPI
from sqlalchemy import event
from sqlmodel import Session, select
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from models.audit import AuditLog
from models.tenancy import Plan, User
from veles.api import create_api
from veles.api.db import PlatformUnit
from veles.api.deps import platform_session
from veles.config import Settings
from veles.services.ratelimit import ApiTier

PORTS = range(3200, 3300)  # the ports this test suite's servers may use
ROOT = Path(__file__).resolve().parents[2]
START_WAIT = 240.0  # bound on a server's start-up (imports are slow on a loaded machine)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no output)"


def free_port(exclude: set[int] | None = None) -> int:
    """A port in PORTS nobody listens on now, tried in random order so concurrent runs on this
    machine rarely reach for the same one."""
    for port in random.sample(PORTS, len(PORTS)):
        if exclude and port in exclude:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` itself is listening on `port`."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections)


class PortTaken(RuntimeError):
    """Another process bound the chosen port first (test runs on this machine share the range)."""


def _start(environment: Mapping[str, str], log: Path, port: int, factory: str) -> subprocess.Popen[bytes]:
    """uvicorn serving `factory` on `port`, once it is this process that answers /api/health there."""
    before = log.stat().st_size if log.exists() else 0
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            env=dict(environment),
            cwd=log.parent,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_WAIT
    while True:
        if process.poll() is not None:
            tail = _tail(log)
            if "address already in use" in log.read_bytes()[before:].decode(errors="replace"):
                raise PortTaken(tail)
            raise RuntimeError(f"the API server exited with {process.returncode}: {tail}")
        try:
            # Ours only: another run's server could hold the port this one then fails to bind,
            # and answer in its place.
            if _listens(process.pid, port) and httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"the API server did not answer on {url}: {_tail(log)}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def api_server(
    env: Mapping[str, str], log: Path, port: int | None = None, factory: str = "veles.api:create_api"
) -> Iterator[str]:
    """The app `factory` makes, served by uvicorn on a free port (another one if a concurrent run
    takes it first); yields its base URL once /api/health answers, and stops the process
    (SIGTERM, then SIGKILL) afterwards. Its output goes to `log`."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "REDIS_"))
    }
    environment.update(env)
    environment["PYTHONPATH"] = str(ROOT)  # so a factory in tests/ imports
    chosen = port
    retrying = Retrying(stop=stop_after_attempt(1 if port else 5), retry=retry_if_exception_type(PortTaken),
                        reraise=True)
    for attempt in retrying:
        with attempt:
            chosen = port or free_port()
            process = _start(environment, log, chosen, factory)
    try:
        yield f"http://127.0.0.1:{chosen}"
    finally:
        _stop(process)


def environment_of(settings: Settings) -> dict[str, str]:
    """The environment that makes a server process read the same settings."""
    env = {
        "DATABASE_URL": settings.database_url,
        "SECRET_KEY": settings.secret_key.get_secret_value(),
        "SIMULATOR_PASSWORD": settings.simulator_password.get_secret_value(),
        "RAY_NAMESPACE": settings.ray_namespace,
    }
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    if settings.credentials_keys is not None:
        env["CREDENTIALS_KEYS"] = settings.credentials_keys.get_secret_value()
    return env


def unlimited_api() -> FastAPI:
    """The API with per-tenant and per-user limits far above what a property-based run sends
    (the per-IP limit comes from API_IP_LIMIT): the run is about answers, not about limits,
    which tests/api/test_auth*.py cover."""
    return create_api(api_tiers={plan: ApiTier(per_tenant=10**9, per_user=10**9) for plan in Plan})


def probe_api() -> FastAPI:
    """The API plus two routes that write an audit row through a platform session whose commit
    takes a second: one takes the session as `PlatformUnit` (committed before the response), one
    as a plain `Depends(platform_session)` (FastAPI's default: after the response), so a test can
    show the first is read back the moment its answer arrives and the second is not. A third
    route's write fails at commit (a duplicate e-mail) to show that failure reaches the client."""
    app = create_api()

    def slow_write(db: Session, target: str) -> dict[str, str]:
        event.listen(db, "before_commit", lambda _session: time.sleep(1.0))
        db.add(AuditLog(tenant_id=None, action="probe.write", target=target, details={}))
        return {"target": target}

    @app.post("/api/v1/probe/unit/{target}", status_code=201)
    def unit(target: str, db: PlatformUnit) -> dict[str, str]:
        return slow_write(db, target)

    @app.post("/api/v1/probe/after-response/{target}", status_code=201)
    def after_response(target: str, db: Annotated[Session, Depends(platform_session)]) -> dict[str, str]:
        return slow_write(db, target)

    @app.post("/api/v1/probe/duplicate/{email}", status_code=201)
    def duplicate(email: str, db: PlatformUnit) -> dict[str, str]:
        existing = db.exec(select(User).where(User.email == email)).one()
        db.add(User(tenant_id=existing.tenant_id, email=email, password_hash="x"))  # fails at commit
        return {"email": email}

    return app
