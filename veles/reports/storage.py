"""Where report files live: a local directory by default, any S3-compatible bucket when configured.

Keys are `tenant-<id>/report-<id>.<ext>`: one key per report, so a report rendered again after a
worker died overwrites its own file instead of leaving a second one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from veles.reports.errors import StorageError
from veles.reports.settings import ReportSettings


class Storage(Protocol):
    """Put and get whole files by key."""

    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store `data` under `key`; returns the location to keep in `report.file_location`."""
        ...

    def get(self, location: str) -> bytes:
        """The file stored at `location`; StorageError if it is gone or unreachable."""
        ...


def report_key(tenant_id: int, report_id: int, extension: str) -> str:
    """The one key of one report's file."""
    return f"tenant-{tenant_id}/report-{report_id}.{extension}"


class LocalStorage:
    """Files under a directory; writes go through a temporary file and a rename, so a reader never
    sees half a file and a worker killed mid-write leaves none."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, location: str) -> Path:
        path = (self.root / location).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StorageError(f"{location!r} is outside the report directory")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(f"report directory {self.root}: could not write {key}: {exc}") from exc
        return key

    def get(self, location: str) -> bytes:
        try:
            return self._path(location).read_bytes()
        except OSError as exc:
            raise StorageError(f"report file {location} could not be read: {exc.strerror}") from exc


class S3Storage:
    """A bucket on S3 or any S3-compatible server; connects and reads with a timeout and retries
    once, so an unreachable store fails the report in seconds instead of hanging the worker."""

    def __init__(self, settings: ReportSettings) -> None:
        assert settings.s3_bucket is not None
        self.bucket = settings.s3_bucket
        self.endpoint = settings.s3_endpoint_url or "AWS S3"
        secret = settings.s3_secret_access_key
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(
                connect_timeout=settings.s3_timeout,
                read_timeout=settings.s3_timeout,
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        )

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            reason = f"{error.get('Code')}: {error.get('Message')}"
        else:
            reason = str(exc)
        return StorageError(f"S3 bucket {self.bucket} at {self.endpoint}: could not {action} {key}: {reason}")

    def put(self, key: str, data: bytes, content_type: str) -> str:
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("store", key, exc) from exc
        return f"s3://{self.bucket}/{key}"

    def get(self, location: str) -> bytes:
        key = location.removeprefix(f"s3://{self.bucket}/")
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("read", key, exc) from exc
        return body


def open_storage(settings: ReportSettings) -> Storage:
    """S3 when a bucket is configured, the local directory otherwise."""
    if settings.s3_bucket:
        return S3Storage(settings)
    return LocalStorage(settings.storage_dir)
