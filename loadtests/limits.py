"""Per-scenario limits on p95, p99 and the error ratio: the thresholds file, and a scenario's
figures judged against them.

Every request a scenario reports is named "<scenario>: <what>"; a scenario's figures are those of
all its requests together. The limits come from a TOML file (`--thresholds`, default
thresholds.toml beside this module), one table per scenario:

    [dashboard]
    p95_ms = 250
    p99_ms = 500
    max_error_ratio = 0.01

This module does not import Locust (which patches the process with gevent when imported), so the
file's checks are testable anywhere; verdicts.py applies them to a run's statistics.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_FILE = Path(__file__).with_name("thresholds.toml")
FIELDS = ("p95_ms", "p99_ms", "max_error_ratio")


class ThresholdsError(ValueError):
    """A thresholds file that cannot be used; the message names the file, scenario and field."""


@dataclass(frozen=True)
class Limits:
    """One scenario's limits; None is no limit."""

    p95_ms: float | None = None
    p99_ms: float | None = None
    max_error_ratio: float | None = None


@dataclass(frozen=True)
class Verdict:
    """One scenario's figures against its limits (None: the scenario has none, not judged)."""

    scenario: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    limits: Limits | None
    broken: tuple[str, ...]

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def load(path: Path) -> dict[str, Limits]:
    """The limits per scenario in `path`. A missing or malformed file, a scenario that is not a
    table, an unknown field, or a value that is not a non-negative number is refused, by name."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ThresholdsError(f"{path}: {exc}") from exc
    limits = {}
    for scenario, table in raw.items():
        if not isinstance(table, dict):
            raise ThresholdsError(f"{path}: [{scenario}] must be a table of {', '.join(FIELDS)}")
        unknown = sorted(set(table) - set(FIELDS))
        if unknown:
            raise ThresholdsError(f"{path}: [{scenario}] has unknown field(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(FIELDS)}")
        for name, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ThresholdsError(
                    f"{path}: [{scenario}] {name} must be a non-negative number, not {value!r}")
        limits[scenario] = Limits(**{name: float(value) for name, value in table.items()})
    return limits


def scenario_of(name: str) -> str:
    """The scenario a request belongs to: its name up to the first colon."""
    return name.split(":", 1)[0].strip()


def judge(scenario: str, requests: int, failures: int, percentiles: tuple[float, float, float],
          limits: Limits | None) -> Verdict:
    """A scenario's figures (p50, p95, p99 in ms) against its limits."""
    p50, p95, p99 = percentiles
    broken = []
    if limits is not None:
        if limits.p95_ms is not None and p95 > limits.p95_ms:
            broken.append(f"p95 {p95:.0f} > {limits.p95_ms:.0f} ms")
        if limits.p99_ms is not None and p99 > limits.p99_ms:
            broken.append(f"p99 {p99:.0f} > {limits.p99_ms:.0f} ms")
        ratio = failures / requests if requests else 0.0
        if limits.max_error_ratio is not None and ratio > limits.max_error_ratio:
            broken.append(f"errors {ratio:.2%} > {limits.max_error_ratio:.2%}")
    return Verdict(scenario, requests, failures, p50, p95, p99, limits, tuple(broken))


def _limit(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.0f}{unit}" if unit else f"{value:.2%}"


def table(verdicts: list[Verdict]) -> str:
    """The verdicts as a fixed-width table (what `make loadtest` prints)."""
    head = (f"{'scenario':<16} {'requests':>9} {'errors':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  "
            f"{'limits p95 / p99 / errors':<28} verdict")
    lines = [head, "-" * len(head)]
    for v in verdicts:
        limits = ("-" if v.limits is None else
                  f"{_limit(v.limits.p95_ms, ' ms')} / {_limit(v.limits.p99_ms, ' ms')} / "
                  f"{_limit(v.limits.max_error_ratio, '')}")
        verdict = ("not judged" if v.limits is None
                   else "FAIL: " + "; ".join(v.broken) if v.broken else "PASS")
        lines.append(f"{v.scenario:<16} {v.requests:>9} {v.error_ratio:>8.2%} {v.p50_ms:>8.0f} "
                     f"{v.p95_ms:>8.0f} {v.p99_ms:>8.0f}  {limits:<28} {verdict}")
    return "\n".join(lines)
