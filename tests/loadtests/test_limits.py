"""The load test's thresholds file and verdicts (loadtests/limits.py): what a file may say, the
refusals that name what is wrong, and the limits deciding the verdict. The end-to-end run, where
the verdicts decide Locust's exit code, is tests/browser/test_locust_runs.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"


def _module() -> ModuleType:
    """loadtests/limits.py (a Locust directory, not a package; limits.py imports no Locust)."""
    spec = importlib.util.spec_from_file_location("loadtest_limits", LOADTESTS / "limits.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


limits = _module()


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "limits.toml"
    path.write_text(text)
    return path


def test_the_shipped_file_judges_every_scenario_of_the_mix() -> None:
    shipped = limits.load(limits.DEFAULT_FILE)
    assert set(shipped) == {"dashboard", "dashboard open", "accounts", "api", "admin", "reports", "storm"}
    assert shipped["dashboard"].p99_ms is not None


def test_a_file_reads_into_limits(tmp_path: Path) -> None:
    read = limits.load(_file(tmp_path, '[dashboard]\np95_ms = 250\np99_ms = 500.5\n["dashboard open"]\n'
                                       'max_error_ratio = 0\n'))
    assert read == {"dashboard": limits.Limits(p95_ms=250.0, p99_ms=500.5),
                    "dashboard open": limits.Limits(max_error_ratio=0.0)}


@pytest.mark.parametrize(("text", "message"), [
    ("[dashboard]\np95 = 250\n", r"\[dashboard\] has unknown field\(s\) p95; known: p95_ms"),
    ("[dashboard]\np99_ms = -1\n", r"\[dashboard\] p99_ms must be a non-negative number, not -1"),
    ("[dashboard]\np99_ms = '250'\n", r"\[dashboard\] p99_ms must be a non-negative number, not '250'"),
    ("[dashboard]\nmax_error_ratio = true\n", r"max_error_ratio must be a non-negative number, not True"),
    ("[dashboard]\np95_ms = nan\n", r"p95_ms must be a non-negative number, not nan"),
    ("dashboard = 250\n", r"\[dashboard\] must be a table of p95_ms, p99_ms, max_error_ratio"),
    ("[dashboard\n", r"limits.toml: .*"),
])
def test_a_bad_file_is_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(limits.ThresholdsError, match=message):
        limits.load(_file(tmp_path, text))


def test_a_missing_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(limits.ThresholdsError, match=r"nowhere\.toml"):
        limits.load(tmp_path / "nowhere.toml")


def test_each_broken_limit_is_named_and_one_fails_the_verdict() -> None:
    strict = limits.Limits(p95_ms=100, p99_ms=200, max_error_ratio=0.01)
    held = limits.judge("api", 1000, 10, (20.0, 100.0, 200.0), strict)
    assert held.broken == ()
    broken = limits.judge("api", 1000, 11, (20.0, 101.0, 250.0), strict)
    assert broken.broken == ("p95 101 > 100 ms", "p99 250 > 200 ms", "errors 1.10% > 1.00%")
    unjudged = limits.judge("visitor", 10, 10, (1.0, 2.0, 3.0), None)
    assert unjudged.broken == ()
    printed = limits.table([held, broken, unjudged])
    assert "PASS" in printed
    assert "FAIL: p95 101 > 100 ms; p99 250 > 200 ms" in printed
    assert "not judged" in printed


def test_requests_belong_to_the_scenario_before_the_colon() -> None:
    assert limits.scenario_of("dashboard: gateway → client") == "dashboard"
    assert limits.scenario_of("dashboard open: first figures") == "dashboard open"
    assert limits.scenario_of("/login") == "/login"

