"""Report settings, read from `REPORTS_*` environment variables.

A section of their own (not fields on `veles.config.Settings`) because only the report worker,
the report service and their tests read them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from veles.config import DATA_DIR


class ReportSettings(BaseSettings):
    """Where files go, how long links live, how far back reports may reach, how workers lease."""

    model_config = SettingsConfigDict(
        env_prefix="REPORTS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    storage_dir: Path = Field(
        default=DATA_DIR / "reports", description="Local storage when no bucket is set."
    )
    s3_bucket: str | None = Field(default=None, description="Store files in this S3 bucket instead.")
    s3_endpoint_url: str | None = Field(
        default=None, description="Any S3-compatible endpoint (MinIO, R2...)."
    )
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_timeout: float = Field(default=10.0, gt=0, description="Seconds to connect or read before giving up.")
    link_minutes: int = Field(default=15, ge=1, description="How long a signed download link works.")
    retention_days: int = Field(default=90, ge=1, description="How far back a report may reach.")
    max_range_days: int = Field(default=92, ge=1, description="The longest period one report may cover.")
    lease_seconds: float = Field(
        default=60.0, gt=0, description="A claim not renewed this long is free again."
    )
    max_attempts: int = Field(default=3, ge=1, description="Claims of one report before it fails for good.")
    poll_seconds: float = Field(default=1.0, gt=0, description="How often an idle worker looks for work.")
    live_timeout: float = Field(default=10.0, gt=0, description="Seconds to wait for the engine's figures.")
    top_accounts: int = Field(default=25, ge=1, description="Riskiest accounts listed in a daily summary.")


@lru_cache(maxsize=1)
def get_report_settings() -> ReportSettings:
    """The process-wide report settings, read once."""
    return ReportSettings()
