"""`veles demo`'s local Ray cluster is started with settings that keep an idle demo idle (log
monitor, node stats, Ray metrics, reserve workers), and an operator's own values win."""

from __future__ import annotations

import os

import pytest

from veles.cli.demo import _QUIET_RAY, quiet_ray_environment


def test_quiet_defaults_are_set_and_operator_values_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _QUIET_RAY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REPORTER_UPDATE_INTERVAL_MS", "2500")  # an operator wants node stats
    quiet_ray_environment()
    assert os.environ["REPORTER_UPDATE_INTERVAL_MS"] == "2500"
    others = {name: value for name, value in _QUIET_RAY.items() if name != "REPORTER_UPDATE_INTERVAL_MS"}
    assert {name: os.environ.get(name) for name in others} == others
    assert others["RAY_LOG_MONITOR_MANY_FILES_THRESHOLD"] == "0"  # the folder listing is timed, not per poll
