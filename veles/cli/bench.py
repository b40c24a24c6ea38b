"""`veles bench`: performance measurements of the risk core, the live engine and the portal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from veles.bench import demo_idle as demo_bench
from veles.bench import engine as engine_bench
from veles.bench import flow as flow_bench
from veles.bench import load as load_bench
from veles.bench import ratelimit as ratelimit_bench
from veles.bench import reports as reports_bench
from veles.bench import risk as risk_bench
from veles.bench import stress as stress_bench
from veles.bench import ui as ui_bench
from veles.config import get_settings
from veles.risk.stress import ScenarioError

app = typer.Typer(help="Performance benchmarks.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Performance benchmarks."""


@app.command("risk")
def risk(
    sizes: Annotated[
        list[int] | None, typer.Option("--size", help="Book size in open positions (repeatable).")
    ] = None,
    seconds: Annotated[float, typer.Option(help="CPU seconds spent on each path per size.")] = 4.0,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic book and price stream.")] = 7,
) -> None:
    """Price updates per second: incremental AccountState + Book versus naive full recomputation."""
    results = risk_bench.run(
        sizes or risk_bench.DEFAULT_SIZES,
        seconds=seconds,
        seed=seed,
        progress=lambda line: typer.echo(line, err=True),
    )
    typer.echo(risk_bench.report(results))


