"""`veles bench ui`: the portal under 1, 10 and 50 simultaneous dashboard sessions.

Starts a real `veles demo` (simulated broker, engine on local Ray, portal in production mode) on
its own port and SQLite file, signs in once, then opens N dashboard sessions, either headless
Chromium tabs on /dashboard (`--clients chromium`, the default) or socket.io clients speaking the
frontend's protocol (`--clients socket`, dashboard_sockets.py). A tab watches the hidden book stamp
the dashboard renders with every update (when the newest price batch left the gateway, and when
the aggregator published it) and records, at the moment the new numbers are in the page, how long
ago that was; a socket client does the same when it decodes the delta. Measured per N over
`seconds`: gateway → client and publish → client latency (p50/p99), updates each session received
per second, the CPU of the portal's processes (Reflex backend and its workers; Ray excluded) and,
apart, of the clients (Chromium's processes, or this process for the socket clients), in percent
of one core, and the machine's load average over the window. The clients share the machine's
cores: on a small machine many Chromium tabs load it far more than the portal does, which is why
the socket clients exist.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import psutil

from veles.bench import dashboard_sockets
from veles.bench.demo_process import STARTUP_SECONDS as _STARTUP_SECONDS
from veles.bench.demo_process import fresh_database
from veles.bench.demo_process import running_demo as _demo

DEFAULT_SESSIONS = (1, 10, 50)
_CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync")
_VIEWPORT = {"width": 1366, "height": 768}
# Installed in every tab before the page loads: [gateway age ms, publish age ms, epoch ms on screen]
# per new stamp (the whole document is observed: React may replace the stamp's node when the page
# mounts).
_OBSERVER = """
window.__lat = [];
let last = '';
new MutationObserver(() => {
  const text = document.getElementById('book-stamp')?.textContent ?? '';
  if (text === last) return;
  last = text;
  const [sent, published] = text.split(' ').map(Number);
  const now = Date.now();
  if (sent > 0) window.__lat.push([now - sent, now - published, now]);
}).observe(document, {childList: true, characterData: true, subtree: true});
"""


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _portal_processes(demo: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The Reflex portal's process tree: the `reflex run` child of the demo and its descendants."""
    found = []
    for child in psutil.Process(demo.pid).children(recursive=True):
        try:
            if "reflex" in " ".join(child.cmdline()):
                found.append(child)
                found.extend(child.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return list({p.pid: p for p in found}.values())


def _chromium_processes() -> list[psutil.Process]:
    """The headless Chromium this benchmark drives: descendants of this process named chromium
    (Playwright's driver starts the browser, which starts a renderer per tab)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _open_tabs(browser: Any, url: str, storage: Any, sessions: int,
               progress: Callable[[str], None]) -> tuple[list[Any], list[Any]]:
    """`sessions` new contexts with the sign-in cookies, each on /dashboard with its first update
    on screen; a tab that gets none fails the run with its URL and stamp."""
    contexts, pages = [], []
    for n in range(1, sessions + 1):
        context = browser.new_context(base_url=url, storage_state=storage, viewport=_VIEWPORT)
        contexts.append(context)
        context.add_init_script(_OBSERVER)
        page = context.new_page()
        # Only the navigation is waited for here: the next loop waits (longer) for each tab's
        # first update, so a machine slowed by many tabs delays the figures instead of failing.
        page.goto("/dashboard", wait_until="commit", timeout=120_000)
        pages.append(page)
        if n % 10 == 0 or n == sessions:
            progress(f"  {n}/{sessions} tabs open (load average {os.getloadavg()[0]:.1f})")
    for n, page in enumerate(pages, start=1):
        try:
            # Polled on a timer: the default polls on animation frames, which a tab the browser
            # does not paint (one of many) may not get.
            page.wait_for_function("() => window.__lat.length > 0", polling=250, timeout=120_000)
        except Exception as exc:
            stamp = page.evaluate("document.getElementById('book-stamp')?.textContent ?? null")
            for context in contexts:
                context.close()
            raise RuntimeError(f"no book update reached {page.url} (stamp {stamp!r})") from exc
        if n % 10 == 0 or n == sessions:
            progress(f"  {n}/{sessions} tabs show live figures")
    return contexts, pages


def _summary(sessions: int, clients: str, samples: list[list[float]], window: tuple[float, float],
             portal_cpu: float, client_cpu: float, load: tuple[float, float]) -> dict[str, Any]:
    """One line of results over the updates that reached a client within `window` (epoch s). An
    update's age is taken where the client has it: on screen in a Chromium tab, decoded in a
    socket client. Updates a slow client still takes in after the window are not counted."""
    start_ms, end_ms = window[0] * 1000, window[1] * 1000
    inside = [s for s in samples if start_ms <= s[2] <= end_ms]
    gateway = [s[0] for s in inside]
    published = [s[1] for s in inside]
    elapsed = window[1] - window[0]
    # The portal's CPU per update delivered to one session: holds under load, unlike the latencies.
    per_update = portal_cpu * 1000 / len(inside) if inside else float("nan")
    return {
        "sessions": sessions,
        "clients": clients,
        "updates_per_session_s": round(len(inside) / sessions / elapsed, 2) if sessions else 0.0,
        "gateway_to_client_p50_ms": round(_percentile(gateway, 0.5), 1),
        "gateway_to_client_p99_ms": round(_percentile(gateway, 0.99), 1),
        "publish_to_client_p50_ms": round(_percentile(published, 0.5), 1),
        "publish_to_client_p99_ms": round(_percentile(published, 0.99), 1),
        "portal_cpu_pct_of_core": round(portal_cpu / elapsed * 100, 1),
        "client_cpu_pct_of_core": round(client_cpu / elapsed * 100, 1),
        "portal_cpu_ms_per_session_update": round(per_update, 3),
        "load_average_1m": [round(load[0], 1), round(load[1], 1)],
        "samples": len(inside),
    }


def _measure_window(portal: list[psutil.Process], clients: list[psutil.Process], seconds: float,
                    progress: Callable[[str], None]) -> tuple[tuple[float, float], float, float,
                                                             tuple[float, float]]:
    """Sleep through the measuring window with progress every 5 s. Its start and end (epoch s),
    the CPU seconds the portal and the clients spent in it, and the load average before and after."""
    portal_before, clients_before = _cpu_seconds(portal), _cpu_seconds(clients)
    load_before, started = os.getloadavg()[0], time.time()
    while (elapsed := time.time() - started) < seconds:
        time.sleep(min(5.0, seconds - elapsed))
        progress(f"  {time.time() - started:.0f}/{seconds:.0f} s, load average {os.getloadavg()[0]:.1f}")
    window = (started, time.time())
    return (window, _cpu_seconds(portal) - portal_before, _cpu_seconds(clients) - clients_before,
            (load_before, os.getloadavg()[0]))


def _measure_tabs(browser: Any, url: str, storage: Any, sessions: int, seconds: float,
                  portal: list[psutil.Process], progress: Callable[[str], None]) -> dict[str, Any]:
    contexts, pages = _open_tabs(browser, url, storage, sessions, progress)
    try:
        measured = _measure_window(portal, _chromium_processes(), seconds, progress)
        samples: list[list[float]] = []
        for page in pages:
            samples.extend(page.evaluate("window.__lat"))
    finally:
        for context in contexts:
            context.close()
    return _summary(sessions, "chromium", samples, *measured)


def _run_tabs(url: str, email: str, password: str, sessions: list[int], seconds: float,
              portal: list[psutil.Process], progress: Callable[[str], None]) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright  # a test extra: only the benchmark needs it here

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is required (scripts/setup.sh --test installs Debian's)")
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=list(_CHROMIUM_FLAGS))
        login = browser.new_context(base_url=url)
        page = login.new_page()
        page.goto("/login")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("#sign-in")
        page.wait_for_url("**/dashboard", wait_until="commit", timeout=60_000)
        storage = login.storage_state()
        login.close()
        for n in sessions:
            progress(f"{n} Chromium tab(s) for {seconds:.0f} s")
            results.append(_measure_tabs(browser, url, storage, n, seconds, portal, progress))
            progress(str(results[-1]))
        browser.close()
    return results


class LoopLag:
    """How late this process's event loop wakes a 50 ms sleeper: the socket clients' own queueing.
    When the load generator is short of CPU its clients decode updates late, and the ages they
    record include that wait; this says how much, beside the clients' CPU."""

    TICK_S = 0.05

    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.TICK_S)
            self.lags_ms.append((time.monotonic() - before - self.TICK_S) * 1000)

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


