"""README command 1 as a user meets it: `veles demo` starts, prints a login, the dashboard moves,
and Ctrl-C leaves nothing running."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = [pytest.mark.browser, pytest.mark.ray]
PORT = 3107
STARTUP_SECONDS = 600


class Demo:
    """A `veles demo` child process and everything it printed."""

    def __init__(self, tmp_path: Path) -> None:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
            FRONTEND_PORT=str(PORT),
            DEMO_ACCOUNTS="4",
            RAY_NUM_CPUS="2",
        )
        env.pop("REDIS_URL", None)
        env.pop("RAY_ADDRESS", None)
        self.log = tmp_path / "demo.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "veles"), "demo"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_up(self) -> tuple[str, str, str]:
        """The URL and credentials the demo printed once its portal answered."""
        deadline = time.monotonic() + STARTUP_SECONDS
        pattern = re.compile(r"Veles is running: (\S+)\s+sign in as (\S+) / (\S+)")
        while time.monotonic() < deadline:
            found = pattern.search(self.output())
            if found:
                url, email, password = found.groups()
                return url, email, password
            if self.proc.poll() is not None:
                pytest.fail(f"veles demo exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
            time.sleep(1)
        pytest.fail(f"veles demo did not come up in {STARTUP_SECONDS} s:\n{self.output()[-4000:]}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._out.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """One demo for the module; the last test stops it with Ctrl-C, the fixture makes sure."""
    running = Demo(tmp_path_factory.mktemp("demo"))
    running.wait_until_up()
    yield running
    running.close()


def test_locust_portal_scenario_runs_without_failures(demo: Demo, tmp_path: Path) -> None:
    url, _email, _password = demo.wait_until_up()
    locustfile = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
    command = [str(Path(sys.executable).parent / "locust"), "-f", str(locustfile), "--headless",
               "--host", url, "-u", "4", "-r", "4", "-t", "5s", "--only-summary",
               "--csv", str(tmp_path / "run")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "run_stats.csv").open() as stats:
        totals = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    assert int(totals["Request Count"]) > 0
    assert int(totals["Failure Count"]) == 0


def _equity(page: Page) -> str:
    return page.locator("#total-equity").inner_text()


def test_demo_signs_in_shows_live_equity_and_stops_cleanly(
    demo: Demo, browser: Browser, artifacts: Path
) -> None:
    url, email, password = demo.wait_until_up()
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    console_errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            console_errors.append(f"{msg.text} {msg.location.get('url')}")

    page.on("console", on_console)
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#sign-in")
    page.wait_for_url("**/dashboard", wait_until="commit", timeout=30_000)
    page.wait_for_function(
        "() => /\\d/.test(document.querySelector('#total-equity')?.innerText ?? '')", timeout=60_000
    )
    first = _equity(page)
    deadline = time.monotonic() + 2.0
    while _equity(page) == first and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    changed = _equity(page)
    page.screenshot(path=str(artifacts / "demo-dashboard.png"))
    assert changed != first, f"equity stayed at {first} for 2 s"
    assert page.locator("#accounts-table tbody tr").count() == 4
    assert console_errors == []

    children = demo.descendants()
    assert children, "the demo should be running Ray and the portal"
    demo.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert demo.proc.wait(timeout=90) == 0, demo.output()[-3000:]
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left behind: {[p.info if hasattr(p, 'info') else p for p in alive]}"
