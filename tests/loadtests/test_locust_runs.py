"""The Locust scenarios (loadtests/) against a demo of this module's own (embedded, 4 accounts, a
port of its own, so no browser lock): the standard mix, distributed (a master and two worker
processes), runs every scenario without an error and passes limits it can hold; a limit it cannot
hold (a book update younger than 0 ms) makes the exit code non-zero. The feed storm needs a demo
served through the fake Web API and runs in `make loadtest`; its trade/balance is tested in
tests/mt5/test_webapi_fake_feed.py."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from veles.bench.demo_process import running_demo
from veles.bench.load import add_admin

pytestmark = [pytest.mark.ray]

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
SCENARIOS = ("dashboard", "dashboard open", "accounts", "api", "admin", "reports")
DEMO_PORT = 4068  # this module's own (the browser tests' shared demo is on 3280)
DEMO_STARTUP_S = 900


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """The demo's URL and the admin scenario's sign-in; stopped after the module."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    env = {"DATABASE_URL": database_url, "LOGIN_LIMIT": "1000", "RAY_NUM_CPUS": "2"}
    with running_demo(4, DEMO_PORT, DEMO_STARTUP_S, lambda _line: None, env) as (_proc, url, _e, _p):
        email, password = add_admin(database_url)
        yield url, {"VELES_LOADTEST_ADMIN_EMAIL": email, "VELES_LOADTEST_ADMIN_PASSWORD": password}


def _locust(url: str, tmp_path: Path, limits: str, seconds: int, users: int, *args: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    thresholds = tmp_path / "limits.toml"
    thresholds.write_text(limits)
    command = [str(Path(sys.executable).parent / "locust"), "-f", str(LOCUSTFILE), "--headless",
               "--host", url, "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--only-summary",
               "--stop-timeout", "5", "--csv", str(tmp_path / "run"), "--thresholds", str(thresholds), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, **(env or {})})


def _stats(tmp_path: Path) -> dict[str, dict[str, str]]:
    with (tmp_path / "run_stats.csv").open() as stats:
        return {row["Name"]: row for row in csv.DictReader(stats)}


def test_the_standard_mix_runs_every_scenario_distributed_and_passes(
    demo: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, admin = demo
    # Limits a loaded machine holds: what is judged here is that nothing failed.
    lenient = "".join(f'["{name}"]\np99_ms = 120000\nmax_error_ratio = 0\n' for name in SCENARIOS)
    # 13 users: the mix's weights give every class at least one.
    result = _locust(url, tmp_path, lenient, 25, 13, "--processes", "2", env=admin)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert "Verdicts against" in output, output[-5000:]
    assert "FAIL" not in output, output[-5000:]
    stats = _stats(tmp_path)
    for name in ("dashboard: gateway → client", "dashboard open: first figures", "accounts: open list",
                 "api: gateway → client", "api: connect", "admin: GET /api/v1/users",
                 "reports: POST /api/v1/reports", "visitor: /login"):
        assert name in stats, (name, sorted(stats))
        assert int(stats[name]["Request Count"]) > 0, stats[name]
        assert int(stats[name]["Failure Count"]) == 0, stats[name]
    # book updates are aged from their gateway stamp: positive, and not minutes old
    for name in ("dashboard: gateway → client", "api: gateway → client"):
        assert 0 < float(stats[name]["Median Response Time"]) < 60_000, stats[name]


def test_a_broken_threshold_fails_the_run(demo: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, _admin = demo
    result = _locust(url, tmp_path, "[dashboard]\np95_ms = 0\n", 10, 1, "DashboardDealer")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-5000:]
    assert "FAIL: p95" in output, output[-5000:]
    assert int(_stats(tmp_path)["dashboard: gateway → client"]["Request Count"]) > 0