def _established(process: psutil.Process, port: int) -> int:
    """TCP connections `process` holds on the portal's `port`: the sockets a backend worker serves."""
    try:
        return sum(1 for c in process.net_connections(kind="tcp")
                   if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0


def _per_worker(portal: list[psutil.Process], port: int, cpu_before: dict[int, float],
                elapsed: float) -> list[dict[str, float]]:
    """Per portal process holding sockets (a backend worker): the sessions it serves and its CPU
    over the window, so an unbalanced spread of sessions over workers shows."""
    workers = []
    for process in portal:
        sockets = _established(process, port)
        if sockets:
            cpu = _cpu_seconds([process]) - cpu_before.get(process.pid, 0.0)
            workers.append({"pid": process.pid, "sockets": sockets,
                            "cpu_pct_of_core": round(cpu / elapsed * 100, 1)})
    return workers


async def _measure_sockets(url: str, tokens: tuple[str, str], sessions: int, seconds: float,
                           portal: list[psutil.Process], progress: Callable[[str], None]
                           ) -> dict[str, Any]:
    port = urlsplit(url).port or 80
    with LoopLag() as lag:
        opening = await dashboard_sockets.open_sessions(url, *tokens, sessions, first_update_timeout=120)
        progress(f"  {len(opening.clients)}/{sessions} clients show live figures after "
                 f"{opening.seconds:.0f} s ({opening.retries} connects retried; "
                 f"failed: {dict(opening.failures) or 'none'})")
        try:
            cpu_before = {p.pid: _cpu_seconds([p]) for p in portal}
            lag.lags_ms.clear()
            measured = await asyncio.to_thread(_measure_window, portal, [psutil.Process()], seconds, progress)
            workers = _per_worker(portal, port, cpu_before, measured[0][1] - measured[0][0])
            samples = [sample for client in opening.clients for sample in client.samples]
            lags = list(lag.lags_ms)
        finally:
            await asyncio.gather(*(client.close() for client in opening.clients), return_exceptions=True)
    result = _summary(len(opening.clients), "socket", samples, *measured)
    return {**result, "sessions_asked": sessions, "failed": opening.failed,
            "failures": dict(opening.failures),
            "connects_retried": opening.retries, "open_s": round(opening.seconds, 1),
            "client_loop_lag_p99_ms": round(_percentile(lags, 0.99), 1), "workers": workers}


def _run_sockets(url: str, email: str, password: str, sessions: list[int], seconds: float,
                 portal: list[psutil.Process], progress: Callable[[str], None]) -> list[dict[str, Any]]:
    tokens = dashboard_sockets.sign_in(url, email, password)

    async def all_sizes() -> list[dict[str, Any]]:
        results = []
        for n in sessions:
            progress(f"{n} socket client(s) for {seconds:.0f} s")
            results.append(await _measure_sockets(url, tokens, n, seconds, portal, progress))
            progress(str(results[-1]))
        return results

    return asyncio.run(all_sizes())


def run(sessions: list[int], seconds: float, accounts: int, port: int,
        progress: Callable[[str], None], clients: str = "chromium", workers: list[int] | None = None,
        database_url: str = "", redis_url: str = "") -> list[dict[str, Any]]:
    """One result per number of sessions, measured against one demo, with Chromium tabs or
    socket clients (see dashboard_sockets for why both). With `workers`, one demo per number of
    portal backend workers (Reflex's GRANIAN_WORKERS), each on a fresh PostgreSQL database and
    Redis (the state manager that lets workers share sessions), measured at every size."""
    measure = _RUNS[clients]
    if not workers:
        with _demo(accounts, port, _STARTUP_SECONDS, progress) as (demo, url, email, password):
            return measure(url, email, password, sessions, seconds, _portal_processes(demo), progress)
    results = []
    for count in workers:
        fresh_database(database_url)
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "GRANIAN_WORKERS": str(count)}
        progress(f"portal with {count} backend worker(s) on PostgreSQL + Redis")
        with _demo(accounts, port, _STARTUP_SECONDS, progress, env) as (demo, url, email, password):
            for result in measure(url, email, password, sessions, seconds, _portal_processes(demo), progress):
                results.append({"portal_workers": count, **result})
    return results


