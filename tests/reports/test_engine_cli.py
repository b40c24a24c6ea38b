"""`veles engine` runs the report worker and the scheduler beside the engine: a daily summary (which
reads the live book) queued while it runs comes out ready, and Ctrl-C stops the worker with the
engine and Ray, leaving no process behind. A real subprocess on a local Ray cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from sqlmodel import select

from models.db import session_scope
from models.reports import Report, ReportStatus
from models.tenancy import User
from veles.config import Settings
from veles.reports.settings import ReportSettings
from veles.services import reports as service
from veles.services.demo import seed_demo

pytestmark = [pytest.mark.ray]
START_S = 300.0  # Ray and three account actors on a loaded two-core machine


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def wait_for_text(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"veles engine exited with {proc.returncode}:\n{tail(log)}")
        time.sleep(0.5)
    pytest.fail(f"no {text!r} within {timeout:.0f} s:\n{tail(log)}")


def test_engine_runs_the_report_worker_and_stops_it_on_ctrl_c(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'veles.db'}"
    settings = Settings(_env_file=None, database_url=url, redis_url=None)
    tenant_id = seed_demo(settings)
    with session_scope(url) as session:
        user = session.exec(select(User).where(User.tenant_id == tenant_id)).one()
        assert user.id is not None
        caller = service.Caller(tenant_id, user.id, user.role)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("REDIS_", "RAY_ADDRESS"))}
    env.update(DATABASE_URL=url, REPORTS_STORAGE_DIR=str(tmp_path / "files"), RAY_NUM_CPUS="2")
    log = tmp_path / "engine.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "veles"), "engine", "--simulated-accounts", "3"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True,
        )
    try:
        wait_for_text(log, "engine running with 1 report worker(s)", proc, START_S)
        now = datetime.now(UTC)
        report = service.request_report(
            settings, ReportSettings(storage_dir=tmp_path / "files"), caller,
            {"type": "daily_risk", "format": "xlsx", "start": (now - timedelta(hours=1)).isoformat(),
             "end": now.isoformat()},
        )
        deadline = time.monotonic() + 180
        while True:
            with session_scope(url) as session:
                row = session.get(Report, report.id)
                assert row is not None
                status, error = row.status, row.error
            if status in (ReportStatus.READY, ReportStatus.FAILED) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (status, error) == (ReportStatus.READY, None)
        assert (tmp_path / "files" / f"tenant-{tenant_id}" / f"report-{report.id}.xlsx").exists()
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("ReportWorker" in " ".join(c.cmdline()) for c in children if c.is_running())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"Ctrl-C did not stop veles engine:\n{tail(log)}")
    time.sleep(2.0)
    assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
