"""Acceptance: a property-based run of /api/openapi.json (schemathesis) against the running app
finds no server error, and every 422 names the refused field.

The app runs in its own uvicorn process joined to the test Ray cluster (no engine is running for
the fuzzed tenant, so the live routes answer their documented 503), on the test PostgreSQL and
Redis. Requests carry a tenant admin's token, so generated input gets past authentication and
reaches validation and the services; the tenant is created for this module alone, so whatever
the run adds, changes or deletes touches nobody else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from models.db import session_scope
from models.tenancy import Plan, Role, Tenant, User
from veles.services.auth import Identity, issue_token
from veles.services.ray_runtime import gcs_address

from .conftest import World
from .servers import api_server, environment_of

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def fuzz_token(world: World) -> str:
    """A tenant admin of a tenant made for this run (Enterprise, so every feature is allowed)."""
    with session_scope(world.settings.database_url) as session:
        tenant = Tenant(name="Api Fuzz Broker", plan=Plan.ENTERPRISE)
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        user = User(tenant_id=tenant.id, email="admin@fuzz.test", password_hash="x", role=Role.TENANT_ADMIN)
        session.add(user)
        session.flush()
        assert user.id is not None
        identity = Identity(user_id=user.id, tenant_id=tenant.id, role=Role.TENANT_ADMIN, email=user.email)
    return issue_token(identity, world.settings.secret_key.get_secret_value(), 60)


@pytest.fixture(scope="module")
def fuzz_server(
    world: World, ray_local: None, redis_url_module: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    env = environment_of(world.settings) | {"RAY_ADDRESS": gcs_address(), "API_IP_LIMIT": str(10**9)}
    log = Path(tmp_path_factory.mktemp("fuzz")) / "server.log"
    with api_server(env, log, factory="tests.api.servers:unlimited_api") as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(fuzz_server: str) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_server}/api/openapi.json")


@schemathesis.check
def names_the_field(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 422 says which field it refused: FastAPI's shape, `detail` a list of errors with a
    non-empty `loc` and a message."""
    if response.status_code != 422:
        return None
    detail = response.json().get("detail")
    assert isinstance(detail, list), f"422 without a list of field errors: {response.text}"
    assert detail, "422 with an empty error list"
    for error in detail:
        assert error.get("loc"), f"422 error that names no field: {error}"
        assert error.get("msg"), f"422 error without a message: {error}"
    return True


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_error_and_422_names_the_field(case: Any, fuzz_token: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_token}"},
        checks=[not_a_server_error, names_the_field],
        timeout=60,
    )
