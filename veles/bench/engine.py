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

Many tenants (`tenants`): the accounts are split evenly over that many tenants, each with its own
simulated server (seeded apart) and its own engine placed as `veles engine` places it: by
default every tenant's supervisor and aggregator are logical actors in one tenant host per CPU,
its accounts in the shared pool of account hosts (`tenant_hosts` sets the number of tenant
hosts, `process_per_tenant` gives each tenant a supervisor, an aggregator and account hosts of
its own). Latency percentiles are over every tenant's batches; `batches` is the fewest any
tenant processed. `mb_per_tenant` is the engine's proportional resident set above the bare Ray
cluster's (measured before any tenant starts), per tenant, its accounts included;
`idle_cpu_pct_per_tenant` is the CPU (percent of one core) the engine uses above the bare
cluster's, per tenant, over a quiet window with every tenant paused (no price batch: the book
idle). A start-up that does not finish (`READY_TIMEOUT_S`) or that would take the machine's last
memory (`LOW_MEMORY_MB`) is given up and reported as such, with how far it got.

Through the Web API (`via_webapi`): each tenant's simulated server runs in this process behind
the fake MT5 Web API on 127.0.0.1 (`veles.mt5.webapi.simulated`, trading on its own timer at
`rate`), and the engine reads it with the Web API gateway, as it would a broker's server. Added:
`polls_per_s` and `bytes_per_s` (the gateway's requests of ticks and deals, and the answer bytes
it read), `gateway_cpu_pct` (now the gateway thread's CPU, in the supervisor's process) and
`gateway_wait_ms_max` (the longest a tick waited in the gateway for the engine's poll). Latency
is from the batch leaving the gateway, so it excludes both poll intervals (the server's and the
engine's). The server holds still until the engine is ready (so both start from the same books),
the reference is the simulator run for as many steps as the server made, and the server stops
trading before the end so the engine can catch up: mismatches must be 0 here too, on every figure
but the labels and running maxima a poller cannot see (`PATH_LABELS`).

The same-run baseline: that reference's own CPU per batch (the bare risk math, every account in
one process, no hosting, no book) is timed in the same run, and `cpu_vs_reference` is the
engine's CPU per batch over it. The machine may be shared: the ratio moves far less with its load
than absolute figures do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import psutil
import ray
from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_delay, wait_fixed

from actors.mt5_account import AccountActor, Step
from actors.names import aggregator_name, host_name, tenant_host_name
from actors.tenant_host import SHARED_POOL, TenantRef, tenant_host
from actors.tenant_supervisor import TenantSupervisor
from veles.mt5.connect import GatewaySpec, open_gateway
from veles.mt5.webapi.simulated import SimulatedWebApi
from veles.risk.account import AccountFigures
from veles.risk.events import Deal, PositionSwap

START_MSC = 1_790_000_000_000
TENANT_ID = 1
WARMUP_S = 20.0  # simulated seconds of trading before the session (the simulator's start-up)
IDLE_S = 5.0  # the quiet window over which idle CPU is measured (bare cluster, then book idle)
READY_TIMEOUT_S = 600.0  # a start-up not done by then is reported as given up
LOW_MEMORY_MB = 3_000  # start-up given up when the machine has less than this left
CATCH_UP_S = 60.0  # the engine's catch-up on a frozen Web API server, at most


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


def webapi_spec(server: SimulatedWebApi, rate: float) -> GatewaySpec:
    """The Web API gateway on a simulated server, polled `rate` times a second, in order."""
    return GatewaySpec(kind="webapi", connection_id="bench", options={"url": server.url},
                       interval=1.0 / rate, merge_when_behind=False, login=server.login,
                       password=server.password)


async def _caught_up(supervisors: list[Any], servers: list[SimulatedWebApi]) -> list[int]:
    """Stop the simulated servers trading and wait until every engine has polled its gateway
    after the gateway polled the frozen server: then the engine holds everything the server did.
    The servers' steps, for the reference (a minute at most: a stuck engine shows as mismatches)."""
    for server in servers:
        server.stop_trading()
    conns = await _connections(supervisors)
    polled = [c["gateway"]["polls"] + 3 for c in conns]
    batches = [c["batches"] + 2 for c in conns]  # once the gateway is past `polled`, checked below

    async def behind() -> bool:
        nonlocal batches
        now = await _connections(supervisors)
        if any(c["gateway"]["polls"] < p for c, p in zip(now, polled, strict=True)):
            batches = [c["batches"] + 2 for c in now]
            return True
        return any(c["batches"] < b for c, b in zip(now, batches, strict=True))

    waiting = AsyncRetrying(stop=stop_after_delay(CATCH_UP_S), wait=wait_fixed(0.05),
                            retry=retry_if_result(bool))
    with contextlib.suppress(RetryError):
        await waiting(behind)
    return [server.steps for server in servers]


def reference_run(spec: GatewaySpec, polls: int) -> tuple[dict[int, AccountFigures], float]:
    """What an undisturbed engine computes after `polls` polls of the same seeded gateway: every
    account hosted in this process and fed every batch in order. Also the CPU seconds the
    accounts' steps took (the gateway's polls left out): the bare risk math of the run, measured
    on the same machine at the same time, which the engine's CPU is compared with."""
    gateway = open_gateway(spec)
    math_s = 0.0
    symbols = {s.name: s for s in gateway.symbols()}
    board = {q.symbol: q for q in gateway.poll().quotes}
    # stamped with the connection, as the supervisor stamps what its gateway gives (the figures'
    # `server`)
    hosts = {a.login: AccountActor(dataclasses.replace(a, server=spec.connection_id), symbols, board)
             for a in gateway.accounts()}
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


# What a Web API reader cannot reproduce of a simulator-fed engine: the labels (an account's group
# is the MT5 group's full name, and MT5 has no A/B-book flag), and the running maxima over the
# prices seen (peak equity, drawdown, and the risk score built on it) and the server time of the
# last event applied (`updated_msc`): polling `tick/last` sees a sample of the server's ticks, not
# each one the simulator stepped through. Every other figure
# (balance, credit, equity, profit, realised P/L, margin, free margin, level, state, positions,
# exposure) must be equal.
PATH_LABELS = ("group", "book", "peak_equity", "drawdown", "risk_score", "updated_msc")


def _comparable(got: AccountFigures | None, expected: AccountFigures, webapi: bool) -> AccountFigures | None:
    """The engine's figures as compared with the reference (see PATH_LABELS)."""
    if got is None or not webapi:
        return got
    return dataclasses.replace(got, **{name: getattr(expected, name) for name in PATH_LABELS})


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
        self._kind: dict[int, str] = {}
        self.sample()
        self._baseline = dict(self._last)

    def sample(self) -> None:
        """Read the counters of every process now in the tree."""
        for process in psutil.Process(os.getpid()).children(recursive=True):
            try:
                times = process.cpu_times()
                if process.pid not in self._kind:
                    self._kind[process.pid] = _process_kind(process)
            except psutil.Error:
                continue
            self._last[process.pid] = times.user + times.system

    def used(self) -> float:
        """Seconds used since the meter started (processes born since count from zero)."""
        return sum(last - self._baseline.get(pid, 0.0) for pid, last in self._last.items())

    def by_kind(self) -> dict[str, float]:
        """`used`, split by kind of process (`_process_kind`), largest first: where the CPU went."""
        kinds: dict[str, float] = {}
        for pid, last in self._last.items():
            kind = self._kind.get(pid, "other")
            kinds[kind] = kinds.get(kind, 0.0) + last - self._baseline.get(pid, 0.0)
        return dict(sorted(kinds.items(), key=lambda item: -item[1]))


def _process_kind(process: psutil.Process) -> str:
    """What an engine process is: a Ray actor's class (`ray::AccountHost.apply_split` ->
    AccountHost), or the executable of Ray's own processes (raylet, gcs_server, ...)."""
    line = process.cmdline()
    title = line[0] if line else process.name()
    if title.startswith("ray::"):
        return title[5:].split(".")[0].split()[0] or "ray_worker"
    if "default_worker.py" in " ".join(line):
        return "ray_worker"
    return os.path.basename(title.split()[0]) if title else process.name()


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


def _survivors(by_host: list[list[tuple[int, float, float]]], windows: list[list[Any]]) -> list[float]:
    """Latencies (ms) of the figures of hosts that were not killed, published while a killed
    host was down (from its kill to its accounts restored): what a kill costs everyone else."""
    return [
        seconds * 1000.0
        for tenant, samples in enumerate(by_host)
        for host, published, seconds in samples
        if any(start <= published <= end and (tenant, host) != (victim_tenant, victim)
               for victim_tenant, victim, start, end in windows)
    ]


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


def tenant_sizes(accounts: int, tenants: int) -> list[int]:
    """`accounts` split evenly over `tenants` (the first ones take the remainder)."""
    if tenants < 1 or accounts < tenants:
        raise ValueError(f"need 1 <= tenants <= accounts, got tenants={tenants} accounts={accounts}")
    share, extra = divmod(accounts, tenants)
    return [share + (t < extra) for t in range(tenants)]


async def _connections(supervisors: list[Any]) -> list[dict[str, Any]]:
    """Each tenant's one connection, as its supervisor's status shows it."""
    statuses = await asyncio.gather(*(s.status.remote() for s in supervisors))
    return [status["connections"][0] for status in statuses]


async def _quiet_cpu(seconds: float) -> float:
    """Percent of one core the whole engine (this process's descendants) used over `seconds`."""
    cpu = CpuMeter()
    await asyncio.sleep(seconds)
    cpu.sample()
    return cpu.used() / seconds * 100.0


def _low_memory() -> bool:
    """The machine is close to running out: a start-up that would take the rest is given up."""
    return psutil.virtual_memory().available < LOW_MEMORY_MB * 2**20


async def _measure(
    accounts: int, seconds: float, rate: float, kill: int, seed: int, publish_hz: float, hosts: int,
    progress: Callable[[str], None], tenants: int = 1, idle_s: float = IDLE_S,
    ready_timeout: float = READY_TIMEOUT_S, tenant_hosts: int = 0, via_webapi: bool = False,
    process_per_tenant: bool = False,
) -> dict[str, Any]:
    sizes = tenant_sizes(accounts, tenants)
    specs = [bench_spec(size, rate, seed + t) for t, size in enumerate(sizes)]
    tenant_ids = [TENANT_ID + t for t in range(tenants)]
    servers: list[SimulatedWebApi] = []
    try:
        if via_webapi:
            progress(f"starting {tenants} simulated server(s) behind the fake MT5 Web API")
            # held still until the engine is ready: it synchronises where the reference starts
            servers = [SimulatedWebApi(trading=False, **spec.options) for spec in specs]
        return await _measure_specs(
            accounts, seconds, rate, kill, seed, publish_hz, hosts, progress, tenants, idle_s, ready_timeout,
            tenant_hosts, specs, tenant_ids, servers, process_per_tenant)
    finally:
        for server in servers:
            server.close()


async def _measure_specs(
    accounts: int, seconds: float, rate: float, kill: int, seed: int, publish_hz: float, hosts: int,
    progress: Callable[[str], None], tenants: int, idle_s: float, ready_timeout: float, tenant_hosts: int,
    specs: list[GatewaySpec], tenant_ids: list[int], servers: list[SimulatedWebApi], process_per_tenant: bool,
) -> dict[str, Any]:
    fed = [webapi_spec(server, rate) for server in servers] or specs
    # The bare cluster, before any tenant: what the per-tenant figures are measured above.
    base_pss, _ = _memory(os.getpid())
    base_idle = await _quiet_cpu(idle_s)
    started = time.monotonic()
    cpus = int(ray.cluster_resources().get("CPU", 1))
    tenant_hosts = tenant_placement(tenant_hosts, process_per_tenant, cpus)
    supervisors = await _place(tenant_ids, fed, publish_hz, hosts, tenant_hosts)
    progress(f"starting {accounts} account actors in {tenants} tenant(s)")
    starting = [asyncio.ensure_future(s.start.remote()) for s in supervisors]
    ready: set[int] = set()
    given_up: str | None = None
    while len(ready) < tenants:
        for t in range(tenants):
            if t not in ready and starting[t].done():
                conn = (await supervisors[t].status.remote())["connections"]
                if conn and conn[0]["batches"]:
                    ready.add(t)
        elapsed = time.monotonic() - started
        if elapsed > ready_timeout:
            given_up = f"{len(ready)} of {tenants} tenants ready after {ready_timeout:.0f} s"
        elif _low_memory():
            given_up = (f"machine memory low (under {LOW_MEMORY_MB} MB available) with {len(ready)} of "
                        f"{tenants} tenants ready after {elapsed:.0f} s")
        if given_up:
            break
        await asyncio.sleep(0.05)
    if given_up is not None:
        return await _gave_up(given_up, supervisors, starting, accounts, tenants, base_pss, started,
                              len(ready), progress)
    ready_s = time.monotonic() - started
    account_hosts = {pid for s in supervisors for pid in (await s.host_pids.remote()).values()}
    progress(f"engine ready in {ready_s:.1f} s on {len(account_hosts)} account hosts; "
             f"measuring for {seconds:.0f} s")
    for server in servers:
        server.start_trading()
    aggregators = [TenantRef(s.host, s.tenant_id, "aggregator") if isinstance(s, TenantRef)
                   else ray.get_actor(aggregator_name(tenant))
                   for s, tenant in zip(supervisors, tenant_ids, strict=True)]
    await asyncio.gather(*(a.take_latencies.remote() for a in aggregators))  # start-up is not measured
    await asyncio.gather(*(a.take_host_latencies.remote() for a in aggregators))
    cpu = CpuMeter()
    first = await _connections(supervisors)
    rng = random.Random(seed)
    kill_at = sorted(rng.uniform(0.2, 0.8) * seconds for _ in range(kill))
    begin = time.monotonic()
    next_report = 1.0
    killed = 0
    recovery: list[float] = []  # seconds from each kill to the host's accounts restored
    kills: list[float] = []  # time.monotonic() of each kill
    killed_at: float | None = None
    victim_tenant = 0
    killed_in = [0] * tenants  # kills per tenant (restarts are counted per tenant)
    # (tenant index, host killed, wall time of the kill, of its accounts restored): kill windows
    windows: list[list[Any]] = []
    while (elapsed := time.monotonic() - begin) < seconds:
        if killed_at is not None:
            conn = (await supervisors[victim_tenant].status.remote())["connections"][0]
            if sum(conn["restarts"].values()) >= killed_in[victim_tenant] and conn["recovering"] == 0:
                recovery.append(time.monotonic() - killed_at)
                windows[-1][3] = time.time()
                progress(f"  {elapsed:5.1f} s: restored in {recovery[-1]:.2f} s")
                killed_at = None
        elif kill_at and elapsed >= kill_at[0]:
            kill_at.pop(0)
            victim_tenant = rng.randrange(tenants)
            pids = await supervisors[victim_tenant].host_pids.remote()
            victim = rng.choice(sorted(pids))
            os.kill(pids[victim], signal.SIGKILL)
            killed, killed_at = killed + 1, time.monotonic()
            killed_in[victim_tenant] += 1
            kills.append(killed_at)
            windows.append([victim_tenant, victim, time.time(), math.inf])
            progress(f"  {elapsed:5.1f} s: killed host {victim} of tenant {tenant_ids[victim_tenant]} "
                     f"(pid {pids[victim]})")
        if elapsed >= next_report:
            cpu.sample()
            conns = await _connections(supervisors)
            progress(f"  {elapsed:5.1f} s: {min(c['batches'] for c in conns)} batches (fewest of a tenant), "
                     f"{sum(c['deals'] for c in conns)} deals, "
                     f"{sum(c['recovering'] for c in conns)} recovering")
            next_report += 1.0
        await asyncio.sleep(0.02)
    measured_s = time.monotonic() - begin
    cpu.sample()
    measured = await _connections(supervisors)  # the gateways' counters over the measured window
    steps = await _caught_up(supervisors, servers) if servers else []
    polls = [(await s.pause.remote())["bench"] for s in supervisors]
    polls = steps or polls
    cpu.sample()
    cpu_used = cpu.used()
    # The book idle (every tenant paused, no price batch): what the tenants cost doing nothing.
    idle_pct = await _quiet_cpu(idle_s)
    taken: list[list[float]] = await asyncio.gather(*(a.take_latencies.remote() for a in aggregators))
    latencies = [s * 1000.0 for part in taken for s in part]
    by_host = await asyncio.gather(*(a.take_host_latencies.remote() for a in aggregators))
    survivors = _survivors(by_host, windows)
    conns = await _connections(supervisors)
    engine_pss, uss = _memory(os.getpid())
    host_pids = {pid for s in supervisors for pid in (await s.host_pids.remote()).values()}
    host_mb = sum(uss.get(pid, 0.0) for pid in host_pids)
    phases = _recovery_phases([r for c in conns for r in c["recoveries"]], kills)
    progress(f"comparing {accounts} accounts with a reference fed the same polls")
    figures = [await s.account_figures.remote() for s in supervisors]
    await _end(supervisors)
    mismatches = 0
    math_s = 0.0
    for spec, count, got in zip(specs, polls, figures, strict=True):
        expected, spent = reference_run(spec, count)
        wrong = [login for login, fig in expected.items()
                 if _comparable(got.get(login), fig, bool(servers)) != fig]
        mismatches += len(wrong)
        if wrong:
            login = wrong[0]
            theirs, ours = expected[login], _comparable(got.get(login), expected[login], bool(servers))
            fields = {k: (v, getattr(ours, k, None)) for k, v in dataclasses.asdict(theirs).items()
                      if ours is None or getattr(ours, k) != getattr(theirs, k)}
            progress(f"mismatch: account {login} (expected, got): {str(fields)[:600]}")
        math_s += spent
    updates = sum(c["account_calls"] - f["account_calls"] for c, f in zip(conns, first, strict=True))
    gateway_s = sum(c["gateway_cpu_s"] - f["gateway_cpu_s"] for c, f in zip(conns, first, strict=True))
    webapi: dict[str, Any] = {}
    if servers:  # the Web API gateway's thread, its requests and bytes (the catch-up included)
        gw = [(c["gateway"], f["gateway"]) for c, f in zip(measured, first, strict=True)]
        gateway_s += sum(g["cpu_s"] - f0["cpu_s"] for g, f0 in gw)
        webapi = {
            "via": "webapi",
            "polls_per_s": round(sum(g["polls"] - f0["polls"] for g, f0 in gw) / measured_s, 1),
            "bytes_per_s": round(sum(g["bytes_received"] - f0["bytes_received"] for g, f0 in gw)
                                 / measured_s),
            "reconnects": sum(g["reconnects"] for g, _ in gw),
            "repeated_deals": sum(g["repeated_deals"] for g, _ in gw),
        }
    # The same-run baseline: the engine's CPU per measured batch against the bare risk math's per
    # batch (every account stepped in this process, no hosting), both on this machine and load.
    # Both are per batch of every tenant's book together: the CPU over the batches all tenants
    # processed, times the tenants, so a tenant left behind by a loaded machine does not count
    # the others' work as its own (the fewest any tenant processed inflated the ratio under load).
    tenant_batches = sum(c["batches"] - f["batches"] for c, f in zip(conns, first, strict=True))
    engine_ms = (cpu_used - gateway_s) * 1000.0 * tenants / max(tenant_batches, 1)
    math_ms = math_s * 1000.0 * tenants / max(sum(count - 1 for count in polls), 1)
    return {
        "accounts": accounts,
        "tenants": tenants,
        "hosts": len(host_pids),
        "tenant_hosts": tenant_hosts,
        "placement": "process_per_tenant" if not tenant_hosts else "tenant_hosts",
        "rate_hz": rate,
        "seconds": seconds,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "batches": min(c["batches"] for c in conns),
        "deals": sum(c["deals"] for c in conns),
        "account_updates": updates,
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p95_ms": round(_percentile(latencies, 0.95), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "p99_ms_survivors": round(_percentile(survivors, 0.99), 1) if windows else None,
        "cpu_ms_per_1k_updates": round((cpu_used - gateway_s) * 1000.0 / max(updates, 1) * 1000.0, 1),
        "gateway_cpu_pct": round(gateway_s / measured_s * 100.0, 1),
        "engine_cpu_ms_per_batch": round(engine_ms, 1),
        "reference_cpu_ms_per_batch": round(math_ms, 1),
        "cpu_vs_reference": round(engine_ms / math_ms, 2) if math_ms > 0 else None,
        # per kind of process (the supervisor's includes the simulated gateway, counted above)
        "cpu_ms_per_batch_by_process": {kind: round(spent * 1000.0 * tenants / max(tenant_batches, 1), 1)
                                        for kind, spent in cpu.by_kind().items()},
        "mb_per_account": round(host_mb / accounts, 3),
        "engine_rss_mb": round(engine_pss, 1),
        "mb_per_tenant": round((engine_pss - base_pss) / tenants, 1),
        "idle_cpu_pct_per_tenant": round(max(0.0, idle_pct - base_idle) / tenants, 2),
        "idle_cpu_pct": round(idle_pct, 1),
        "ready_s": round(ready_s, 1),
        "restarts": sum(sum(c["restarts"].values()) for c in conns),
        # batches a host answered after the others had gone on (a dead host's, or a slow one's)
        "late_answers": sum(c["late_answers"] - f["late_answers"] for c, f in zip(conns, first, strict=True)),
        "recovery_s_max": round(max(recovery), 2) if recovery else None,
        "recovery_phases": phases,
        "rejected": sum(sum(c["rejected"].values()) for c in conns),
        "mismatches": mismatches,
        **webapi,
    }


async def _gave_up(
    why: str, supervisors: list[Any], starting: list[Any], accounts: int, tenants: int, base_pss: float,
    started: float, ready: int, progress: Callable[[str], None],
) -> dict[str, Any]:
    """The engine did not get ready: say how far it got (memory, load) and stop what started."""
    progress(f"gave up: {why}")
    engine_pss, _ = _memory(os.getpid())
    result = {
        "accounts": accounts,
        "tenants": tenants,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "ready_s": None,
        "tenants_ready": ready,
        "gave_up": why,
        "after_s": round(time.monotonic() - started, 1),
        "engine_rss_mb": round(engine_pss, 1),
        "mb_per_tenant": round((engine_pss - base_pss) / tenants, 1),
        "processes": len(psutil.Process(os.getpid()).children(recursive=True)),
    }
    for task in starting:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_end(supervisors), 60.0)
    return result


