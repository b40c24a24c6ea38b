"""Run the API in a real uvicorn process for tests that need a network server (socket.io clients,
schemathesis, database and Redis restarts), configured only through its environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from veles.config import Settings

PORTS = range(3200, 3300)  # the ports this test suite's servers may use


def free_port(exclude: set[int] | None = None) -> int:
    """A port in PORTS nobody listens on now."""
    for port in PORTS:
        if exclude and port in exclude:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


@contextmanager
def api_server(env: Mapping[str, str], log: Path, port: int | None = None) -> Iterator[str]:
    """`create_api()` served by uvicorn on a free port; yields its base URL once /api/health
    answers, and stops the process (SIGTERM, then SIGKILL) afterwards. Its output goes to `log`."""
    port = port or free_port()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "REDIS_"))
    }
    environment.update(env)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "veles.api:create_api",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=environment,
            cwd=log.parent,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the API server exited with {process.returncode}; see {log}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not answer on {url}; see {log}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
