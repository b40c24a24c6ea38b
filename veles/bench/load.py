"""`veles bench load` (what `make loadtest` runs): the standard Locust mix against a demo on
PostgreSQL and Redis, headless and distributed, with verdicts.

It (re)creates a PostgreSQL database of its own (its name also makes the Redis prefix, so nothing
else's keys are touched), starts `veles demo --via-webapi` on it with Redis (Reflex's state
manager, the bus): the simulated broker behind the fake MT5 Web API, with a manager password this
run chooses, so the feed storm scenario can book deposits on it (`trade/balance`) that reach the
engine the way a real server's deals do. It adds a tenant admin with a random password for the
admin scenario, and runs
`locust -f loadtests/locustfile.py --headless --processes -1` (one master, one worker process per
core) for the given users and time. Locust prints its summary and the scenarios' verdicts
(loadtests/thresholds.py); the CSV files and the HTML report are kept in a folder of the run.
Everything started is stopped at the end (Locust's processes, the demo and its Ray cluster); the
exit code is Locust's, which the thresholds decide.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlmodel import col, select

from models.db import session_scope
from models.tenancy import Role, Tenant, User
from veles.bench.demo_process import PROJECT_ROOT, STARTUP_SECONDS, fresh_database, running_demo
from veles.mt5.webapi.simulated import MANAGER_LOGIN
from veles.services.auth import hash_password

LOCUSTFILE = PROJECT_ROOT / "loadtests" / "locustfile.py"
ADMIN_EMAIL = "loadtest-admin@veles.local"
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/veles_loadtest"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
LOCUST_GRACE_S = 120  # beyond the run time: spawning, stopping users, writing the reports
_WEBAPI = re.compile(r"mt5 web api: tenant \d+'s simulated broker served at (\S+)")


def check_database_url(database_url: str) -> None:
    """Refuse, before anything starts, a database the run cannot make afresh (not PostgreSQL, or no
    database name)."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql") or not url.database:
        raise ValueError(f"the load test makes a PostgreSQL database of its own: give a "
                         f"postgresql+psycopg://.../NAME URL, not {url.drivername}://...")


def add_admin(database_url: str) -> tuple[str, str]:
    """A tenant admin of the demo's broker (its first tenant) with a random password."""
    password = secrets.token_urlsafe(18)
    with session_scope(database_url) as session:
        tenant_id = session.exec(select(Tenant.id).order_by(col(Tenant.id))).first()
        if tenant_id is None:
            raise RuntimeError("the demo made no tenant")
        session.add(User(tenant_id=tenant_id, email=ADMIN_EMAIL, password_hash=hash_password(password),
                         role=Role.TENANT_ADMIN))
    return ADMIN_EMAIL, password


def locust_command(url: str, users: int, spawn_rate: float, seconds: int, processes: int,
                   out: Path, thresholds: Path | None, classes: list[str]) -> list[str]:
    """The headless, distributed Locust run (processes -1: one worker per core)."""
    command = [str(Path(sys.executable).parent / "locust"), "-f", str(LOCUSTFILE), "--headless",
               "--host", url, "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s",
               "--processes", str(processes), "--stop-timeout", "5", "--only-summary",
               "--csv", str(out / "run"), "--html", str(out / "report.html")]
    if thresholds is not None:
        command += ["--thresholds", str(thresholds)]
    return command + classes


def run(users: int, spawn_rate: float, seconds: int, accounts: int, port: int, processes: int,
        database_url: str, redis_url: str, reports: Path, thresholds: Path | None, classes: list[str],
        progress: Callable[[str], None], portal_workers: int | None = None) -> int:
    """One load test; Locust's exit code (0: every threshold held)."""
    out = reports / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    progress(f"database: {make_url(database_url).database} (new), Redis {redis_url}")
    fresh_database(database_url)
    manager_password = secrets.token_urlsafe(18)
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "DEMO_ACCOUNTS": str(accounts),
           # one sign-in per Locust process and user kind; the limit itself is tested elsewhere
           "LOGIN_LIMIT": "1000", "DEMO_WEBAPI_PASSWORD": manager_password}
    if portal_workers is not None:
        env["GRANIAN_WORKERS"] = str(portal_workers)
    progress(f"demo: {accounts} accounts on port {port} (a few minutes on a busy machine)")
    printed: list[str] = []
    with running_demo(accounts, port, STARTUP_SECONDS, progress, env, args=("--via-webapi",),
                      printed=printed.append) as (_proc, url, _email, _password):
        email, password = add_admin(database_url)
        webapi = _WEBAPI.search("".join(printed))
        if webapi is None:
            raise RuntimeError("the demo did not say where its simulated MT5 Web API is served")
        command = locust_command(url, users, spawn_rate, seconds, processes, out, thresholds, classes)
        progress(f"locust: {users} users for {seconds} s, load average {os.getloadavg()[0]:.1f}")
        locust_env = dict(os.environ, VELES_LOADTEST_ADMIN_EMAIL=email,
                          VELES_LOADTEST_ADMIN_PASSWORD=password, VELES_LOADTEST_MT5_URL=webapi.group(1),
                          VELES_LOADTEST_MT5_LOGIN=str(MANAGER_LOGIN),
                          VELES_LOADTEST_MT5_PASSWORD=manager_password)
        with subprocess.Popen(command, env=locust_env, start_new_session=True) as locust:  # noqa: S603
            try:
                code = locust.wait(timeout=seconds + LOCUST_GRACE_S)
            finally:
                if locust.poll() is None:
                    os.killpg(locust.pid, 9)
                    locust.wait()
                    code = 2
        progress(f"load average at the end {os.getloadavg()[0]:.1f}; reports in {out}")
    return code