def tenant_placement(tenant_hosts: int, process_per_tenant: bool, cpus: int) -> int:
    """How many tenant host processes carry the tenants, as `veles engine` decides it
    (`TENANT_HOSTS`, `PROCESS_PER_TENANT`): `tenant_hosts`, or one per CPU when 0; 0 (a
    supervisor and an aggregator process per tenant) with `process_per_tenant`. So the benchmark
    measures the placement the product runs unless told otherwise."""
    if process_per_tenant:
        return 0
    return tenant_hosts or max(1, cpus)


async def _place(tenant_ids: list[int], specs: list[GatewaySpec], publish_hz: float, hosts: int,
                 tenant_hosts: int) -> list[Any]:
    """Each tenant's supervisor, as production runs it: a Ray actor process of its own (with its
    aggregator and account hosts), or with `tenant_hosts` a logical actor in one of that many
    tenant host processes, the accounts in their shared pool of account hosts."""
    if not tenant_hosts:
        return [TenantSupervisor.remote(tenant, [spec], publish_hz, None, hosts=hosts)  # type: ignore[attr-defined]
                for tenant, spec in zip(tenant_ids, specs, strict=True)]
    refs: list[Any] = []
    for tenant, spec in zip(tenant_ids, specs, strict=True):
        host = tenant_host(tenant, tenant_hosts)
        await host.add.remote(tenant, [spec], publish_hz, None, hosts=hosts)
        refs.append(TenantRef(host, tenant))
    return refs


