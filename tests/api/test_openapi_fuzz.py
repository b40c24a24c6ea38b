"""Acceptance: a property-based run of /api/openapi.json (schemathesis) against the running app
finds no server error, every status it answers is one the document declares for that operation
(`status_code_conformance`), and every 422 names the refused field.

The app runs in its own uvicorn process joined to the test Ray cluster, where the fuzzed tenant's
engine runs (with no MT5 connection: an empty book), on the test PostgreSQL and Redis. Requests
carry a tenant admin's token, so generated input gets past authentication and reaches
validation and the services; the tenant is created for this module alone, so whatever
the run adds, changes or deletes touches nobody else.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, status_code_conformance

from models.db import session_scope
from models.tenancy import Plan, Role, Tenant, User
from veles.services.auth import Identity, issue_token
from veles.services.engine import resume_tenant, stop_engine
from veles.services.ray_runtime import gcs_address

from .conftest import World
from .servers import api_server, environment_of


@pytest.fixture(scope="module")
def fuzz_tenant(world: World, ray_local: None) -> Iterator[str]:
    """A tenant made for this run (Enterprise, so every feature is allowed), resumed as the admin
    page does (no MT5 connection yet, so no engine runs for it and its book is empty);
    yields its admin's token."""
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
    asyncio.run(resume_tenant(world.settings, identity.tenant_id))
    yield issue_token(identity, world.settings.secret_key.get_secret_value(), 60)
    asyncio.run(stop_engine(world.settings))


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
    """A 422 says which field it refused, in the API's one shape (`veles.api.errors`): `detail`, a
    list of errors each with a `loc` naming where and which field, a `msg` and a `type`, and
    never the value that was sent."""
    if response.status_code != 422:
        return None
    detail = response.json().get("detail")
    assert isinstance(detail, list), f"422 without field errors: {response.text}"
    assert detail, "422 with an empty error list"
    for error in detail:
        assert error.get("loc"), f"422 error that names no field: {error}"
        assert error["loc"][0] in {"body", "query", "path", "header"}, f"422 error from where? {error}"
        assert error.get("msg"), f"422 error without a message: {error}"
        assert set(error) == {"loc", "msg", "type"}, f"422 error not in the documented shape: {error}"
    return True


# Per operation and mode. Every run draws new examples (no example database), so runs add up;
# VELES_FUZZ_EXAMPLES=200 makes one run go deeper (README, "The two commands").
MAX_EXAMPLES = int(os.environ.get("VELES_FUZZ_EXAMPLES", "10"))


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_no_server_error_and_422_names_the_field(
    api_schema: Any, fuzz_tenant: str, mode: GenerationMode
) -> None:
    """Every operation, with valid (`positive`) and invalid (`negative`) input. Hypothesis is
    driven directly rather than through schemathesis' pytest plugin, which does not load under
    this pytest; a failure names the operation and the minimal failing request."""
    headers = {"Authorization": f"Bearer {fuzz_tenant}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, timeout=60,
                                   checks=[not_a_server_error, status_code_conformance, names_the_field])

        try:
            run()
        except Unsatisfiable:
            # an operation without parameters or body has no invalid input to send
            assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid input could be generated"
        except (Exception, BaseExceptionGroup) as exc:  # every operation runs; failures reported together
            failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
