"""Serve an ASGI app (the fake MT5 Web API) on a free localhost port, in a thread of this process.

Reconciliation of a simulated server reads the simulator's own figures through the fake Web API,
exactly as it reads a real server's: the same client, the same answers, the same failures. The
fake runs beside the simulator it reads (in the tenant supervisor's process), on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import uvicorn
from starlette.types import ASGIApp
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

START_TIMEOUT_S = 10.0


class LocalServer:
    """One uvicorn server on 127.0.0.1, started at construction; `close()` stops it."""

    def __init__(self, app: ASGIApp) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(app, interface="asgi3", log_level="critical", lifespan="off",
                                proxy_headers=False, timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="local-webapi", daemon=True)
        self._thread.start()
        waiting = Retrying(stop=stop_after_delay(START_TIMEOUT_S), wait=wait_fixed(0.01),
                           retry=retry_if_result(lambda settled: not settled))
        with contextlib.suppress(RetryError):  # not started in time: said just below
            waiting(lambda: self._server.started or not self._thread.is_alive())
        if not self._server.started:
            self.close()
            raise RuntimeError("the local MT5 Web API did not start")

    def close(self) -> None:
        """Stop serving and wait for the thread (bounded)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(START_TIMEOUT_S)
        self._socket.close()