# How each kind of client is measured; the CLI offers these names.
_RUNS = {"chromium": _run_tabs, "socket": _run_sockets}
CLIENTS = tuple(_RUNS)


def report(results: list[dict[str, Any]]) -> str:
    """A table for people; the CLI prints JSON lines too. Sessions are those that streamed (of
    those asked, with the socket clients: the failed ones are counted apart, never timed)."""
    lines = ["workers  sessions (asked, failed)  clients   updates/s/each  gw→client p50/p99 ms  "
             "publish→client p50/p99 ms  portal CPU % core  portal CPU ms/session update  "
             "clients' CPU % core  clients' loop lag p99 ms  load average"]
    for r in results:
        asked = f"{r['sessions']} ({r.get('sessions_asked', r['sessions'])}, {r.get('failed', 0)})"
        lines.append(
            f"{r.get('portal_workers', 1):>7}  {asked:>24}  {r['clients']:<8}  "
            f"{r['updates_per_session_s']:>14}  "
            f"{r['gateway_to_client_p50_ms']:>8} / {r['gateway_to_client_p99_ms']:<9}  "
            f"{r['publish_to_client_p50_ms']:>10} / {r['publish_to_client_p99_ms']:<12}  "
            f"{r['portal_cpu_pct_of_core']:>17}  {r['portal_cpu_ms_per_session_update']:>28}  "
            f"{r['client_cpu_pct_of_core']:>19}  {r.get('client_loop_lag_p99_ms', '-'):>24}  "
            f"{r['load_average_1m'][0]} → {r['load_average_1m'][1]}"
        )
        for failure, count in (r.get("failures") or {}).items():
            lines.append(f"{'':>9}failed: {count} x {failure}")
        for worker in r.get("workers") or []:
            lines.append(f"{'':>9}worker pid {worker['pid']}: {worker['sockets']} sockets, "
                         f"{worker['cpu_pct_of_core']}% of a core")
    return "\n".join(lines)
