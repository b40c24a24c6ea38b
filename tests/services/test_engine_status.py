"""`engine_status` (what `veles engine` prints every 30 s and the admin page shows) reports every
tenant it can read: a tenant whose status call fails because it is not held (it ended itself
meanwhile, or its tenant host could not start it again) is left out, not raised, so it neither
takes the others' report down nor ends `veles engine`'s loop (whose exit stops every engine); and
`start_connected` starts the others when one tenant's start fails. The directory lookup and the
tenant list are stood in for; the failure is the real exception a tenant host answers with."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.tenant_host import TenantNotHosted
from veles.config import Settings
from veles.services import engine


class _Call:
    def __init__(self, answer: dict[str, Any] | BaseException) -> None:
        self._answer = answer

    def remote(self) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if isinstance(self._answer, BaseException):
            future.set_exception(self._answer)
        else:
            future.set_result(self._answer)
        return future


class _Supervisor:
    def __init__(self, answer: dict[str, Any] | BaseException) -> None:
        self.status = _Call(answer)


async def test_a_tenant_that_cannot_answer_is_left_out_of_the_others_report(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    supervisors = {
        1: _Supervisor({"tenant_id": 1}),
        2: _Supervisor(TenantNotHosted("tenant 2 could not be started again by tenants:0: ValueError")),
        3: None,  # no engine: no connection
        4: _Supervisor({"tenant_id": 4}),
    }

    async def running(_settings: Settings, tenant_id: int) -> Any:
        return supervisors[tenant_id]

    monkeypatch.setattr(engine, "active_tenants", lambda _url: [(t, f"broker {t}") for t in supervisors])
    monkeypatch.setattr(engine, "_running_supervisor", running)
    statuses = await engine.engine_status(Settings(database_url="sqlite://"))
    assert [status["tenant_id"] for status in statuses] == [1, 4]
    assert "tenant 2: engine status unavailable" in caplog.text


async def test_a_tenant_whose_engine_does_not_start_leaves_the_others_starting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`veles engine` starts, every 30 s, the engine of each tenant with a connection and none
    running; one whose start raised ended that loop, and its end stops every tenant's engine."""
    tried: list[int] = []

    async def start(_settings: Settings, tenant_id: int, wait: bool = True) -> dict[str, Any]:
        tried.append(tenant_id)
        if tenant_id == 2:
            raise ValueError("log_limit must exceed checkpoint_every")
        return {}

    async def running(_settings: Settings, _tenant_id: int) -> Any:
        return None

    monkeypatch.setattr(engine, "active_tenants", lambda _url: [(t, f"broker {t}") for t in (1, 2, 3)])
    monkeypatch.setattr(engine, "tenants_with_connections", lambda _url: {1, 2, 3})
    monkeypatch.setattr(engine, "_running_supervisor", running)
    monkeypatch.setattr(engine, "_start_supervisor", start)
    assert await engine.start_connected(Settings(database_url="sqlite://")) == [1, 3]
    assert tried == [1, 2, 3]
    assert "tenant 2: its engine did not start" in caplog.text
