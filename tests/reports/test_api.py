"""The report routes over HTTP: queue (202), refusals naming the field (422), roles (403 for a
viewer queueing; viewers may download), another tenant's report (404), download and signed links."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from models.db import upgrade
from tests.reports.conftest import NoEngine, seed_brokers
from veles.api import create_api
from veles.config import Settings
from veles.reports.runner import run_one
from veles.reports.settings import ReportSettings, get_report_settings
from veles.reports.storage import open_storage
from veles.services.auth import Identity, issue_token


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, redis_url_module: str) -> Iterator[dict[str, Any]]:
    """A migrated SQLite database with two brokers, reports stored under a temporary directory."""
    root = Path(tmp_path_factory.mktemp("reports-api"))
    url = f"sqlite:///{root / 'veles.db'}"
    upgrade(url)
    settings = Settings(_env_file=None, database_url=url, redis_url=redis_url_module)
    tokens = {
        key: issue_token(Identity(user_id=user, tenant_id=tenant, role=role, email=f"{key}@test"),
                         settings.secret_key.get_secret_value(), 30)
        for key, (tenant, user, role) in seed_brokers(url).items()
    }
    rsettings = ReportSettings(storage_dir=root / "files")
    mp = pytest.MonkeyPatch()
    mp.setenv("REPORTS_STORAGE_DIR", str(root / "files"))  # the routes read the process's report settings
    get_report_settings.cache_clear()
    yield {"settings": settings, "rsettings": rsettings, "tokens": tokens}
    mp.undo()
    get_report_settings.cache_clear()


@pytest.fixture
def client(world: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_api(world["settings"])) as test_client:
        yield test_client


def auth(world: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world['tokens'][who]}"}


def body(**fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "type": "alerts_log",
        "start": (now - timedelta(hours=12)).isoformat(),
        "end": now.isoformat(),
        "time_zone": "Europe/London",
        **fields,
    }


def test_queue_render_download_and_links(client: TestClient, world: dict[str, Any]) -> None:
    queued = client.post(
        "/api/v1/reports", json=body(format="xlsx"), headers=auth(world, "Alpha-risk_manager")
    )
    assert queued.status_code == 202, queued.text
    report_id = queued.json()["id"]
    assert queued.json()["status"] == "queued"
    assert queued.json()["time_zone"] == "Europe/London"

    not_yet = client.get(f"/api/v1/reports/{report_id}/download", headers=auth(world, "Alpha-risk_manager"))
    assert not_yet.status_code == 409
    assert "queued" in not_yet.json()["detail"]

    settings, rsettings = world["settings"], world["rsettings"]
    assert (
        run_one(
            settings.database_url,
            rsettings,
            "api-test",
            NoEngine(),
            open_storage(rsettings),
            lambda tenant, message: None,
        )
        == report_id
    )

    listed = client.get("/api/v1/reports", headers=auth(world, "Alpha-viewer")).json()
    assert [(r["id"], r["status"]) for r in listed] == [(report_id, "ready")]
    download = client.get(f"/api/v1/reports/{report_id}/download", headers=auth(world, "Alpha-risk_manager"))
    assert download.status_code == 200
    assert download.content[:2] == b"PK"
    assert f"alerts-log-{report_id}.xlsx" in download.headers["content-disposition"]

    link = client.post(f"/api/v1/reports/{report_id}/link", headers=auth(world, "Alpha-risk_manager")).json()
    assert client.get(link["url"]).content == download.content  # no sign-in needed
    forged = link["url"].replace("sig=", "sig=0")
    assert client.get(forged).status_code == 403
    # SECRET_KEY rotated: the link (signed with the key now previous) works during the overlap only
    for until, status in ((datetime.now(UTC) + timedelta(hours=1), 200), (datetime.now(UTC), 403)):
        rotated = world["settings"].model_copy(update={
            "secret_key": SecretStr("a-new-key-" + "k" * 32),
            "secret_key_previous": world["settings"].secret_key, "secret_key_previous_until": until})
        with TestClient(create_api(rotated)) as after_rotation:
            assert after_rotation.get(link["url"]).status_code == status

    for path in (f"/api/v1/reports/{report_id}", f"/api/v1/reports/{report_id}/download"):
        assert client.get(path, headers=auth(world, "Beta-risk_manager")).status_code == 404
    assert (
        client.post(f"/api/v1/reports/{report_id}/link", headers=auth(world, "Beta-risk_manager")).status_code
        == 404
    )
    # viewers may download what their desk asked for (and get a link), but may not queue reports
    by_viewer = client.get(f"/api/v1/reports/{report_id}/download", headers=auth(world, "Alpha-viewer"))
    assert (by_viewer.status_code, by_viewer.content) == (200, download.content)
    viewer_link = client.post(f"/api/v1/reports/{report_id}/link", headers=auth(world, "Alpha-viewer")).json()
    assert client.get(viewer_link["url"]).content == download.content
    other = client.get(f"/api/v1/reports/{report_id}/download", headers=auth(world, "Beta-viewer"))
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "pnl"}, "type"),
        ({"end": "2020-01-01T00:00"}, "end"),
        ({"start": "2020-01-01T00:00", "end": "2020-01-02T00:00"}, "start"),
        ({"time_zone": "Moon/Base"}, "time_zone"),
        ({"type": "account_statement", "login": 2**70}, "login"),  # beyond the bigint column: not queued
    ],
)
def test_bad_requests_are_422_naming_the_field(
    client: TestClient, world: dict[str, Any], fields: dict[str, Any], field: str
) -> None:
    before = client.get("/api/v1/reports", headers=auth(world, "Beta-risk_manager")).json()
    refused = client.post("/api/v1/reports", json=body(**fields), headers=auth(world, "Beta-risk_manager"))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", field]
    assert client.get("/api/v1/reports", headers=auth(world, "Beta-risk_manager")).json() == before


def test_viewers_may_not_queue_reports(client: TestClient, world: dict[str, Any]) -> None:
    refused = client.post("/api/v1/reports", json=body(), headers=auth(world, "Alpha-viewer"))
    assert refused.status_code == 403
    assert client.post("/api/v1/reports", json=body()).status_code == 401
