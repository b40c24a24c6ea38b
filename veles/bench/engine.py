"""`veles bench engine`: the live engine on local Ray, measured end to end.

A seeded simulated broker feeds one tenant's supervisor, its account hosts (N account actors
spread over them) and the aggregator at `rate` batches per second, every poll processed in order
(no merging), so the run is exactly reproducible. Measured: latency from a batch leaving the
gateway to the book diff carrying it being published on the bus (p50/p95/p99), CPU of every engine
process (Ray's own included, the simulator's share taken out and reported as `gateway_cpu_pct`)
per 1,000 account updates, memory (unique memory of the hosts per account, and the whole engine's
proportional resident set), start-up to the first batch, restarts after `kill` host processes are
killed with SIGKILL at random moments (one at a time, each once the previous is restored) and the
longest time from a kill to its accounts being restored, and mismatches: accounts whose final
figures differ from an undisturbed in-process reference fed the same polls (must be 0).

The same-run baseline: that reference's own CPU per batch (the bare risk math, every account in
one process, no hosting, no book) is timed in the same run, and `cpu_vs_reference` is the
engine's CPU per batch over it. The machine may be shared: the ratio moves far less with its load
than absolute figures do.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import psutil
import ray

from actors.mt5_account import AccountActor, Step
from actors.names import aggregator_name
from actors.tenant_supervisor import TenantSupervisor
from veles.mt5.connect import GatewaySpec, open_gateway
from veles.risk.account import AccountFigures
from veles.risk.events import Deal, PositionSwap

START_MSC = 1_790_000_000_000
TENANT_ID = 1
WARMUP_S = 20.0  # simulated seconds of trading before the session (the simulator's start-up)


def bench_spec(accounts: int, rate: float, seed: int) -> GatewaySpec:
    """A simulated broker polled `rate` times a second, every poll processed in order."""
    return GatewaySpec(
        kind="simulator",
        connection_id="bench",
        options={"accounts": accounts, "seed": seed, "interval": 1.0 / rate, "start_msc": START_MSC,
                 "warmup": WARMUP_S},
        interval=1.0 / rate,
        merge_when_behind=False,
    )


def reference_run(spec: GatewaySpec, polls: int) -> tuple[dict[int, AccountFigures], float]:
    """What an undisturbed engine computes after `polls` polls of the same seeded gateway: every
    account hosted in this process and fed every batch in order. Also the CPU seconds the
    accounts' steps took (the gateway's polls left out): the bare risk math of the run, measured
    on the same machine at the same time, which the engine's CPU is compared with."""
    gateway = open_gateway(spec)
    math_s = 0.0
    symbols = {s.name: s for s in gateway.symbols()}
    board = {q.symbol: q for q in gateway.poll().quotes}
    hosts = {a.login: AccountActor(a, symbols, board) for a in gateway.accounts()}
    for _ in range(polls - 1):
        batch = gateway.poll()
        board.update((q.symbol, q) for q in batch.quotes)
        deals: dict[int, list[Deal]] = {}
        for deal in batch.deals:
            deals.setdefault(deal.login, []).append(deal)
        swaps: dict[int, list[PositionSwap]] = {}
        for swap in batch.swaps:
            swaps.setdefault(swap.login, []).append(swap)
        started = time.thread_time()
        for login, host in hosts.items():
            own = tuple(deals.get(login, ()))
            moved = tuple(board.values()) if own else ()
            host.apply(Step(batch.quotes, own, moved, tuple(swaps.get(login, ()))))
        math_s += time.thread_time() - started
    gateway.close()
    return {login: host.figures() for login, host in hosts.items()}, math_s


