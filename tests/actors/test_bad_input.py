"""Malformed gateway events are refused and counted per connection; the tenant keeps running."""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.tenant_supervisor import TenantSupervisor
from veles.mt5.connect import GatewaySpec
from veles.mt5.recording import RecordingGateway
from veles.mt5.simulator import Fault, SimulatedBroker

pytestmark = pytest.mark.ray
POLLS = 80
FAULTS = {10: Fault.NAN_QUOTE, 20: Fault.UNKNOWN_SYMBOL, 30: Fault.CROSSED_QUOTE, 40: Fault.DUPLICATE_DEAL}


def _record_faulty_session(path: Path) -> None:
    """A seeded session whose feed misbehaves as real feeds do, recorded for replay.

    The duplicate is the newest deal the session sent, sent again: its ticket is not above the
    account's last one, so the account must refuse it. The seed is one whose accounts deal before
    poll 40 (with seed 3 the toxic-flow population, a5cb839, sent none by then: nothing to repeat).
    """
    simulator = SimulatedBroker(connection_id="bad", accounts=4, seed=1, interval=0.25,
                                start_msc=1_790_000_000_000)
    gateway = RecordingGateway(simulator, path)
    for poll in range(POLLS):
        if poll in FAULTS:
            simulator.inject(FAULTS[poll])
        batch = gateway.poll()
        if FAULTS.get(poll) is Fault.DUPLICATE_DEAL:
            assert batch.deals, "nothing was sent twice: the session dealt nothing before the fault"
    gateway.close()


async def test_bad_events_are_counted_and_the_tenant_keeps_running(ray_local: None, tmp_path: Path) -> None:
    path = tmp_path / "faulty.jsonl.gz"
    _record_faulty_session(path)
    spec = GatewaySpec(kind="replay", connection_id="bad", options={"path": str(path)},
                       interval=0.02, merge_when_behind=False)
    supervisor = TenantSupervisor.remote(977, [spec], 10.0, None)  # type: ignore[attr-defined]
    try:
        await supervisor.start.remote()
        deadline = time.monotonic() + 60
        while True:
            status: dict[str, Any] = await supervisor.status.remote()
            (conn,) = status["connections"]
            if conn["polls"] >= POLLS + 5:
                break
            assert time.monotonic() < deadline, status
            await asyncio.sleep(0.1)
        assert conn["rejected"]["bad_price"] >= 1
        assert conn["rejected"]["unknown_symbol"] >= 1
        assert conn["rejected"]["crossed_quote"] >= 1
        assert conn["rejected"]["account_rejected"] >= 1  # the deal sent twice was refused once
        assert any("duplicate" in e.lower() or "ticket" in e.lower() for e in conn["recent_errors"])
        assert conn["batches"] >= POLLS - 1  # every batch was processed despite the bad ones
        assert conn["restarts"] == {}
        figures = await supervisor.account_figures.remote()
        assert len(figures) == 4
        assert all(math.isfinite(f.equity) and math.isfinite(f.margin) for f in figures.values())
    finally:
        await supervisor.stop.remote()
        ray.kill(supervisor)


async def test_a_connection_over_the_plan_is_refused_with_a_clear_reason(ray_local: None) -> None:
    spec = GatewaySpec(kind="simulator", connection_id="big",
                       options={"accounts": 3, "seed": 2, "interval": 0.25}, interval=0.25)
    supervisor = TenantSupervisor.remote(976, [spec], 4.0, None, "starter")  # type: ignore[attr-defined]
    try:
        ok = await supervisor.start.remote()
        assert ok["refused_connections"] == {}  # 3 accounts fit the Starter plan
        second = GatewaySpec(kind="simulator", connection_id="second",
                             options={"accounts": 2, "seed": 3, "interval": 0.25}, interval=0.25)
        refused = TenantSupervisor.remote(975, [spec, second], 4.0, None, "starter")  # type: ignore[attr-defined]
        status = await refused.start.remote()
        assert status["refused_connections"] == {
            "second": "the Starter plan allows 1 MT5 server(s); this would make 2"
        }
        assert [c["connection_id"] for c in status["connections"]] == ["big"]
        await refused.stop.remote()
        ray.kill(refused)
    finally:
        await supervisor.stop.remote()
        ray.kill(supervisor)
