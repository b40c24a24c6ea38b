"""Settings: embedded defaults when nothing is set, environment when it is."""

from __future__ import annotations

import pytest

from veles.config import Settings


def test_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url.startswith("sqlite:///")
    assert settings.redis_url is None
    assert not settings.uses_redis
    assert settings.ray_address is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@db/veles")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("PUBLISH_HZ", "10")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+psycopg://u@db/veles"
    assert settings.uses_redis
    assert settings.publish_hz == 10


def test_invalid_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLISH_HZ", "0")
    with pytest.raises(ValueError, match="publish_hz"):
        Settings(_env_file=None)  # type: ignore[call-arg]
