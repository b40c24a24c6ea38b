"""The integrators' scenario connects where the push API serves its socket (loadtests/push_socket.py
keeps the two names apart from the web app, which is slow to import in every Locust process)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from veles.api.realtime import NAMESPACE, SOCKETIO_PATH

PUSH_SOCKET = Path(__file__).resolve().parents[2] / "loadtests" / "push_socket.py"


def test_the_integrators_socket_is_where_the_api_serves_it() -> None:
    spec = importlib.util.spec_from_file_location("loadtest_push_socket", PUSH_SOCKET)
    assert spec is not None
    assert spec.loader is not None
    push_socket = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(push_socket)
    assert (push_socket.NAMESPACE, push_socket.SOCKETIO_PATH) == (NAMESPACE, SOCKETIO_PATH)
