"""A real server's connection, `https://host:port`, on the real PostgreSQL: the form takes it (and
refuses what is not host and port), the password is stored encrypted, and the live test runs the
same check as `veles mt5 check` against the fake MT5 Web API over TLS (a broker's private CA,
trusted through MT5_CA_BUNDLE): the JSON summary when the manager can read, or one line naming the
failing step and the server's retcode. The API's /test route and the portal's "Test" button both
call this; through the API the stored connection is read by the Web API gateway, and an untrusted
certificate or a wrong password is a clear failure that never echoes the password."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import delete, select

from models.accounts import ClientAccount
from models.connections import Mt5Connection
from models.db import session_scope, tenant_session
from tests.stubs.mt5_webapi import (
    MANAGER_LOGIN,
    MANAGER_PASSWORD,
    make_fake,
    make_feed_fake,
    self_signed_tls,
    serving,
)
from veles.api.app import create_api
from veles.config import Settings
from veles.services.connections import check_connection, create_connection, gateway_spec
from veles.services.credentials import decrypt, parse_keys

from .conftest import World


@pytest.fixture
def clean(world: World) -> Iterator[None]:
    """No connection left after a test; their accounts first (the engine a first connection
    started may have written them by now, as `delete_connection` knows)."""
    yield
    with session_scope(world.settings.database_url) as session:
        session.exec(delete(ClientAccount))
        for row in session.exec(select(Mt5Connection)).all():
            session.delete(row)


@pytest.fixture(scope="module")
def tls_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The fake Web API over TLS with a certificate of a private CA: (https URL, CA file)."""
    ca, cert, key = self_signed_tls(tmp_path_factory.mktemp("tls"))
    fake, _ = make_fake(accounts=5)
    with serving(fake, tls=(cert, key)) as url:
        yield url, ca


def _add(settings: Settings, tenant_id: int, server: str, password: str = MANAGER_PASSWORD) -> int:
    with tenant_session(settings.database_url, tenant_id) as db:
        return create_connection(db, settings, tenant_id,
                                 {"server": server, "login": MANAGER_LOGIN, "password": password}).id


def _check(settings: Settings, tenant_id: int, row_id: int) -> tuple[bool, str, Mt5Connection]:
    with tenant_session(settings.database_url, tenant_id) as db:
        check = check_connection(db, settings, tenant_id, row_id)
        db.expire_on_commit = False
        row = db.get(Mt5Connection, row_id)
        assert row is not None
    return check.ok, check.message, row


def test_the_live_test_prints_the_check_summary(
    world: World, tls_fake: tuple[str, Path], clean: None
) -> None:
    url, ca = tls_fake
    settings = world.settings.model_copy(update={"mt5_ca_bundle": str(ca)})
    row_id = _add(settings, world.a, f"{url}/")
    ok, message, row = _check(settings, world.a, row_id)
    assert ok, message
    summary = json.loads(message)
    assert summary["server"] == url
    assert summary["users"] == 5
    assert set(summary) == {"server", "version_access", "symbols", "groups", "users", "positions"}
    assert row.status.value == "connected"
    assert row.last_error is None
    assert row.server == url  # kept without the trailing slash
    assert MANAGER_PASSWORD.encode() not in row.credentials_encrypted
    assert decrypt(parse_keys(settings.credentials_keys.get_secret_value()),  # type: ignore[union-attr]
                   row.credentials_encrypted) == MANAGER_PASSWORD
    spec = gateway_spec(settings, row, MANAGER_PASSWORD)
    assert spec.kind == "webapi"
    assert spec.options == {"url": url, "ca_bundle": str(ca)}
    assert spec.reconcile_every_s == settings.reconcile_every_s


