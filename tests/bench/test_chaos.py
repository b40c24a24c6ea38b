"""The chaos test of issue 15: the demo engine under fire loses and doubles no alert.

`veles chaos` runs, as its own process (its own Ray cluster, its own Redis server on a free port,
its own database `<TEST_PG_DB>_chaos`), the demo engine for `--chaos-seconds` (45 by default; the
issue's 5 minutes: `--chaos-seconds 300`) while malformed messages go on every Redis channel and
key, the Redis server is killed and restarted and an account host process is killed. Then every
alert the in-process reference raises over the same seeded feed must be in the `alert` table exactly
once and delivered, and every reader of every channel must still work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veles.bench.chaos_targets import TARGETS

PG_DB = os.environ.get("TEST_PG_DB", "veles_test")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.ray
def test_every_reference_alert_is_stored_once_and_delivered_through_the_chaos(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    seconds = float(request.config.getoption("--chaos-seconds"))
    database = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}_chaos"
    command = [str(Path(sys.executable).parent / "veles"), "chaos", "--seconds", str(seconds),
               "--database-url", database, "--output", str(tmp_path / "chaos.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 600, check=False)
    assert (tmp_path / "chaos.json").exists(), f"no summary; the run said:\n{done.stderr[-4000:]}"
    summary = json.loads((tmp_path / "chaos.json").read_text())
    alerts = summary["alerts"]
    assert alerts["expected"] > 0, "the seeded feed raised no alert: the run would prove nothing"
    assert alerts["missing"] == [], "alerts the reference raises are not in the alert table"
    assert alerts["duplicates"] == [], "alerts stored twice"
    assert alerts["unexpected"] == [], "stored alerts the reference does not raise"
    assert alerts["undelivered"] == [], "stored alerts without their one portal delivery"
    assert alerts["without_email_record"] == []
    assert alerts["email_received"] == alerts["email_sent"] > 0
    assert len(summary["injected"]) == len(TARGETS), "every channel and key got its malformed messages"
    assert summary["redis_restart"]["at_s"] is not None
    assert summary["host_kill"].get("restored_s") is not None, "the killed host's accounts came back"
    recovery = summary["recovery"]
    assert all(ok is True for ok in recovery["readers"].values()), recovery["readers"]
    assert recovery["report_watch_alive"]
    assert recovery["delivery_consumer"]["state"] == "running"
    assert recovery["delivery_consumer"]["malformed"] >= 1, "the junk alert reached delivery and was counted"
    assert summary["ok"]
    assert done.returncode == 0