async def _end(supervisors: list[Any]) -> None:
    """Stop every tenant's engine and its processes."""
    for s in supervisors:
        if isinstance(s, TenantRef):
            await s.host.remove.remote(s.tenant_id)
        else:
            await s.stop.remote()
            ray.kill(s)
    for name in ray.util.list_named_actors():  # tenant hosts and the shared pool's account hosts
        if name.startswith((tenant_host_name(0)[:-1], host_name(SHARED_POOL, 0)[:-1])):
            ray.kill(ray.get_actor(name), no_restart=True)


def run(
    accounts: int, seconds: float, rate: float = 4.0, kill: int = 0, seed: int = 7,
    publish_hz: float = 4.0, hosts: int = 0, progress: Callable[[str], None] = print, tenants: int = 1,
    idle_s: float = IDLE_S, ready_timeout: float = READY_TIMEOUT_S, tenant_hosts: int = 0,
    via_webapi: bool = False, process_per_tenant: bool = False,
) -> dict[str, Any]:
    """Start a local Ray cluster, measure, shut it down; one result dict. `tenants`: the accounts
    split evenly over that many tenants, each with its own simulated server and engine, placed
    as `veles engine` places them (`tenant_placement`); `via_webapi`: each server read through
    the fake MT5 Web API."""
    tenant_sizes(accounts, tenants)  # bad sizes are refused before Ray starts
    ray.init(address="local", num_cpus=2, namespace="veles-bench", include_dashboard=False,
             log_to_driver=False)
    try:
        return asyncio.run(_measure(accounts, seconds, rate, kill, seed, publish_hz, hosts, progress, tenants,
                                   idle_s, ready_timeout, tenant_hosts, via_webapi, process_per_tenant))
    finally:
        ray.shutdown()
