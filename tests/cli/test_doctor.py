"""`veles doctor`: the production checks and whether the database, Redis and Ray answer, one line
each, exit 0 only when every one passes. Real services: PostgreSQL with a role under row-level
security, the test Redis, a local Ray cluster; and closed ports for the failures."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.conftest import PG_ADMIN
from veles.cli import app
from veles.config import get_settings
from veles.services.credentials import generate_key
from veles.services.ray_runtime import gcs_address

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.ray]
ROLE = "veles_doctor_test"  # a login role with neither SUPERUSER nor BYPASSRLS


@pytest.fixture
def plain_role_url(pg_url: str) -> Iterator[str]:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(f"CREATE ROLE {ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    yield make_url(pg_url).set(username=ROLE).render_as_string(hide_password=False)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


def doctor(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, list[str]]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["doctor", "--timeout", "2"])
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output.strip().splitlines()


def test_all_checks_pass(monkeypatch: pytest.MonkeyPatch, plain_role_url: str, redis_url: str,
                         ray_local: None) -> None:
    code, lines = doctor(monkeypatch, SECRET_KEY=secrets.token_hex(32), CREDENTIALS_KEYS=generate_key(),
                         DATABASE_URL=plain_role_url, REDIS_URL=redis_url, RAY_ADDRESS=gcs_address())
    assert code == 0, lines
    assert lines[0] == "VELES_ENV=development"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "ok    SECRET_KEY", "ok    CREDENTIALS_KEYS", "ok    database role", "ok    database", "ok    redis",
        "ok    ray"]
    assert f"'{ROLE}' is subject to row-level security" in lines[3]


def test_each_failure_is_one_line_and_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = doctor(monkeypatch, SECRET_KEY="short", CREDENTIALS_KEYS="not-a-fernet-key",
                         DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/veles",
                         REDIS_URL="redis://127.0.0.1:1/0", RAY_ADDRESS="127.0.0.1:1")
    assert code == 1
    assert [line.split(":")[0] for line in lines[1:]] == [
        "FAIL  SECRET_KEY", "FAIL  CREDENTIALS_KEYS", "FAIL  database role", "FAIL  database", "FAIL  redis",
        "FAIL  ray"]
    assert "shorter than 32" in lines[1]
    assert "key 1 is not a Fernet key" in lines[2]
    assert "cannot check the database role" in lines[3]
    assert "does not answer" in lines[4]
    assert "does not answer" in lines[5]
    assert "127.0.0.1:1 does not accept connections" in lines[6]


def test_a_superuser_database_role_fails(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> None:
    code, lines = doctor(monkeypatch, SECRET_KEY=secrets.token_hex(32), CREDENTIALS_KEYS=generate_key(),
                         DATABASE_URL=pg_url, REDIS_URL="", RAY_ADDRESS="")
    assert code == 1
    assert lines[3].startswith("FAIL  database role: database role 'postgres' is a superuser")
    assert lines[4].startswith("ok    database")


def test_new_credentials_key_prints_a_usable_key() -> None:
    result = CliRunner().invoke(app, ["doctor", "--new-credentials-key"])
    assert result.exit_code == 0
    from cryptography.fernet import Fernet

    assert Fernet(result.output.strip()).decrypt(Fernet(result.output.strip()).encrypt(b"x")) == b"x"


def test_a_bypassrls_role_fails_though_not_a_superuser(pg_url: str) -> None:
    from veles.config import Settings
    from veles.services.preflight import check_database_role

    bypass = "veles_doctor_bypass_test"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {bypass}")
        conn.execute(f"CREATE ROLE {bypass} LOGIN NOSUPERUSER BYPASSRLS")
    try:
        url = make_url(pg_url).set(username=bypass).render_as_string(hide_password=False)
        check = check_database_role(Settings(_env_file=None, database_url=url))
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {bypass}")
    assert check.problems == (
        f"database role '{bypass}' has BYPASSRLS, so row-level security does not apply to it: connect as the "
        "veles_app role (`veles db create-roles`, README: Security)",)
