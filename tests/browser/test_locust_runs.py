"""The Locust scenarios (loadtests/) against the browser tests' shared demo (embedded, 4 accounts):
the standard mix, distributed (a master and two worker processes), runs every scenario without an
error and passes limits it can hold; a limit it cannot hold (a book update younger than 0 ms)
makes the exit code non-zero. The feed storm needs a demo served through the fake Web API and runs
in `make loadtest`; its trade/balance is tested in tests/mt5/test_webapi_fake_feed.py.

It used a demo of its own, started for these two tests (a minute or more of the suite's time).
Marked `loads_demo`, it runs after the other browser modules (whose figures and report lists it
would otherwise add to) and before the `stops_demo` tests; it signs in as users of its own.
"""

from __future__ import annotations

import csv
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from models.tenancy import Role
from veles.bench.load import add_admin

from .conftest import Demo

pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.loads_demo]

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
SCENARIOS = ("dashboard", "dashboard open", "accounts", "api", "admin", "reports")
DEALER = ("loadtest-dealer@veles.local", secrets.token_urlsafe(18))


@pytest.fixture(scope="module")
def loadtest_demo(demo: Demo) -> tuple[str, dict[str, str]]:
    """The shared demo's URL and the scenarios' sign-ins (a risk manager for the dealers, a tenant
    admin for the admin scenario), added to the demo's broker for this module."""
    url = demo.wait_until_up()[0]
    demo.add_users((*DEALER, Role.RISK_MANAGER))
    email, password = add_admin(demo.database_url)
    return url, {"VELES_LOADTEST_EMAIL": DEALER[0], "VELES_LOADTEST_PASSWORD": DEALER[1],
                 "VELES_LOADTEST_ADMIN_EMAIL": email, "VELES_LOADTEST_ADMIN_PASSWORD": password}


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
    loadtest_demo: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, admin = loadtest_demo
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
                 "api: gateway → client", "api: connect", "reports: POST /api/v1/reports", "visitor: /login"):
        assert name in stats, (name, sorted(stats))
        assert int(stats[name]["Request Count"]) > 0, stats[name]
        assert int(stats[name]["Failure Count"]) == 0, stats[name]
    # The admin comes by every 10-40 s and picks one of its lists at random (loadtests/admins.py):
    # in 25 s it reads one or two of them, not always the users (CI failed once on that).
    admin = [row for name, row in stats.items() if name.startswith("admin: ")]
    assert admin, sorted(stats)
    assert all(int(row["Request Count"]) > 0 and int(row["Failure Count"]) == 0 for row in admin), admin
    # book updates are aged from their gateway stamp: positive, and not minutes old
    for name in ("dashboard: gateway → client", "api: gateway → client"):
        assert 0 < float(stats[name]["Median Response Time"]) < 60_000, stats[name]


def test_a_broken_threshold_fails_the_run(loadtest_demo: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, users = loadtest_demo
    result = _locust(url, tmp_path, "[dashboard]\np95_ms = 0\n", 10, 1, "DashboardDealer", env=users)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-5000:]
    assert "FAIL: p95" in output, output[-5000:]
    assert int(_stats(tmp_path)["dashboard: gateway → client"]["Request Count"]) > 0
