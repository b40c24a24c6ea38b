"""Routes commit before they answer, on a real uvicorn server and the real PostgreSQL: a write
through the platform session is there for a read that starts the moment the answer arrives, and a
commit that fails is the client's 5xx, never a 2xx for a lost write. The same route with FastAPI's
default dependency scope (commit after the answer) shows the read would otherwise miss it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlmodel import func, select

from models.audit import AuditLog
from models.db import session_scope
from models.tenancy import User
from tests.auth_support import auth_db, auth_settings, make_user

from .servers import api_server, environment_of

__all__ = ["auth_db"]
PORT = 3262  # this suite's helper range for H4: 3260-3279


@pytest.fixture(scope="module")
def server(auth_db: str, redis_url_module: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = environment_of(auth_settings(auth_db, redis_url_module))
    log = tmp_path_factory.mktemp("units") / "api.log"
    with api_server(env, log, port=PORT, factory="tests.api.servers:probe_api") as url:
        yield url


def written(database_url: str, target: str) -> int:
    with session_scope(database_url) as db:
        statement = select(func.count()).where(AuditLog.action == "probe.write", AuditLog.target == target)
        return int(db.exec(statement).one())


def test_a_platform_write_is_there_when_the_answer_arrives(server: str, auth_db: str) -> None:
    target = uuid.uuid4().hex
    response = httpx.post(f"{server}/api/v1/probe/unit/{target}", timeout=30)
    assert response.status_code == 201
    assert written(auth_db, target) == 1


def test_with_the_default_scope_the_answer_comes_before_the_commit(server: str, auth_db: str) -> None:
    """Why PlatformUnit exists: this is what `Depends(platform_session)` alone does."""
    target = uuid.uuid4().hex
    response = httpx.post(f"{server}/api/v1/probe/after-response/{target}", timeout=30)
    assert response.status_code == 201
    assert written(auth_db, target) == 0


def test_a_failed_commit_is_a_5xx_and_nothing_is_stored(server: str, auth_db: str) -> None:
    user = make_user(auth_db)
    response = httpx.post(f"{server}/api/v1/probe/duplicate/{user.email}", timeout=30)
    assert response.status_code == 500
    with session_scope(auth_db) as db:
        assert len(db.exec(select(User).where(User.email == user.email)).all()) == 1

