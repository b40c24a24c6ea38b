"""`veles demo` runs as development and keeps its own CREDENTIALS_KEYS key (mode 0600), so "Add
connection" works in the demo; production gets no such key (it refuses to start without one)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from veles.cli.demo import demo_settings
from veles.config import Environment, get_settings
from veles.services.credentials import decrypt, encrypt
from veles.services.demo import development_credentials_key


def test_the_key_is_made_once_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / ".veles" / "credentials.key"
    key = development_credentials_key(path)
    Fernet(key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert development_credentials_key(path) == key  # a restart opens what the last run stored
    stored = encrypt([key], "manager-password")
    assert decrypt([development_credentials_key(path)], stored) == "manager-password"


def test_the_demo_runs_as_development_with_a_kept_key(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VELES_ENV")
    monkeypatch.delenv("CREDENTIALS_KEYS", raising=False)
    try:
        settings = demo_settings()
        assert settings.veles_env == Environment.DEVELOPMENT
        assert settings.credentials_keys is not None
        kept = (tmp_path / ".veles" / "credentials.key").read_text().strip()
        assert settings.credentials_keys.get_secret_value() == kept
        monkeypatch.setenv("VELES_ENV", "production")
        monkeypatch.delenv("CREDENTIALS_KEYS")
        assert demo_settings().credentials_keys is None  # production: no key made up for it
    finally:
        get_settings.cache_clear()
