"""`veles bench demo`: what the demo costs a machine while a dealer just watches it.

Starts a real `veles demo --accounts N` on its own port and SQLite file (the way `veles bench ui`
does), times start to a live portal, signs in with headless Chromium and opens one dashboard,
waits for its first live figures, lets it settle, then measures a window of idle watching: the
CPU, in percent of one core, of the engine (every Ray process of the demo, Ray's own daemons and
the demo's driver included, the simulator's share taken out), of the simulated broker (the
supervisor's own count of the CPU its gateway polls took), of the portal (the Reflex process tree)
and of the browser, each apart and in total without the browser; their proportional resident set;
the busiest processes, to show where idle CPU goes; and the machine's load average, since the
machine is shared. Everything it started is stopped when it ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil

from veles.bench.demo_process import STARTUP_SECONDS as _STARTUP_SECONDS
from veles.bench.demo_process import running_demo as _demo
from veles.bench.ui import _CHROMIUM_FLAGS, _OBSERVER, _VIEWPORT

# Started in a short-lived process at each end of the window, so this benchmark adds no Ray
# driver (and its heartbeats) to the cluster it measures.
_GATEWAY_CPU = """
import asyncio, json
from veles.config import get_settings
from veles.services.engine import engine_status
statuses = asyncio.run(engine_status(get_settings()))
print(json.dumps(sum(c["gateway_cpu_s"] for s in statuses for c in s["connections"])))
"""


def _gateway_cpu_s(ray_address: str, env: dict[str, str]) -> float:
    """CPU seconds the running supervisors have spent in their gateways' polls (the simulator)."""
    out = subprocess.run(  # noqa: S603 (our own interpreter)
        [sys.executable, "-c", _GATEWAY_CPU], env=dict(env, RAY_ADDRESS=ray_address),
        capture_output=True, text=True, check=False, timeout=120,
    )
    if out.returncode:
        raise RuntimeError(f"reading the engine's status failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _groups(demo: subprocess.Popen[bytes]) -> dict[str, list[psutil.Process]]:
    """The demo's processes by part: `portal` (the `reflex run` child and everything under it),
    `engine` (the demo's driver and every other descendant: Ray's daemons and workers) and
    `browser` (Chromium under this process)."""
    root = psutil.Process(demo.pid)
    portal: dict[int, psutil.Process] = {}
    engine: dict[int, psutil.Process] = {root.pid: root}
    for child in root.children(recursive=True):
        try:
            if child.pid in portal:
                continue
            if "reflex" in " ".join(child.cmdline()[:3]):
                portal[child.pid] = child
                portal.update((p.pid, p) for p in child.children(recursive=True))
            else:
                engine[child.pid] = child
        except psutil.NoSuchProcess:
            continue
    for pid in portal:
        engine.pop(pid, None)
    browser = [p for p in psutil.Process().children(recursive=True) if _is_chromium(p)]
    return {"engine": list(engine.values()), "portal": list(portal.values()), "browser": browser}


def _is_chromium(process: psutil.Process) -> bool:
    try:
        return "chrom" in process.name()
    except psutil.NoSuchProcess:
        return False


def _label(process: psutil.Process) -> str:
    """A short name for a process: Ray names its workers after the actor they hold."""
    try:
        cmd = process.cmdline()
        name = process.name()
    except psutil.NoSuchProcess:
        return "gone"
    if cmd and cmd[0].startswith("ray::"):
        return cmd[0]
    for part in cmd[:4]:
        base = os.path.basename(part)
        if base and base not in {"python", "python3", "-m", "-u"} and not base.startswith("python3."):
            return base[:40]
    return name


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    times = {}
    for process in processes:
        try:
            t = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        times[process.pid] = t.user + t.system + t.children_user + t.children_system
    return times


def _pss_mb(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            total += process.memory_full_info().pss / 2**20
        except psutil.Error:
            continue
    return round(total, 1)


def _open_dashboard(pw: Any, url: str, email: str, password: str) -> tuple[Any, Any]:
    """Headless Chromium signed in, one tab on /dashboard showing live figures."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is required (scripts/setup.sh --test installs Debian's)")
    browser = pw.chromium.launch(executable_path=chromium, args=list(_CHROMIUM_FLAGS))
    context = browser.new_context(base_url=url, viewport=_VIEWPORT)
    context.add_init_script(_OBSERVER)
    page = context.new_page()
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url("**/dashboard", wait_until="commit", timeout=120_000)
    page.wait_for_function("() => window.__lat.length > 0", polling=250, timeout=180_000)
    return browser, page


def _window(groups: dict[str, list[psutil.Process]], seconds: float, progress: Callable[[str], None]
            ) -> tuple[float, dict[int, float]]:
    """Sleep through the window; its length and the CPU seconds each process used in it."""
    everyone = [p for procs in groups.values() for p in procs]
    before, started = _cpu(everyone), time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        time.sleep(min(10.0, seconds - elapsed))
        progress(f"  {time.monotonic() - started:.0f}/{seconds:.0f} s, load average "
                 f"{os.getloadavg()[0]:.1f}")
    after, elapsed = _cpu(everyone), time.monotonic() - started
    return elapsed, {pid: after[pid] - before.get(pid, 0.0) for pid in after}


def run(accounts: int, seconds: float, settle: float, port: int,
        progress: Callable[[str], None]) -> dict[str, Any]:
    """One result: the demo of `accounts` idle with one dashboard open, measured over `seconds`."""
    from playwright.sync_api import sync_playwright  # a test extra: only benchmarks need it here

    started = time.monotonic()
    progress(f"starting veles demo --accounts {accounts} on port {port}")
    with _demo(accounts, port, _STARTUP_SECONDS, progress) as (demo, url, email, password):
        portal_s = time.monotonic() - started
        groups = _groups(demo)
        # The portal's environment: the demo's settings and the cluster's address.
        env = psutil.Process(groups["portal"][0].pid).environ()
        ray_address = env["RAY_ADDRESS"]
        with sync_playwright() as pw:
            browser, page = _open_dashboard(pw, url, email, password)
            try:
                progress(f"dashboard live; settling {settle:.0f} s")
                time.sleep(settle)
                groups = _groups(demo)
                gateway_before = _gateway_cpu_s(ray_address, env)
                load_before = os.getloadavg()
                updates_before = page.evaluate("window.__lat.length")
                progress(f"measuring {seconds:.0f} s, load average {load_before[0]:.1f}")
                elapsed, used = _window(groups, seconds, progress)
                load_after = os.getloadavg()
                memory = {name: _pss_mb(procs) for name, procs in groups.items()}
                labels = {p.pid: f"{name}:{_label(p)}" for name, procs in groups.items() for p in procs}
                updates = page.evaluate("window.__lat.length") - updates_before
            finally:
                browser.close()
        gateway_s = _gateway_cpu_s(ray_address, env) - gateway_before

    def pct(cpu_s: float) -> float:
        return round(cpu_s / elapsed * 100, 1)

    by_group = {name: sum(used.get(p.pid, 0.0) for p in procs) for name, procs in groups.items()}
    simulator = min(gateway_s, by_group["engine"])
    busiest = sorted(used.items(), key=lambda item: -item[1])[:16]
    return {
        "accounts": accounts,
        "seconds": round(elapsed, 1),
        "start_to_portal_s": round(portal_s, 1),
        "engine_cpu_pct": pct(by_group["engine"] - simulator),
        "simulator_cpu_pct": pct(simulator),
        "portal_cpu_pct": pct(by_group["portal"]),
        "total_cpu_pct": pct(by_group["engine"] + by_group["portal"]),
        "browser_cpu_pct": pct(by_group["browser"]),
        "engine_pss_mb": memory["engine"],
        "portal_pss_mb": memory["portal"],
        "browser_pss_mb": memory["browser"],
        "engine_processes": len(groups["engine"]),
        "dashboard_updates_per_s": round(updates / elapsed, 2),
        "load_avg": [round(load_before[0], 2), round(load_after[0], 2)],
        "busiest": {labels.get(pid, str(pid)) + f"[{pid}]": pct(cpu) for pid, cpu in busiest},
    }
