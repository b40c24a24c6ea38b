"""Report files on a local S3 server (moto), and a store that cannot be reached: a clear error
within the timeout, never a hang."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from models.db import session_scope, upgrade
from models.reports import ReportStatus
from models.tenancy import Role, Tenant
from tests.reports.conftest import NoEngine
from tests.stubs.smtp_stub import free_port
from veles.config import Settings
from veles.reports.errors import StorageError
from veles.reports.runner import run_one
from veles.reports.settings import ReportSettings
from veles.reports.storage import LocalStorage, S3Storage, open_storage, report_key
from veles.services import reports as service


def s3_settings(endpoint: str, bucket: str = "veles-reports") -> ReportSettings:
    return ReportSettings(
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_timeout=2.0,
    )


def test_files_round_trip_through_s3(s3_endpoint: str) -> None:
    settings = s3_settings(s3_endpoint)
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket="veles-reports")
    storage = open_storage(settings)
    assert isinstance(storage, S3Storage)
    location = storage.put(report_key(3, 17, "pdf"), b"%PDF-1.4 test", "application/pdf")
    assert location == "s3://veles-reports/tenant-3/report-17.pdf"
    assert storage.get(location) == b"%PDF-1.4 test"


def test_a_missing_bucket_is_named(s3_endpoint: str) -> None:
    with pytest.raises(StorageError, match=r"S3 bucket nowhere at .*NoSuchBucket"):
        open_storage(s3_settings(s3_endpoint, bucket="nowhere")).put("k", b"x", "text/plain")


def test_an_unreachable_s3_fails_with_the_reason() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(StorageError, match=f"S3 bucket veles-reports at {endpoint}: could not store"):
        open_storage(s3_settings(endpoint)).put("k", b"x", "text/plain")


def test_local_storage_refuses_keys_outside_its_directory(tmp_path: object) -> None:
    storage = LocalStorage(tmp_path)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="outside the report directory"):
        storage.put("../escape.pdf", b"x", "application/pdf")
    with pytest.raises(StorageError, match="could not be read"):
        storage.get("tenant-1/report-404.pdf")


def test_a_report_whose_store_is_unreachable_fails_with_the_reason(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'veles.db'}"
    upgrade(url)
    with session_scope(url) as session:
        tenant = Tenant(name="Delta")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        caller = service.Caller(tenant.id, None, Role.RISK_MANAGER)
    settings = Settings(_env_file=None, database_url=url)
    endpoint = f"http://127.0.0.1:{free_port()}"
    rsettings = s3_settings(endpoint)
    now = datetime.now(UTC)
    report = service.request_report(
        settings,
        rsettings,
        caller,
        {"type": "alerts_log", "start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()},
    )
    heard: list[dict[str, object]] = []
    run_one(url, rsettings, "s3-test", NoEngine(), open_storage(rsettings), lambda _t, m: heard.append(m))
    failed = service.get_report(settings, caller, report.id or 0)
    assert failed.status is ReportStatus.FAILED
    assert f"S3 bucket veles-reports at {endpoint}: could not store" in (failed.error or "")
    assert heard[-1] == {"report_id": report.id, "status": "failed", "error": failed.error}
