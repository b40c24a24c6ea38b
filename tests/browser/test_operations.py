"""deploy/ run for real in front of and beside a demo on PostgreSQL and Redis (the production shape):

- Debian's nginx on deploy/nginx.conf (only addresses and paths swapped, `tests/deploy_support`)
  with a self-signed certificate made here: a browser signs in through it, the dashboard's event
  socket goes through it (wss on the proxy's port, never around it) and the figures move; the
  audit log records the browser's own IP (not the proxy's, not one the browser wrote itself);
  nginx and then Veles refuse oversized bodies.
- Debian's Prometheus on deploy/prometheus/prometheus.yml with alerts.yml as shipped: it scrapes
  the portal's /metrics with the bearer token, and VelesEngineStalled fires when the engine is
  paused (its supervisor process stopped) and clears when it goes on. (Ray's own metrics need
  `ray[default]`, which the image installs and the project's `ray` does not: the Ray job has no
  target here.)
- The backup drill of deploy/README.md: pg_dump of the live demo database, pg_restore into a new
  one, and the copy checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from playwright.sync_api import Browser, WebSocket
from sqlmodel import col, select

from models.audit import AuditLog
from models.db import session_scope
from tests.conftest import PG_ADMIN, PG_DB, REDIS_URL
from tests.deploy_support import (
    dashboard_metric_names,
    exported_names,
    free_port,
    nginx_config,
    prometheus_config,
    running_nginx,
    running_prometheus,
)

from .conftest import DEMO_ACCOUNTS, Demo
from .support import console_errors, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.ray, pytest.mark.postgres]
PORT = 4072  # this module's own demo (the shared one on 3280 has no PUBLIC_URL behind a proxy)
PROXY_ADDRESS = "127.0.0.3"  # nginx connects to the portal from here; the browser is 127.0.0.1
FORGED = "203.0.113.9"  # what the browser claims in its own X-Forwarded-For
STALL_ALERT = "VelesEngineStalled"


@dataclass
class Front:
    demo: Demo
    url: str  # https through nginx
    folder: Path  # nginx's and prometheus' files
    token: str  # METRICS_TOKEN
    database_url: str


def _libpq(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _fresh_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return _libpq(name).replace("postgresql://", "postgresql+psycopg://")


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """A demo on PostgreSQL + Redis whose PUBLIC_URL is the nginx in front of it, which trusts
    only that nginx's address and requires a metrics token; nginx running."""
    folder = tmp_path_factory.mktemp("front")
    https_port, http_port = free_port(), free_port()
    url = f"https://127.0.0.1:{https_port}"
    token = secrets.token_hex(24)
    database_url = _fresh_database(f"{PG_DB}_ops_demo")
    demo = Demo(tmp_path_factory.mktemp("ops-demo"), PORT, DEMO_ACCOUNTS, database_url=database_url,
                redis_url=REDIS_URL, extra_env={
                    "PUBLIC_URL": url,
                    "TRUSTED_PROXIES": PROXY_ADDRESS,
                    "METRICS_TOKEN": token,
                })
    try:
        demo.wait_until_up()
        config = nginx_config(folder, f"127.0.0.1:{PORT}", https_port, http_port, proxy_from=PROXY_ADDRESS)
        with running_nginx(config, https_port):
            yield Front(demo, url, folder, token, database_url)
    finally:
        demo.close()