def reference_figures(spec: GatewaySpec, polls: int) -> dict[int, AccountFigures]:
    """The reference's figures alone (see `reference_run`)."""
    return reference_run(spec, polls)[0]


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class CpuMeter:
    """CPU seconds used by this process's descendants (the Ray cluster and every actor) since the
    meter started. Sampled while running, per process, because a killed actor takes its CPU
    counters with it and its replacement starts from zero."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}
        self.sample()
        self._baseline = dict(self._last)

    def sample(self) -> None:
        """Read the counters of every process now in the tree."""
        for process in psutil.Process(os.getpid()).children(recursive=True):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            self._last[process.pid] = times.user + times.system

    def used(self) -> float:
        """Seconds used since the meter started (processes born since count from zero)."""
        return sum(last - self._baseline.get(pid, 0.0) for pid, last in self._last.items())


def _recovery_phases(recoveries: list[dict[str, Any]], kills: list[float]) -> dict[str, float] | None:
    """Where the slowest host recovery went: from the kill to the supervisor noticing (`detect_s`,
    a call to the dead host failing), waiting for Ray to bring the process back (`waiting_s`), the
    restore call (`restore_s`: checkpoints unpickled, log replayed) and the catch-up on the
    batches that came meanwhile (`catch_up_s`). Both sides read the same monotonic clock."""
    slowest: dict[str, float] | None = None
    for record in recoveries:
        kill = max((k for k in kills if k <= record["noticed_at"]), default=None)
        if kill is None:
            continue
        phases = {"detect_s": round(record["noticed_at"] - kill, 2), "waiting_s": record["waiting_s"],
                  "restore_s": record["restore_s"], "catch_up_s": record.get("catch_up_s")}
        if slowest is None or _total(phases) > _total(slowest):
            slowest = phases
    return slowest


def _total(phases: dict[str, Any]) -> float:
    return sum(value or 0.0 for value in phases.values())


def _memory(root: int) -> tuple[float, dict[int, float]]:
    """The proportional resident set (PSS) of the whole process tree under `root` in MB, and each
    process's unique memory (USS) in MB by pid."""
    pss, uss = 0.0, {}
    for process in psutil.Process(root).children(recursive=True):
        try:
            info = process.memory_full_info()
        except psutil.Error:
            continue
        pss += info.pss / 2**20
        uss[process.pid] = info.uss / 2**20
    return pss, uss


