"""The fake MT5 Web API served by a real uvicorn on a free localhost port, in a thread of the
test process (so a test can flip its faults and advance its simulator while clients connect)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from veles.mt5.simulator import SimulatedBroker
from veles.mt5.webapi.fake_server import FakeWebApi, Manager, Source

MANAGER_LOGIN = 1005
MANAGER_PASSWORD = "Manager-Pass1"


def broker_source(broker: SimulatedBroker) -> Source:
    """The simulator's symbols and books as the fake's data."""
    return Source(broker.symbols, broker.accounts)


def make_fake(accounts: int = 6, seed: int = 3, managers: tuple[Manager, ...] | None = None,
              **kwargs: object) -> tuple[FakeWebApi, SimulatedBroker]:
    """A fake over a small seeded simulator, with one full-rights manager by default."""
    broker = SimulatedBroker(accounts=accounts, seed=seed, warmup=60.0, start_msc=1_700_000_000_000)
    managers = managers or (Manager(MANAGER_LOGIN, MANAGER_PASSWORD),)
    return FakeWebApi(broker_source(broker), managers, **kwargs), broker  # type: ignore[arg-type]


@contextmanager
def serving(fake: FakeWebApi) -> Iterator[str]:
    """Serve `fake` until the block ends; yields its base URL (http://127.0.0.1:PORT)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(fake.app, interface="asgi3", log_level="critical", lifespan="off",
                            proxy_headers=False, timeout_keep_alive=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake MT5 Web API did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
