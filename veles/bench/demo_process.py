"""A `veles demo` in a child process for the benchmarks and the load test: its own port, its own
database (SQLite by default, or PostgreSQL and Redis when given), its own copy of the front-end
build, and Ctrl-C at the end so nothing is left running."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The demo (Ray, one actor per account, the front-end build) came up in 10+ minutes on 2 cores
# shared with other test runs (load average 60-90); alone it takes about 70 s.
STARTUP_SECONDS = 1800
_RUNNING = re.compile(r"Veles is running: (\S+)\s+sign in as (\S+) / (\S+)")
_RAY_TIMED_OUT = "The current node timed out during startup"
_RESTART = "[bench] Ray timed out starting its node: starting the demo again"


def private_web_dir(tmp: Path) -> Path | None:
    """A copy of the project's Reflex build directory (.web) for the benchmark's demo. Each build
    writes its port into the bundle, so a demo building in the shared .web beside another (a test
    run, a second benchmark) could serve tabs a bundle whose socket goes to the other's portal.
    node_modules, which a build only reads, is hard-linked. None before the first build (the demo
    then makes the shared one). The browser tests' conftest does the same for their demos."""
    source = PROJECT_ROOT / ".web"
    if not (source / "node_modules").is_dir():
        return None
    target = tmp / "web"
    not_copied = {"node_modules", "build", ".react-router"}  # at the top only: linked, or rebuilt

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [name for name in names if Path(folder) == source and name in not_copied]

    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    subprocess.run(["cp", "-al", str(source / "node_modules"), str(target / "node_modules")],  # noqa: S603,S607
                   check=True)
    return target


@contextmanager
def running_demo(accounts: int, port: int, timeout: float, progress: Callable[[str], None],
                 env_overrides: Mapping[str, str] | None = None, args: Sequence[str] = (),
                 printed: Callable[[str], None] | None = None,
                 ) -> Iterator[tuple[subprocess.Popen[bytes], str, str, str]]:
    """A `veles demo` of `accounts` on `port` (with `args`), by default embedded with its own
    SQLite file (`env_overrides` may give it DATABASE_URL and REDIS_URL, or any other setting);
    stopped with Ctrl-C after. Yields the process, the URL and the sign-in it printed; `printed`
    is handed everything it printed until then."""
    with tempfile.TemporaryDirectory(prefix="veles-bench-demo-") as tmp:
        log_path = Path(tmp) / "demo.log"
        env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp}/bench.db", FRONTEND_PORT=str(port),
                   DEMO_ACCOUNTS=str(accounts))
        env.pop("RAY_ADDRESS", None)
        env.update(env_overrides or {})
        if (web := private_web_dir(Path(tmp))) is not None:
            env["REFLEX_WEB_WORKDIR"] = str(web)
        command = [str(Path(sys.executable).parent / "veles"), "demo", *args]
        with log_path.open("wb") as log:
            proc, found = _start(command, env, log, log_path, timeout)
            try:
                progress(f"demo up at {found.group(1)}")
                if printed is not None:
                    printed(log_path.read_text(errors="replace"))
                yield proc, found.group(1), found.group(2), found.group(3)
            finally:
                _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C (the demo stops its portal, engine and Ray), then SIGKILL to its group if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class RayStartTimedOut(RuntimeError):
    """Ray's own fixed wait for its new node ran out (on a machine busy with other work), before
    any of Veles ran: starting again is the cure, as the browser tests' demo does."""


def _start(command: list[str], env: dict[str, str], log: IO[bytes], log_path: Path, timeout: float
           ) -> tuple[subprocess.Popen[bytes], re.Match[str]]:
    """The demo started and answering, and its sign-in line; started a second time when Ray timed
    out starting its node (what that attempt left of Ray is killed first)."""
    for attempt in Retrying(stop=stop_after_attempt(2), retry=retry_if_exception_type(RayStartTimedOut),
                            reraise=True):
        with attempt:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,  # noqa: S603
                                    start_new_session=True)
            deadline = time.monotonic() + timeout
            while (found := _RUNNING.search(log_path.read_text(errors="replace"))) is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = log_path.read_text(errors="replace")
                    if proc.poll() is not None and _RAY_TIMED_OUT in output.rsplit(_RESTART, 1)[-1]:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(proc.pid, signal.SIGKILL)
                        log.write(f"\n{_RESTART}\n".encode())
                        log.flush()
                        raise RayStartTimedOut(output[-3000:])
                    _stop(proc)
                    raise RuntimeError(f"veles demo did not come up:\n{output[-3000:]}")
                time.sleep(1)
            return proc, found
    raise AssertionError("unreachable: the last attempt returns or raises")


def fresh_database(database_url: str) -> None:
    """Drop and create the run's database, so each run starts from the demo's seed alone."""
    url = make_url(database_url)
    if not url.drivername.startswith("postgresql") or not url.database:
        raise ValueError(f"the load test runs on PostgreSQL, not {url.drivername}: give a postgresql:// URL")
    server = url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    name = sql.Identifier(url.database)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