async def _measure(
    accounts: int, seconds: float, rate: float, kill: int, seed: int, publish_hz: float, hosts: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    spec = bench_spec(accounts, rate, seed)
    supervisor = TenantSupervisor.remote(  # type: ignore[attr-defined]
        TENANT_ID, [spec], publish_hz, None, hosts=hosts)
    started = time.monotonic()
    progress(f"starting {accounts} account actors")
    await supervisor.start.remote()
    aggregator = ray.get_actor(aggregator_name(TENANT_ID))
    while not (await supervisor.status.remote())["connections"][0]["batches"]:  # noqa: ASYNC110 (another process)
        await asyncio.sleep(0.02)
    ready_s = time.monotonic() - started
    status = await supervisor.status.remote()
    progress(f"engine ready in {ready_s:.1f} s on {status['connections'][0]['hosts']} hosts; "
             f"measuring for {seconds:.0f} s")
    await aggregator.take_latencies.remote()  # start-up is not part of the measurement
    cpu = CpuMeter()
    first = (await supervisor.status.remote())["connections"][0]
    calls_before, gateway_before = first["account_calls"], first["gateway_cpu_s"]
    rng = random.Random(seed)
    kill_at = sorted(rng.uniform(0.2, 0.8) * seconds for _ in range(kill))
    begin = time.monotonic()
    next_report = 1.0
    killed = 0
    recovery: list[float] = []  # seconds from each kill to the host's accounts restored
    kills: list[float] = []  # time.monotonic() of each kill
    killed_at: float | None = None
    while (elapsed := time.monotonic() - begin) < seconds:
        if killed_at is not None:
            conn = (await supervisor.status.remote())["connections"][0]
            if sum(conn["restarts"].values()) >= killed and conn["recovering"] == 0:
                recovery.append(time.monotonic() - killed_at)
                progress(f"  {elapsed:5.1f} s: restored in {recovery[-1]:.2f} s")
                killed_at = None
        elif kill_at and elapsed >= kill_at[0]:
            kill_at.pop(0)
            pids = await supervisor.host_pids.remote()
            victim = rng.choice(sorted(pids))
            os.kill(pids[victim], signal.SIGKILL)
            killed, killed_at = killed + 1, time.monotonic()
            kills.append(killed_at)
            progress(f"  {elapsed:5.1f} s: killed host {victim} (pid {pids[victim]})")
        if elapsed >= next_report:
            cpu.sample()
            conn = (await supervisor.status.remote())["connections"][0]
            progress(f"  {elapsed:5.1f} s: {conn['batches']} batches, {conn['deals']} deals, "
                     f"{conn['recovering']} recovering")
            next_report += 1.0
        await asyncio.sleep(0.02)
    measured_s = time.monotonic() - begin
    polls = (await supervisor.pause.remote())["bench"]
    cpu.sample()
    cpu_used = cpu.used()
    latencies = [s * 1000.0 for s in await aggregator.take_latencies.remote()]
    status = await supervisor.status.remote()
    conn = status["connections"][0]
    engine_pss, uss = _memory(os.getpid())
    host_pids = await supervisor.host_pids.remote()
    host_mb = sum(uss.get(pid, 0.0) for pid in host_pids.values())
    phases = _recovery_phases(conn["recoveries"], kills)
    progress(f"comparing {accounts} accounts with a reference fed the same {polls} polls")
    figures = await supervisor.account_figures.remote()
    await supervisor.stop.remote()
    ray.kill(supervisor)
    expected, math_s = reference_run(spec, polls)
    updates = conn["account_calls"] - calls_before
    gateway_s = conn["gateway_cpu_s"] - gateway_before
    batches = conn["batches"] - first["batches"]
    # The same-run baseline: the engine's CPU per measured batch against the bare risk math's per
    # batch (every account stepped in this process, no hosting), both on this machine and load.
    engine_ms = (cpu_used - gateway_s) * 1000.0 / max(batches, 1)
    math_ms = math_s * 1000.0 / max(polls - 1, 1)
    return {
        "accounts": accounts,
        "hosts": conn["hosts"],
        "rate_hz": rate,
        "seconds": seconds,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "batches": conn["batches"],
        "deals": conn["deals"],
        "account_updates": updates,
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p95_ms": round(_percentile(latencies, 0.95), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "cpu_ms_per_1k_updates": round((cpu_used - gateway_s) * 1000.0 / max(updates, 1) * 1000.0, 1),
        "gateway_cpu_pct": round(gateway_s / measured_s * 100.0, 1),
        "engine_cpu_ms_per_batch": round(engine_ms, 1),
        "reference_cpu_ms_per_batch": round(math_ms, 1),
        "cpu_vs_reference": round(engine_ms / math_ms, 2) if math_ms > 0 else None,
        "mb_per_account": round(host_mb / accounts, 3),
        "engine_rss_mb": round(engine_pss, 1),
        "ready_s": round(ready_s, 1),
        "restarts": sum(conn["restarts"].values()),
        "recovery_s_max": round(max(recovery), 2) if recovery else None,
        "recovery_phases": phases,
        "rejected": sum(conn["rejected"].values()),
        "mismatches": sum(figures.get(login) != fig for login, fig in expected.items()),
    }


def run(
    accounts: int, seconds: float, rate: float = 4.0, kill: int = 0, seed: int = 7,
    publish_hz: float = 4.0, hosts: int = 0, progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Start a local Ray cluster, measure, shut it down; one result dict."""
    ray.init(address="local", num_cpus=2, namespace="veles-bench", include_dashboard=False,
             log_to_driver=False)
    try:
        return asyncio.run(_measure(accounts, seconds, rate, kill, seed, publish_hz, hosts, progress))
    finally:
        ray.shutdown()