@app.command("stress")
def stress(
    accounts: Annotated[int, typer.Option(help="Accounts of the simulated broker.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated broker.")] = 7,
    scenarios: Annotated[list[str] | None, typer.Option(
        "--scenario", help="Shocks (repeatable); default: " + stress_bench.DEFAULT_BENCH_SCENARIO,
    )] = None,
) -> None:
    """A whole-book stress with stop-out cascade, timed against one plain revaluation of the book."""
    if accounts < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--accounts")
    try:
        result = stress_bench.bench(
            accounts, seed, scenarios or [stress_bench.DEFAULT_BENCH_SCENARIO],
            progress=lambda line: typer.echo(line, err=True),
        )
    except ScenarioError as error:
        typer.echo(f"error: --scenario {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result))


@app.command("engine")
def engine(
    accounts: Annotated[int, typer.Option(help="Simulated MT5 accounts, one account actor each.")] = 10,
    seconds: Annotated[float, typer.Option(help="How long to measure, after start-up.")] = 20.0,
    rate: Annotated[float, typer.Option(help="Price batches per second from the gateway.")] = 4.0,
    kill: Annotated[int, typer.Option(help="Host processes to kill (SIGKILL) at random moments.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated broker.")] = 7,
    hosts: Annotated[int, typer.Option(help="Account host processes (0: one per CPU).", min=0)] = 0,
    tenants: Annotated[int, typer.Option(
        help="Tenants the accounts are split over evenly, each with its own simulated server and engine.",
    )] = 1,
    tenant_hosts: Annotated[int, typer.Option(
        help="Tenant host processes carrying every tenant's supervisor and aggregator as logical actors, "
             "the accounts in one shared pool of account hosts (0: one per CPU, as `veles engine`).", min=0,
    )] = 0,
    process_per_tenant: Annotated[bool, typer.Option(
        "--process-per-tenant",
        help="A supervisor, an aggregator and account hosts of its own per tenant (PROCESS_PER_TENANT).",
    )] = False,
    idle_seconds: Annotated[float, typer.Option(
        help="Quiet window over which idle CPU is measured (bare cluster, then the book idle).", min=1.0,
    )] = engine_bench.IDLE_S,
    via_webapi: Annotated[bool, typer.Option(
        "--via-webapi", help="Read each simulated server through the fake MT5 Web API (the real connector).",
    )] = False,
) -> None:
    """The engine on local Ray, end to end: one JSON line of latency, CPU, memory and correctness."""
    if accounts < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--accounts")
    if not 1 <= tenants <= accounts:
        raise typer.BadParameter("must be between 1 and --accounts", param_hint="--tenants")
    if process_per_tenant and tenant_hosts:
        raise typer.BadParameter("tenant hosts are not used with --process-per-tenant",
                                 param_hint="--tenant-hosts")
    result = engine_bench.run(
        accounts, seconds, rate=rate, kill=kill, seed=seed, hosts=hosts, tenants=tenants,
        idle_s=idle_seconds, tenant_hosts=tenant_hosts, progress=lambda line: typer.echo(line, err=True),
        via_webapi=via_webapi, process_per_tenant=process_per_tenant,
    )
    typer.echo(json.dumps(result))


@app.command("ui")
def ui(
    sessions: Annotated[
        list[int] | None, typer.Option("--sessions", help="Simultaneous dashboard tabs (repeatable).")
    ] = None,
    seconds: Annotated[float, typer.Option(help="How long to measure each number of sessions.")] = 20.0,
    accounts: Annotated[int, typer.Option(help="Simulated MT5 accounts in the demo broker.")] = 10,
    port: Annotated[int, typer.Option(help="Port of the demo portal the benchmark starts.")] = 3150,
    clients: Annotated[str, typer.Option(
        help="chromium: headless tabs, timed on screen; socket: socket.io clients, timed on receipt.",
    )] = "chromium",
    workers: Annotated[list[int] | None, typer.Option(
        "--workers", min=1,
        help="Portal backend workers behind Redis (repeatable: one demo each, on PostgreSQL + Redis).",
    )] = None,
    database_url: Annotated[str, typer.Option(
        help="With --workers: the PostgreSQL database, dropped and made anew per demo.",
    )] = "postgresql+psycopg://postgres@127.0.0.1:5432/veles_bench_ui",
    redis_url: Annotated[str, typer.Option(help="With --workers: the Redis.")] = load_bench.DEFAULT_REDIS,
) -> None:
    """The portal under N dashboard sessions: update-to-client latency and the portal's CPU."""
    if clients not in ui_bench.CLIENTS:
        raise typer.BadParameter(f"one of {', '.join(ui_bench.CLIENTS)}", param_hint="--clients")
    results = ui_bench.run(
        sessions or list(ui_bench.DEFAULT_SESSIONS), seconds, accounts, port,
        progress=lambda line: typer.echo(line, err=True), clients=clients, workers=workers,
        database_url=database_url, redis_url=redis_url,
    )
    for result in results:
        typer.echo(json.dumps(result))
    typer.echo(ui_bench.report(results))


@app.command("load")
def load(
    users: Annotated[int, typer.Option(min=1, help="Simulated users of the standard mix.")] = 60,
    spawn_rate: Annotated[float, typer.Option(min=0.1, help="Users started per second.")] = 5.0,
    seconds: Annotated[int, typer.Option(min=5, help="How long the mix runs once started.")] = 120,
    accounts: Annotated[int, typer.Option(min=1, help="Simulated MT5 accounts in the demo broker.")] = 500,
    port: Annotated[int, typer.Option(help="Port of the demo portal the run starts.")] = 3160,
    processes: Annotated[int, typer.Option(
        help="Locust worker processes beside the master (-1: one per core).")] = -1,
    portal_workers: Annotated[int | None, typer.Option(
        help="The portal's backend worker processes (default: Reflex's, from the cores).")] = None,
    database_url: Annotated[str, typer.Option(
        help="PostgreSQL database of the run, dropped and made anew.")] = load_bench.DEFAULT_DATABASE,
    redis_url: Annotated[str, typer.Option(help="Redis of the run.")] = load_bench.DEFAULT_REDIS,
    reports: Annotated[Path, typer.Option(help="Folder of the runs' CSV and HTML reports.")] = Path(
        ".veles/loadtests"),
    thresholds: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False,
        help="Limits per scenario (default: loadtests/thresholds.toml).")] = None,
    user_classes: Annotated[list[str] | None, typer.Argument(
        help="Run only these user classes (default: the whole mix).")] = None,
) -> None:
    """The standard Locust mix against a demo on PostgreSQL + Redis: verdicts decide the exit code."""
    try:
        load_bench.check_database_url(database_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from None
    code = load_bench.run(users, spawn_rate, seconds, accounts, port, processes, database_url, redis_url,
                          reports, thresholds, user_classes or [],
                          progress=lambda line: typer.echo(line, err=True), portal_workers=portal_workers)
    raise typer.Exit(code)


@app.command("reports")
def reports(
    accounts: Annotated[int, typer.Option(help="Accounts in the simulated book.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the simulated broker.")] = 7,
    baseline: Annotated[bool, typer.Option(help="Also time the naive PDF listing every account.")] = False,
) -> None:
    """Render a daily risk summary of a simulated book to PDF and Excel; one JSON line of seconds."""
    result = reports_bench.run(
        accounts, seed=seed, baseline=baseline, progress=lambda line: typer.echo(line, err=True)
    )
    typer.echo(json.dumps(result))


@app.command("ratelimit")
def ratelimit(
    checks: Annotated[int, typer.Option(help="Request checks timed each way.")] = 5_000,
    redis_url: Annotated[str | None, typer.Option(help="Redis to count in (default: REDIS_URL).")] = None,
) -> None:
    """The API rate-limit check: three Redis round trips (before) versus one; checks/s and p99."""
    url = redis_url or get_settings().redis_url
    if not url:
        raise typer.BadParameter("needs a Redis: set REDIS_URL or pass --redis-url", param_hint="--redis-url")
    typer.echo(json.dumps(ratelimit_bench.run(url, checks)))


@app.command("demo")
def demo(
    accounts: Annotated[int, typer.Option(help="Simulated MT5 accounts in the demo broker.", min=1)] = 50,
    seconds: Annotated[float, typer.Option(help="How long to measure the idle demo.", min=1)] = 60.0,
    settle: Annotated[float, typer.Option(help="Seconds after the dashboard is live before measuring.",
                                          min=0)] = 20.0,
    port: Annotated[int, typer.Option(help="Port of the demo portal the benchmark starts.")] = 3160,
) -> None:
    """The demo idle with one dashboard open: CPU of engine, simulator, portal and browser, start-up."""
    result = demo_bench.run(accounts, seconds, settle, port, progress=lambda line: typer.echo(line, err=True))
    typer.echo(json.dumps(result))


@app.command("flow")
def flow(
    seed: Annotated[int, typer.Option(help="Seed of the simulated broker.")] = 201,
    accounts: Annotated[int, typer.Option(help="Simulated accounts.")] = 1000,
    minutes: Annotated[float, typer.Option(help="Simulated minutes (run faster than real time).")] = 60.0,
    mix: Annotated[Path | None, typer.Option(
        help='JSON file of behaviour weights, e.g. {"swing": 3, "latency_arb": 1}.',
    )] = None,
) -> None:
    """Toxic-flow detectors against the simulator's ground truth: per label precision, recall,
    F1, time to detect, false positives on ordinary accounts, and the detectors' CPU against the
    AccountState updates. One JSON line, then the table."""
    if accounts < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--accounts")
    if minutes <= 0:
        raise typer.BadParameter("must be positive", param_hint="--minutes")
    try:
        weights = flow_bench.load_mix(mix) if mix is not None else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--mix") from None
    result = flow_bench.run(
        seed, accounts, minutes, mix=weights, progress=lambda line: typer.echo(line, err=True)
    )
    typer.echo(json.dumps(result))
    typer.echo(flow_bench.report(result))
