"""The attack of issue 13: forge tokens with the public development SECRET_KEY.

Against an app configured for production (a real random key), every forgery is refused with 401,
with or without a `kid` header naming the development key. And a production process refuses to
start on the development key at all: `veles engine`, `veles reports serve`, `veles portal` and
`veles demo` run as real subprocesses and exit with code 2 and one line per problem.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import select

from models.db import session_scope
from models.tenancy import Tenant, User
from veles.api import create_api
from veles.config import DEVELOPMENT_SECRET_KEY, Environment, Settings
from veles.services.credentials import generate_key
from veles.services.demo import seed_demo
from veles.services.signing_keys import key_id
from veles.services.tokens import Identity, issue_token

pytestmark = [pytest.mark.redis]
VELES = str(Path(sys.executable).parent / "veles")
ROOT = Path(__file__).resolve().parents[2]


def production_settings(database_url: str, redis_url: str | None) -> Settings:
    return Settings(
        _env_file=None, veles_env=Environment.PRODUCTION, secret_key=SecretStr(secrets.token_hex(32)),
        credentials_keys=SecretStr(generate_key()), database_url=database_url, redis_url=redis_url,
        ray_address=None,
    )


@pytest.fixture
def production(tmp_path: Path, redis_url: str) -> Iterator[tuple[TestClient, Settings, Identity]]:
    """A production-configured API over a seeded database, and the demo user it holds."""
    settings = production_settings(f"sqlite:///{tmp_path / 'veles.db'}", redis_url)
    seed_demo(settings)
    with session_scope(settings.database_url) as session:
        user = session.exec(select(User).where(User.email == settings.demo_email)).one()
        tenant = session.get(Tenant, user.tenant_id)
        assert user.id is not None
        assert tenant is not None
        identity = Identity(user_id=user.id, tenant_id=user.tenant_id, role=user.role, email=user.email,
                            plan=tenant.plan, version=user.token_version)
    with TestClient(create_api(settings)) as client:
        yield client, settings, identity


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_token_forged_with_the_development_key_is_refused(
    production: tuple[TestClient, Settings, Identity],
) -> None:
    client, settings, identity = production
    real = issue_token(identity, settings.secret_key.get_secret_value(), 5)
    assert _me(client, real) == 200  # signed with the real key
    forged = issue_token(identity, DEVELOPMENT_SECRET_KEY, 5)
    assert jwt.get_unverified_header(forged)["kid"] == key_id(DEVELOPMENT_SECRET_KEY)
    assert _me(client, forged) == 401
    claims = jwt.decode(forged, options={"verify_signature": False})
    for headers in ({}, {"kid": key_id(settings.secret_key.get_secret_value())}):  # no kid; our kid
        assert _me(client, jwt.encode(claims, DEVELOPMENT_SECRET_KEY, "HS256", headers=headers)) == 401


def test_a_refresh_token_forged_with_the_development_key_is_refused(
    production: tuple[TestClient, Settings, Identity],
) -> None:
    client, _, identity = production
    claims = {"typ": "refresh", "sub": str(identity.user_id), "tenant_id": identity.tenant_id,
              "role": identity.role.value, "fam": "forged", "jti": "x", "exp": 4102444800}
    forged = jwt.encode(claims, DEVELOPMENT_SECRET_KEY, "HS256",
                        headers={"kid": key_id(DEVELOPMENT_SECRET_KEY)})
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": forged})
    assert response.status_code == 401, response.text


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "CREDENTIALS_KEYS"}}
    environment.update(env)
    return subprocess.run(argv, env=environment, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize("argv", [["engine"], ["reports", "serve"], ["portal"], ["demo"]],
                         ids=["engine", "report workers", "portal", "demo"])
def test_a_production_process_refuses_the_development_key(argv: list[str], tmp_path: Path) -> None:
    result = _run([VELES, *argv], VELES_ENV="production", SECRET_KEY=DEVELOPMENT_SECRET_KEY,
                  DATABASE_URL=f"sqlite:///{tmp_path / 'veles.db'}")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    process = "veles " + " ".join(argv)
    assert lines == [
        f"{process}: refusing to start (VELES_ENV=production): SECRET_KEY is the public development value: "
        "anyone could forge tokens with it; set a random one (e.g. `openssl rand -hex 32`)",
        f"{process}: refusing to start (VELES_ENV=production): CREDENTIALS_KEYS is not set: stored MT5 "
        "passwords cannot be encrypted; set a Fernet key, e.g. from `veles doctor --new-credentials-key`",
    ]


def test_the_engine_refuses_a_short_key_and_a_superuser_database_role(pg_url: str) -> None:
    result = _run([VELES, "engine"], VELES_ENV="production", SECRET_KEY="too-short-a-key",
                  CREDENTIALS_KEYS=generate_key(), DATABASE_URL=pg_url)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    problems = [line.split("(VELES_ENV=production): ", 1)[1] for line in lines]
    assert problems == [
        "SECRET_KEY is 15 bytes, shorter than 32: use a long random value (e.g. `openssl rand -hex 32`)",
        "database role 'postgres' is a superuser, so row-level security does not apply to it: connect as the "
        "veles_app role (`veles db create-roles`, README: Security)",
    ]


def test_the_development_environment_is_what_tests_and_the_demo_run_as() -> None:
    assert Settings(_env_file=None).veles_env == Environment.DEVELOPMENT  # tests/conftest.py sets it
    environment = {k: v for k, v in os.environ.items() if k != "VELES_ENV"}
    unset = subprocess.run([sys.executable, "-c", "from veles.config import Settings; "
                            "print(Settings(_env_file=None).veles_env.value)"],
                           env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert unset.stdout.strip() == "production"  # unless told otherwise
