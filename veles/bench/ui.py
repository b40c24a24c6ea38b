"""`veles bench ui`: the portal under 1, 10 and 50 simultaneous dashboard sessions.

Starts a real `veles demo` (simulated broker, engine on local Ray, portal in production mode) on
its own port and SQLite file, signs in once, then opens N headless Chromium tabs on /dashboard.
Each tab watches the hidden book stamp the dashboard renders with every update (when the newest
price batch left the gateway, and when the aggregator published it) and records, at the moment
the new numbers are in the page, how long ago that was. Measured per N over `seconds`:
gateway → screen and publish → screen latency (p50/p99), updates each tab received per second,
and the CPU of the portal's processes (Reflex backend and its workers; Ray and Chromium excluded)
in percent of one core. Chromium shares the machine's cores, so on a small machine the figures
for many sessions include its load too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

DEFAULT_SESSIONS = (1, 10, 50)
_VIEWPORT = {"width": 1366, "height": 768}
_RUNNING = re.compile(r"Veles is running: (\S+)\s+sign in as (\S+) / (\S+)")
# Installed in every tab before the page loads: one [gateway ms, publish ms] pair per new stamp
# (the whole document is observed: React may replace the stamp's node when the page mounts).
_OBSERVER = """
window.__lat = [];
let last = '';
new MutationObserver(() => {
  const text = document.getElementById('book-stamp')?.textContent ?? '';
  if (text === last) return;
  last = text;
  const [sent, published] = text.split(' ').map(Number);
  if (sent > 0) window.__lat.push([Date.now() - sent, Date.now() - published]);
}).observe(document, {childList: true, characterData: true, subtree: true});
"""


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def _demo(accounts: int, port: int, timeout: float, progress: Callable[[str], None]
          ) -> Iterator[tuple[subprocess.Popen[bytes], str, str, str]]:
    """A `veles demo` of `accounts` on `port` with its own database; stopped with Ctrl-C after."""
    with tempfile.TemporaryDirectory(prefix="veles-bench-ui-") as tmp:
        log_path = Path(tmp) / "demo.log"
        env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp}/bench.db", FRONTEND_PORT=str(port),
                   DEMO_ACCOUNTS=str(accounts))
        env.pop("RAY_ADDRESS", None)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(  # noqa: S603 (our own CLI)
                [str(Path(sys.executable).parent / "veles"), "demo"], stdout=log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
            try:
                deadline = time.monotonic() + timeout
                while (found := _RUNNING.search(log_path.read_text(errors="replace"))) is None:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"veles demo did not come up:\n{log_path.read_text()[-3000:]}")
                    time.sleep(1)
                progress(f"demo up at {found.group(1)}")
                yield proc, found.group(1), found.group(2), found.group(3)
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                    try:
                        proc.wait(timeout=90)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()


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


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _measure(browser: Any, url: str, storage: Any, sessions: int, seconds: float,
             portal: list[psutil.Process]) -> dict[str, Any]:
    contexts = [browser.new_context(base_url=url, storage_state=storage, viewport=_VIEWPORT)
                for _ in range(sessions)]
    try:
        pages = []
        for context in contexts:
            context.add_init_script(_OBSERVER)
            page = context.new_page()
            page.goto("/dashboard")
            pages.append(page)
        for page in pages:
            try:
                page.wait_for_function("() => window.__lat.length > 0", timeout=120_000)
            except Exception as exc:
                stamp = page.evaluate("document.getElementById('book-stamp')?.textContent ?? null")
                raise RuntimeError(f"no book update reached {page.url} (stamp {stamp!r})") from exc
            page.evaluate("window.__lat = []")
        cpu_before, started = _cpu_seconds(portal), time.monotonic()
        time.sleep(seconds)
        cpu = _cpu_seconds(portal) - cpu_before
        elapsed = time.monotonic() - started
        samples: list[list[float]] = []
        for page in pages:
            samples.extend(page.evaluate("window.__lat"))
    finally:
        for context in contexts:
            context.close()
    gateway = [s[0] for s in samples]
    published = [s[1] for s in samples]
    return {
        "sessions": sessions,
        "updates_per_session_s": round(len(samples) / sessions / elapsed, 2),
        "gateway_to_screen_p50_ms": round(_percentile(gateway, 0.5), 1),
        "gateway_to_screen_p99_ms": round(_percentile(gateway, 0.99), 1),
        "publish_to_screen_p50_ms": round(_percentile(published, 0.5), 1),
        "publish_to_screen_p99_ms": round(_percentile(published, 0.99), 1),
        "portal_cpu_pct_of_core": round(cpu / elapsed * 100, 1),
        "samples": len(samples),
    }


def run(sessions: list[int], seconds: float, accounts: int, port: int,
        progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """One result per number of sessions, measured against one demo."""
    from playwright.sync_api import sync_playwright  # a test extra: only the benchmark needs it here

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("chromium is required (scripts/setup.sh --test installs Debian's)")
    results = []
    with _demo(accounts, port, 600, progress) as (demo, url, email, password), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium,
                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
        login = browser.new_context(base_url=url)
        page = login.new_page()
        page.goto("/login")
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("#sign-in")
        page.wait_for_url("**/dashboard", wait_until="commit", timeout=60_000)
        storage = login.storage_state()
        login.close()
        portal = _portal_processes(demo)
        for n in sessions:
            progress(f"{n} session(s) for {seconds:.0f} s")
            results.append(_measure(browser, url, storage, n, seconds, portal))
            progress(str(results[-1]))
        browser.close()
    return results


def report(results: list[dict[str, Any]]) -> str:
    """A table for people; the CLI prints JSON lines too."""
    lines = ["sessions  updates/s/tab  gw→screen p50/p99 ms  publish→screen p50/p99 ms  portal CPU % core"]
    for r in results:
        lines.append(
            f"{r['sessions']:>8}  {r['updates_per_session_s']:>13}  "
            f"{r['gateway_to_screen_p50_ms']:>8} / {r['gateway_to_screen_p99_ms']:<9}  "
            f"{r['publish_to_screen_p50_ms']:>10} / {r['publish_to_screen_p99_ms']:<12}  "
            f"{r['portal_cpu_pct_of_core']:>8}"
        )
    return "\n".join(lines)