def test_a_failing_check_names_the_step_and_the_retcode(
    world: World, tls_fake: tuple[str, Path], clean: None
) -> None:
    url, ca = tls_fake
    settings = world.settings.model_copy(update={"mt5_ca_bundle": str(ca)})
    row_id = _add(settings, world.a, url, password="not-the-password")
    ok, message, row = _check(settings, world.a, row_id)
    assert not ok
    assert message.startswith("mt5 check failed at auth/answer: wrong manager password")
    assert message.endswith("(retcode 3006 Invalid account password)")
    assert "not-the-password" not in message
    assert row.status.value == "failed"
    assert row.last_error == message
    # without the broker's CA the certificate is not trusted: said, never skipped
    untrusted = _add(world.settings, world.b, url)
    ok, message, _ = _check(world.settings, world.b, untrusted)
    assert not ok
    assert message.startswith("mt5 check failed at auth/start: TLS certificate not trusted")


def test_an_https_web_api_server_is_added_and_its_test_reads_the_server(
        world: World, clean: None, redis_url: str, tmp_path: Path) -> None:
    ca, cert, key = self_signed_tls(tmp_path)
    fake, broker, _ = make_feed_fake(accounts=4)
    settings = world.settings.model_copy(update={"mt5_ca_bundle": str(ca)})
    with serving(fake, tls=(cert, key)) as url, TestClient(create_api(settings)) as api:
        headers = world.headers(world.a)
        created = api.post("/api/v1/connections", headers=headers,
                           json={"server": url + "/", "login": MANAGER_LOGIN, "password": MANAGER_PASSWORD})
        assert created.status_code == 201, created.text
        assert created.json()["server"] == url  # stored without the trailing slash
        with session_scope(world.settings.database_url) as session:
            row = session.exec(select(Mt5Connection)).one()
            assert MANAGER_PASSWORD.encode() not in row.credentials_encrypted
        result = api.post(f"/api/v1/connections/{created.json()['id']}/test", headers=headers).json()
        assert result["ok"] is True, result
        assert result["accounts"] == len(broker.accounts())

        wrong = api.patch(f"/api/v1/connections/{created.json()['id']}", headers=headers,
                          json={"password": "guess"})
        assert wrong.status_code == 200
        result = api.post(f"/api/v1/connections/{created.json()['id']}/test", headers=headers).json()
        assert result["ok"] is False
        assert "wrong manager password" in result["message"]
        assert "guess" not in str(result)


def test_an_untrusted_certificate_is_a_clear_failure(
        world: World, clean: None, redis_url: str, tmp_path: Path) -> None:
    _, cert, key = self_signed_tls(tmp_path)
    fake, _, _ = make_feed_fake(accounts=2)
    with serving(fake, tls=(cert, key)) as url, TestClient(create_api(world.settings)) as api:
        headers = world.headers(world.a)
        created = api.post("/api/v1/connections", headers=headers,
                           json={"server": url, "login": MANAGER_LOGIN, "password": MANAGER_PASSWORD}).json()
        result = api.post(f"/api/v1/connections/{created['id']}/test", headers=headers).json()
        assert result["ok"] is False
        assert "certificate not trusted" in result["message"]


@pytest.mark.parametrize(
    ("server", "says"),
    [
        ("http://mt5.broker.example:443", "https://host:port"),
        ("https://mt5.broker.example:70000", "port 1-65535"),
        ("https://mt5 broker.example", "https://host:port"),
        ("https://mt5.broker.example/api/path", "https://host:port"),
        ("https://host", "https://host:port"),
        ("https://host:0", "https://host:port"),
        ("https://:443", "https://host:port"),
        ("https://a b:1", "https://host:port"),
    ],
)
def test_what_is_not_https_host_port_is_refused_naming_the_server(
        api: TestClient, world: World, clean: None, server: str, says: str) -> None:
    response = api.post("/api/v1/connections", headers=world.headers(world.a),
                        json={"server": server, "login": 1, "password": "p"})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert "server" in [error["loc"][-1] for error in errors]
    assert says in str(errors)
    assert api.get("/api/v1/connections", headers=world.headers(world.a)).json() == []
