"""Report fixtures: a simulated book (real risk-core output), and a local S3 server (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from tests.stubs.smtp_stub import free_port
from veles.bench.reports import simulated_book
from veles.reports.errors import SourceError
from veles.reports.gather import Row


@pytest.fixture(scope="session")
def book_200() -> dict[str, Any]:
    """An aggregator snapshot of a 200-account simulated broker."""
    return simulated_book(200, seed=11)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto) on a free port, for the whole session."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class NoEngine:
    """The engine for reports that never ask it (alerts logs): says so loudly if one ever does."""

    def book(self, tenant_id: int) -> Row:
        raise SourceError("an alerts log must not need the engine")

    def account(self, tenant_id: int, login: int) -> Row | None:
        raise SourceError("an alerts log must not need the engine")