def test_a_dealer_uses_the_portal_through_nginx_and_the_dashboard_moves_over_its_socket(
        front: Front, browser: Browser, artifacts: Path) -> None:
    _url, email, password = front.demo.wait_until_up()
    context = browser.new_context(ignore_https_errors=True, base_url=front.url,
                                  viewport={"width": 1366, "height": 768},
                                  extra_http_headers={"X-Forwarded-For": FORGED})
    page = context.new_page()
    errors = console_errors(page)
    sockets: list[WebSocket] = []
    frames: list[float] = []

    def opened(socket: WebSocket) -> None:
        sockets.append(socket)
        socket.on("framereceived", lambda _payload: frames.append(time.monotonic()))

    page.on("websocket", opened)
    sign_in(page, email, password)
    page.wait_for_function(
        "() => /\\d/.test(document.querySelector('#total-equity')?.innerText ?? '')", timeout=60_000)
    first = page.inner_text("#total-equity")
    since = time.monotonic()
    page.wait_for_function(f"() => document.querySelector('#total-equity').innerText !== {json.dumps(first)}",
                           timeout=15_000)
    page.screenshot(path=str(artifacts / "nginx-dashboard.png"))
    assert page.locator("#accounts-table tbody tr").count() == DEMO_ACCOUNTS

    # Every socket went through the proxy: wss on its port, the event path, none around it.
    wss = front.url.replace("https://", "wss://")
    assert sockets, "the dashboard opened no WebSocket"
    assert all(s.url.startswith(f"{wss}/_event") for s in sockets), [s.url for s in sockets]
    assert any(t > since for t in frames), "no frame reached the dashboard after its first figures"

    # The audit log has the browser's address: not the proxy's, not the one it forged.
    with session_scope(front.database_url) as session:
        signed_in = session.exec(select(AuditLog.ip).where(AuditLog.action == "auth.sign_in")
                                 .order_by(col(AuditLog.id).desc())).first()
    assert signed_in == "127.0.0.1", signed_in
    context.close()
    assert errors == []
    # nginx logs an upgraded socket when it closes: the event path, switched protocols (101)
    upgraded = re.compile(r'"GET /_event/\?[^"]*transport=websocket[^"]*" 101 ')
    deadline = time.monotonic() + 15
    while not upgraded.search(access := (front.folder / "access.log").read_text()):
        assert time.monotonic() < deadline, access[-2000:]
        time.sleep(0.5)


def test_nginx_and_then_veles_refuse_oversized_bodies(front: Front) -> None:
    with httpx.Client(base_url=front.url, verify=False, timeout=30) as client:  # noqa: S501 (self-signed)
        far_too_big = client.post("/api/v1/auth/token", content=b"x" * (3 << 20),
                                  headers={"content-type": "application/json"})
        assert far_too_big.status_code == 413
        assert "nginx" in far_too_big.text  # stopped at the proxy (client_max_body_size 2m)
        too_big = client.post("/api/v1/auth/token", content=b" " * (1536 << 10),
                              headers={"content-type": "application/json"})
        assert too_big.status_code == 413
        assert "MAX_REQUEST_BYTES" in too_big.json()["detail"]  # passed on, refused by Veles
        assert client.get("/api/health").json() == {"status": "ok"}
        assert client.get("/metrics").status_code == 404  # never served through the proxy


def _alert_state(prometheus: str, name: str) -> str | None:
    alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    states = [a["state"] for a in alerts if a["labels"]["alertname"] == name]
    return "firing" if "firing" in states else (states[0] if states else None)


