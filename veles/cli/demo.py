"""`veles demo`: a simulated broker, the engine on local Ray, and the portal on localhost.

This process is the Ray driver: it starts a local cluster, runs the Reflex portal as a child
process that joins the same cluster (its build overlaps the engine's start), and starts the
engine. Ctrl-C (or SIGTERM) stops the portal's whole process group, then the engine, then Ray,
so nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import ray
import typer

from veles.cli.reports import report_service
from veles.config import Environment, Settings, get_settings
from veles.mt5.connect import GatewaySpec
from veles.mt5.webapi.simulated import SimulatedWebApi
from veles.services.demo import development_credentials_key, seed_demo
from veles.services.engine import start_engine, status_line, stop_engine, webapi_gateway
from veles.services.preflight import enforce
from veles.services.ray_runtime import connect, gcs_address

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _step(message: str) -> None:
    typer.secho(f"==> {message}", fg=typer.colors.CYAN)


def _wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    """Wait until `url` answers, failing early if the portal process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the portal exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback URL we built)
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise SystemExit(f"the portal did not answer at {url} within {timeout:.0f} s")


def _portal_env(ray_address: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_ADDRESS"] = ray_address
    # Reflex's production mode serves the built front end and the backend on one port.
    env["FRONTEND_PORT"] = env["BACKEND_PORT"] = str(port)
    env["REFLEX_USE_SYSTEM_BUN"] = "1"
    env.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    tools = PROJECT_ROOT / ".tools" / "node_modules" / ".bin"
    env["PATH"] = os.pathsep.join([str(tools), str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def demo_settings() -> Settings:
    """The process settings for the demo: VELES_ENV=development unless set otherwise, and in
    development a kept CREDENTIALS_KEYS key when none is set. Both go into the environment, so the
    portal (a child process) and the local Ray cluster's workers see the same."""
    os.environ.setdefault("VELES_ENV", Environment.DEVELOPMENT.value)
    get_settings.cache_clear()
    settings = get_settings()
    if settings.credentials_keys is None and settings.veles_env == Environment.DEVELOPMENT:
        os.environ["CREDENTIALS_KEYS"] = development_credentials_key()
        get_settings.cache_clear()
        settings = get_settings()
    return settings


# Ray's defaults serve a long-lived cluster someone watches through Ray's dashboard. The demo's
# local cluster has that dashboard off, logs kept to files (log_to_driver=False), Veles's own
# metrics, and only actors (no tasks needing warm workers), so on an idle demo these defaults were
# CPU spent for nobody: the log monitor re-listing the log folder 10 times a second, the node
# agent's stats every 5 s, every process exporting Ray metrics, and workers kept idle in reserve.
# Set before the cluster starts (its processes inherit them); an operator's own values win.
_QUIET_RAY = {
    "RAY_LOG_MONITOR_MANY_FILES_THRESHOLD": "0",  # the log folder is listed every...
    "LOG_NAME_UPDATE_INTERVAL_S": "5",  # ...5 s, not on every 0.1 s poll
    "REPORTER_UPDATE_INTERVAL_MS": "60000",  # node stats for Ray's (disabled) dashboard
    "RAY_enable_metrics_collection": "0",  # Ray's own Prometheus metrics
    "RAY_num_workers_soft_limit": "0",  # idle workers are ended, none kept in reserve
}


def quiet_ray_environment() -> None:
    """Ray settings for a small local cluster that should cost nothing while idle (see _QUIET_RAY)."""
    for name, value in _QUIET_RAY.items():
        os.environ.setdefault(name, value)


def _stop_portal(proc: subprocess.Popen[bytes]) -> None:
    """Stop the portal's process group (web server, bun): SIGINT as Ctrl-C would, then harder."""
    for sig, grace in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def run_demo(
    accounts: int = typer.Option(0, min=0, help="Simulated accounts (default: DEMO_ACCOUNTS, 500)."),
    timeout: float = typer.Option(600, help="Seconds to wait for the portal to come up."),
    via_webapi: bool = typer.Option(
        False, "--via-webapi",
        help="Serve the simulated broker through the fake MT5 Web API on 127.0.0.1 and read it with "
        "the Web API connector, as a real server would be read.",
    ),
) -> None:
    """Run the whole of Veles locally with a simulated broker; Ctrl-C stops everything."""
    settings = demo_settings()
    enforce(settings, "veles demo")
    accounts = accounts or settings.demo_accounts
    port = settings.frontend_port

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background inherits SIGINT as "ignored".
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    _step("database: schema and demo tenant")
    seed_demo(settings)
    _step("ray: starting a local cluster")
    if not settings.ray_address:
        quiet_ray_environment()
    connect(settings)
    portal: subprocess.Popen[bytes] | None = None
    reports = ExitStack()
    servers: list[SimulatedWebApi] = []

    def through_webapi(tenant_id: int) -> GatewaySpec:
        # the same broker as without the flag (seed, logins, pace), behind the fake Web API
        password = settings.demo_webapi_password
        server = SimulatedWebApi(accounts=accounts, seed=settings.demo_seed + tenant_id,
                                 interval=settings.gateway_interval, login_base=100_000,
                                 password=password.get_secret_value() if password else None)
        servers.append(server)
        _step(f"mt5 web api: tenant {tenant_id}'s simulated broker served at {server.url}")
        return webapi_gateway(settings, tenant_id, server.url, server.login, server.password)

    try:
        # Started before the engine: its build (about a minute, on its own cores) overlaps the
        # engine's start instead of following it. It only joins Ray when a page asks the engine.
        _step("portal: building and starting the Reflex app in the background (about a minute)")
        portal = subprocess.Popen(  # noqa: S603 (fixed argv)
            [
                str(Path(sys.executable).parent / "reflex"),
                "run",
                "--env",
                "prod",
                "--loglevel",
                "warning",
                "--frontend-port",
                str(port),
                "--backend-port",
                str(port),
            ],
            cwd=PROJECT_ROOT,
            env=_portal_env(gcs_address(), port),
            start_new_session=True,
        )
        how = ("read through the MT5 Web API connector" if via_webapi
               else "(account actors in a few account hosts)")
        _step(f"engine: simulated broker with {accounts} accounts {how}")
        started = start_engine(settings, simulated_accounts=accounts,
                               gateway_for=through_webapi if via_webapi else None)
        for status in asyncio.run(started):
            typer.echo(f"    {status_line(status)}")
        _step("reports: a report worker and the scheduler")
        reports.enter_context(report_service(settings))
        _step("portal: waiting for it to answer")
        _wait_http(f"http://localhost:{port}/ping", timeout, portal)
        _wait_http(f"http://localhost:{port}/login", timeout, portal)
        typer.secho(
            f"\nVeles is running: http://localhost:{port}\n"
            f"  sign in as {settings.demo_email} / {settings.demo_password.get_secret_value()}\n"
            "  Ctrl-C stops everything.\n",
            fg=typer.colors.GREEN,
            bold=True,
        )
        portal.wait()
    except KeyboardInterrupt:
        typer.echo("\nstopping")
    finally:
        if portal is not None:
            _step("portal: stopping")
            _stop_portal(portal)
        try:
            _step("reports: stopping")
            reports.close()
            _step("engine: stopping")
            asyncio.run(stop_engine(settings))
        finally:
            ray.shutdown()
            for server in servers:
                server.close()
        _step("stopped")
