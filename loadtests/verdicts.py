"""The run's verdicts at its end: each scenario's merged statistics judged against its limits
(limits.py), printed as a table, and the exit code (1 if any limit was broken, else 0: failures
within a scenario's allowed ratio do not fail the run; a run that made no request at all fails).
Judged on the master, or the only process: workers hold only their share. A scenario without
requests is not listed (a run may leave scenarios out); one without limits is listed as not judged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import limits as limits_file
from limits import Limits, Verdict
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import RequestStats, StatsEntry


def judge(stats: RequestStats, limits: dict[str, Limits]) -> list[Verdict]:
    """Each scenario that ran, its figures over all its requests, against its limits."""
    merged: dict[str, StatsEntry] = {}
    for entry in stats.entries.values():
        scenario = limits_file.scenario_of(entry.name)
        total = merged.setdefault(scenario, StatsEntry(stats, scenario, "", use_response_times_cache=False))
        total.extend(entry)
    return [
        limits_file.judge(scenario, total.num_requests, total.num_failures,
                          (total.get_response_time_percentile(0.5), total.get_response_time_percentile(0.95),
                           total.get_response_time_percentile(0.99)), limits.get(scenario))
        for scenario, total in sorted(merged.items()) if total.num_requests
    ]


def register(environment: Environment, path: Path) -> None:
    """Judge the run when it ends, print the table and set the exit code."""
    limits = limits_file.load(path)

    def on_quitting(environment: Environment, **_kwargs: Any) -> None:
        if isinstance(environment.runner, WorkerRunner):
            return
        verdicts = judge(environment.stats, limits)
        print(f"\nVerdicts against {path}:\n{limits_file.table(verdicts)}\n", flush=True)
        if not verdicts:
            print("No request was made: nothing was measured (exit code 1).", flush=True)
        environment.process_exit_code = 1 if not verdicts or any(v.broken for v in verdicts) else 0

    environment.events.quitting.add_listener(on_quitting)