def _query(prometheus: str, expr: str) -> list[dict[str, object]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


def _supervisors(demo: Demo) -> list[psutil.Process]:
    """The processes running the demo broker's supervisor: its tenant host (the default, dense
    placement) or, with PROCESS_PER_TENANT, a TenantSupervisor process of its own."""
    found = []
    for child in demo.descendants():
        with contextlib.suppress(psutil.NoSuchProcess):
            command = " ".join(child.cmdline())
            if "ray::TenantHost" in command or "ray::TenantSupervisor" in command:
                found.append(child)
    return found


def test_prometheus_scrapes_the_demo_and_fires_the_stall_alert_when_the_engine_is_paused(
        front: Front, artifacts: Path) -> None:
    port = free_port()
    config = prometheus_config(front.folder, f"127.0.0.1:{PORT}", front.token, ray=None)
    with running_prometheus(config, port) as prometheus:
        deadline = time.monotonic() + 90
        targets: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            if targets and all(t["health"] == "up" for t in targets):
                break
            time.sleep(1)
        assert {t["labels"]["job"] for t in targets} == {"veles-portal"}
        assert all(t["health"] == "up" for t in targets), targets  # the bearer token was accepted
        polled = "veles_engine_last_poll_timestamp_seconds"
        deadline = time.monotonic() + 60
        while not _query(prometheus, polled) and time.monotonic() < deadline:
            time.sleep(1)
        assert _query(prometheus, polled), "no tenant's engine scraped"
        assert _query(prometheus, "veles_engine_lag_seconds_count > 0")
        assert _alert_state(prometheus, STALL_ALERT) != "firing"

        supervisors = _supervisors(front.demo)
        assert supervisors, "the demo runs no TenantHost or TenantSupervisor process"
        paused = time.monotonic()
        for process in supervisors:
            process.send_signal(signal.SIGSTOP)  # the engine stops: no poll, no batch
        try:
            while _alert_state(prometheus, STALL_ALERT) != "firing" and time.monotonic() < paused + 120:
                time.sleep(1)
            fired_after = time.monotonic() - paused
            assert _alert_state(prometheus, STALL_ALERT) == "firing", f"{STALL_ALERT} did not fire in 120 s"
        finally:
            for process in supervisors:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        while _alert_state(prometheus, STALL_ALERT) == "firing" and time.monotonic() < resumed + 60:
            time.sleep(1)
        cleared_after = time.monotonic() - resumed
        assert _alert_state(prometheus, STALL_ALERT) != "firing", "still firing after the engine went on"
    (artifacts / "prometheus-stall-alert.json").write_text(json.dumps(
        {"fired_after_s": round(fired_after, 1), "cleared_after_s": round(cleared_after, 1)}))


def test_every_dashboard_query_names_a_metric_the_live_demo_exports(front: Front) -> None:
    exposition = httpx.get(f"http://127.0.0.1:{PORT}/metrics", timeout=10,
                           headers={"authorization": f"Bearer {front.token}"})
    assert exposition.status_code == 200
    exported = exported_names(exposition.text)
    missing = dashboard_metric_names() - exported
    assert not missing, f"the dashboard queries metrics /metrics does not export: {missing}"


def _tables(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]  # type: ignore[index]  # noqa: S608 (catalog names)
                for name in names}


def _one(url: str, sql: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_backup_drill_restores_the_live_demo_database_into_a_new_one(front: Front, artifacts: Path) -> None:
    live = _libpq(f"{PG_DB}_ops_demo")
    _fresh_database(f"{PG_DB}_ops_restore")
    copy = _libpq(f"{PG_DB}_ops_restore")
    dump = front.folder / "veles.dump"
    before = _tables(live)
    started = time.monotonic()
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", live], check=True, timeout=300)
    dumped = time.monotonic()
    subprocess.run(["pg_restore", "--exit-on-error", f"--dbname={copy}", str(dump)], check=True, timeout=300)
    restored = time.monotonic()
    after = _tables(live)
    got = _tables(copy)

    assert set(got) == set(before)
    for table, n in got.items():  # the engine keeps writing history and deals while the dump runs
        if before[table] <= after[table]:  # (a table that shrank meanwhile has no bounds to check)
            assert before[table] <= n <= after[table], f"{table}: {before[table]} <= {n} <= {after[table]}"
    for static in ("tenant", "user", "alembic_version"):
        assert got[static] == before[static] > 0, static
    version = "SELECT version_num FROM alembic_version"
    assert _one(copy, version) == _one(live, version)
    policies = "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'"
    assert _one(copy, policies) == _one(live, policies)  # row-level security came along
    assert _one(copy, "SELECT count(*) FROM pg_class WHERE relrowsecurity") == \
        _one(live, "SELECT count(*) FROM pg_class WHERE relrowsecurity")
    drill = {"dump_s": round(dumped - started, 2), "restore_s": round(restored - dumped, 2),
             "dump_bytes": dump.stat().st_size, "rows": sum(got.values()), "tables": len(got),
             "load_average": os.getloadavg()[0]}
    (artifacts / "backup-drill.json").write_text(json.dumps(drill))
    print(f"backup drill: {drill}")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}_ops_restore" WITH (FORCE)')
