"""A tenant's MT5 manager connections: add, list, change, remove, and test them live.

The manager password is encrypted with `veles.services.credentials` before it reaches a row and is
never part of what these functions return (`ConnectionView` has no field for it), nor of any
message they raise or log. Adding a connection counts against the tenant's plan
(`veles.plans.check_usage`): one more distinct trade server, the accounts already known.

Functions take the caller's tenant session (`models.db.tenant_session`) and tenant id, so the API
and the portal share them; row-level security confines the session and the explicit tenant filter
keeps SQLite (which has none) just as safe.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import delete, func, text
from sqlmodel import Session, col, select

from actors.feeds import StoredFeed, stored_connection_id
from models.accounts import Book, ClientAccount
from models.columns import utcnow
from models.connections import ConnectionStatus, Mt5Connection, Platform
from models.db import tenant_session
from models.tenancy import Tenant
from veles.config import Settings
from veles.mt5.connect import GatewaySpec, open_gateway
from veles.mt5.gateway import GatewayError
from veles.mt5.webapi.check import check_blocking
from veles.mt5.webapi.client import WebApiSettings
from veles.plans import UPGRADE_PATH, PlanLimitExceeded, check_usage, is_plan_limit
from veles.risk.events import AccountSnapshot
from veles.services.audit import record
from veles.services.credentials import CredentialsError, decrypt, encrypt, parse_keys
from veles.services.errors import Conflict, NotFound, PlanLimit, validated

SIMULATOR_SCHEME = "sim://"  # a server address that names the built-in simulated trade server
WEBAPI_SCHEME = "https://"  # a real MT5 server's Web API (veles/mt5/webapi)
_HOST_PORT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?:(\d{1,5})$")
_SIM_NAME = re.compile(r"^sim://[A-Za-z0-9_-]{1,64}$")
SIMULATED_ACCOUNTS = 5  # accounts of a stored simulated server (sim://NAME)
PLAN_LOCK_SPACE = 0x56_4C_50  # "VLP": the advisory-lock key space of plan admissions (see `admit`)
SIMULATED_WARMUP_S = 30.0  # simulated trading before a sim:// server is first seen: some positions
_ERROR_CHARS = 2000  # Mt5Connection.last_error's length


def _check_server(server: str) -> str:
    server = server.strip()
    if server.startswith(SIMULATOR_SCHEME):
        if not _SIM_NAME.match(server):
            raise ValueError("a simulated server is sim://NAME (letters, digits, - and _)")
        return server
    address = server.removeprefix(WEBAPI_SCHEME).removesuffix("/")
    match = _HOST_PORT.match(address)
    if match is None or not 1 <= int(match.group(1)) <= 65535:
        raise ValueError("must be https://host:port (the MT5 Web API, port 1-65535), host:port or sim://NAME")
    return f"{WEBAPI_SCHEME}{address}" if server.startswith(WEBAPI_SCHEME) else address


class ConnectionForm(BaseModel):
    """A new connection: the trade server, the manager login and its password."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    platform: Platform = Platform.MT5
    server: str = Field(min_length=1, max_length=255,
                        description="https://host:port (the MT5 Web API), or sim://NAME (simulator).")
    login: int = Field(gt=0, lt=2**63, description="Manager login.")
    password: SecretStr = Field(min_length=1, max_length=256, description="Stored encrypted.")

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        return _check_server(value)


class ConnectionChange(BaseModel):
    """A partial update: only the fields given change; a new password replaces the stored one."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    platform: Platform | None = None
    server: str | None = Field(default=None, min_length=1, max_length=255)
    login: int | None = Field(default=None, gt=0, lt=2**63)
    password: SecretStr | None = Field(default=None, min_length=1, max_length=256)

    @field_validator("server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        return None if value is None else _check_server(value)


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """A connection as it may be shown: everything but the credentials."""

    id: int
    platform: Platform
    server: str
    login: int
    status: ConnectionStatus
    last_error: str | None
    last_connected_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # the portal's plan page (a path on the same origin as the API) when `last_error` is a plan
    # limit the engine met (the 101st account on Starter, a second server), else None
    upgrade_url: str | None = None

    @classmethod
    def of(cls, row: Mt5Connection) -> ConnectionView:
        """The visible part of a stored row."""
        assert row.id is not None
        return cls(row.id, row.platform, row.server, row.login, row.status, row.last_error,
                   row.last_connected_at, row.created_at, row.updated_at,
                   UPGRADE_PATH if is_plan_limit(row.last_error) else None)


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """The outcome of a live test: `ok`, and what the server said (accounts seen, or why not)."""

    ok: bool
    status: ConnectionStatus
    message: str
    accounts: int | None = None


def _keys(settings: Settings) -> list[str]:
    secret = settings.credentials_keys
    return parse_keys(secret.get_secret_value() if secret is not None else "")


def _row(db: Session, tenant_id: int, connection_id: int, *, lock: bool = False) -> Mt5Connection:
    query = select(Mt5Connection).where(Mt5Connection.tenant_id == tenant_id,
                                        Mt5Connection.id == connection_id)
    row = db.exec(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"No connection {connection_id}.")
    return row


def _check_plan(db: Session, tenant_id: int, servers: set[str]) -> None:
    """Refuse when the distinct servers (after the change) exceed the tenant's plan."""
    tenant = db.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"No tenant {tenant_id}.")
    accounts = db.exec(select(func.count()).select_from(ClientAccount)
                       .where(ClientAccount.tenant_id == tenant_id)).one()
    try:
        check_usage(str(tenant.plan), len(servers), int(accounts))
    except PlanLimitExceeded as exc:
        raise PlanLimit(f"Upgrade to add this connection: {exc}.") from None


def _servers(db: Session, tenant_id: int, excluding: int | None = None) -> set[str]:
    rows = db.exec(select(Mt5Connection).where(Mt5Connection.tenant_id == tenant_id)).all()
    return {row.server for row in rows if row.id != excluding}


def _refuse_duplicate(
    db: Session, tenant_id: int, server: str, login: int, excluding: int | None = None
) -> None:
    clash = db.exec(select(Mt5Connection).where(
        Mt5Connection.tenant_id == tenant_id, Mt5Connection.server == server, Mt5Connection.login == login
    )).first()
    if clash is not None and clash.id != excluding:
        raise Conflict(f"Connection {clash.id} already uses login {login} on {server}.")


def list_connections(db: Session, tenant_id: int) -> list[ConnectionView]:
    """The tenant's connections, oldest first."""
    rows = db.exec(select(Mt5Connection).where(Mt5Connection.tenant_id == tenant_id)
                   .order_by(col(Mt5Connection.id))).all()
    return [ConnectionView.of(row) for row in rows]


def get_connection(db: Session, tenant_id: int, connection_id: int) -> ConnectionView:
    """One connection of the tenant; NotFound otherwise."""
    return ConnectionView.of(_row(db, tenant_id, connection_id))


def create_connection(
    db: Session, settings: Settings, tenant_id: int, form: ConnectionForm | Mapping[str, Any], *,
    actor: int | None = None,
) -> ConnectionView:
    """Store a new connection (status pending until tested or fed). InvalidInput names a bad
    field; Conflict for a duplicate login on the server or a plan that allows no more servers."""
    data = validated(ConnectionForm, form)
    _refuse_duplicate(db, tenant_id, data.server, data.login)
    _check_plan(db, tenant_id, _servers(db, tenant_id) | {data.server})
    row = Mt5Connection(
        tenant_id=tenant_id, platform=data.platform, server=data.server, login=data.login,
        credentials_encrypted=encrypt(_keys(settings), data.password.get_secret_value()),
    )
    db.add(row)
    db.flush()
    record(db, "connection.create", tenant_id=tenant_id, actor_user_id=actor, target=f"connection:{row.id}",
           details={"server": data.server, "login": data.login})  # never the password
    return ConnectionView.of(row)


def update_connection(
    db: Session, settings: Settings, tenant_id: int, connection_id: int,
    change: ConnectionChange | Mapping[str, Any], *, actor: int | None = None,
) -> ConnectionView:
    """Change the fields given. A new server, login or password sets the status back to pending:
    what was tested before no longer says anything about the new details."""
    data = validated(ConnectionChange, change)
    row = _row(db, tenant_id, connection_id)
    server, login = data.server or row.server, data.login or row.login
    _refuse_duplicate(db, tenant_id, server, login, excluding=connection_id)
    if server != row.server:
        _check_plan(db, tenant_id, _servers(db, tenant_id, excluding=connection_id) | {server})
    if data.platform is not None:
        row.platform = data.platform
    if (server, login) != (row.server, row.login) or data.password is not None:
        row.status, row.last_error = ConnectionStatus.PENDING, None
    row.server, row.login = server, login
    if data.password is not None:
        row.credentials_encrypted = encrypt(_keys(settings), data.password.get_secret_value())
    row.updated_at = utcnow()
    db.add(row)
    record(db, "connection.update", tenant_id=tenant_id, actor_user_id=actor,
           target=f"connection:{connection_id}",
           details={"fields": sorted(data.model_dump(exclude_unset=True))})  # names, never the password
    db.flush()
    return ConnectionView.of(row)


def delete_connection(db: Session, tenant_id: int, connection_id: int, *, actor: int | None = None) -> None:
    """Remove a connection and the client accounts known through it (the MT5 server keeps them;
    adding the connection again brings them back).

    The row is locked first: the engine admitting this connection at the same moment writes its
    accounts under the same lock (`_connect`), so either its accounts are committed before this
    delete reads them, or it finds the row gone. Without the lock an account written between the
    two deletes broke the foreign key (seen in CI)."""
    row = _row(db, tenant_id, connection_id, lock=True)
    db.exec(delete(ClientAccount).where(
        col(ClientAccount.tenant_id) == tenant_id, col(ClientAccount.connection_id) == connection_id
    ))
    db.delete(row)
    record(db, "connection.delete", tenant_id=tenant_id, actor_user_id=actor,
           target=f"connection:{connection_id}")
    db.flush()


def gateway_spec(settings: Settings, row: Mt5Connection, password: str) -> GatewaySpec:
    """How to reach a stored connection. `https://host:port` is a real server's MT5 Web API (its
    certificate checked against the system's trust store, or `MT5_CA_BUNDLE`); `sim://NAME` is the
    built-in simulated server (it accepts the `SIMULATOR_PASSWORD` setting); a bare host:port would
    need the Windows Manager API, which this Veles server does not have: opening it is a
    GatewayError saying so.

    Each simulated server's seed and logins derive from its NAME, so two of them (or one beside
    the demo's broker, logins from 100000) neither share accounts nor collide in the book.
    """
    assert row.id is not None
    if row.server.startswith(WEBAPI_SCHEME):
        options: dict[str, Any] = {"url": row.server}
        if settings.mt5_ca_bundle:
            options["ca_bundle"] = settings.mt5_ca_bundle
        return GatewaySpec(kind="webapi", connection_id=stored_connection_id(row.id), options=options,
                           interval=settings.gateway_interval, login=row.login, password=password,
                           reconcile_every_s=settings.reconcile_every_s)
    if not row.server.startswith(SIMULATOR_SCHEME):
        return GatewaySpec(kind="mt5-manager", connection_id=stored_connection_id(row.id),
                           options={"server": row.server}, interval=settings.gateway_interval,
                           login=row.login, password=password, reconcile_every_s=settings.reconcile_every_s)
    name = zlib.crc32(row.server[len(SIMULATOR_SCHEME):].encode())
    return GatewaySpec(
        kind="simulator",
        connection_id=stored_connection_id(row.id),
        options={"accounts": SIMULATED_ACCOUNTS, "seed": settings.demo_seed + name % 10_000,
                 "login_base": 200_000 + name % 7_000 * 100, "warmup": SIMULATED_WARMUP_S,
                 "interval": settings.gateway_interval,
                 "manager_password": settings.simulator_password.get_secret_value()},
        interval=settings.gateway_interval,
        login=row.login,
        password=password,
        reconcile_every_s=settings.reconcile_every_s,
    )


def _fingerprint(row: Mt5Connection) -> str:
    """Changes exactly when what the gateway is opened with changes (server, login, password)."""
    digest = hashlib.sha256(f"{row.server}\0{row.login}\0".encode())
    digest.update(row.credentials_encrypted)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredConnections:
    """The `FeedStore` a tenant's supervisor is created with (`actors/feeds.py`).

    It is pickled into the supervisor and called in the engine's process: rows are read and the
    passwords decrypted there, and the outcome of each feed (connected with its accounts, or
    failed with why) is written back to the rows, as the tenant (row-level security).
    """

    settings: Settings
    tenant_id: int

    def feeds(self) -> list[StoredFeed]:
        """Every stored connection of the tenant, decrypted, oldest first."""
        feeds = []
        with tenant_session(self.settings.database_url, self.tenant_id) as db:
            rows = db.exec(select(Mt5Connection).where(Mt5Connection.tenant_id == self.tenant_id)
                           .order_by(col(Mt5Connection.id))).all()
            for row in rows:
                assert row.id is not None
                try:
                    password = decrypt(_keys(self.settings), row.credentials_encrypted)
                    spec = gateway_spec(self.settings, row, password)
                except CredentialsError as exc:
                    feeds.append(StoredFeed(row.id, _fingerprint(row), None, str(exc)))
                else:
                    feeds.append(StoredFeed(row.id, _fingerprint(row), spec))
        return feeds

    def admit(self, feed: StoredFeed, accounts: Sequence[AccountSnapshot], besides: tuple[int, int] = (0, 0)
              ) -> None:
        """Let the connection in if the tenant's plan has room for it, and mark it connected with
        its accounts, in one transaction; PlanLimitExceeded (nothing written) if not.

        Atomic. Checked one connection at a time in the supervisor, connections opening together
        each saw the others' room as free and all passed. Here the check holds the tenant's plan
        lock (a PostgreSQL advisory lock, per tenant, for the transaction: the application role
        may not lock the tenant row, and any process that admits takes the same lock), reads the
        plan as stored now (a plan change applies to the next open at once), counts the other
        connections already connected and their accounts, plus `besides` (servers, accounts) fed
        from elsewhere (the demo's simulated broker), and marks this one connected before the lock
        is released, so the next admission counts it. SQLite serialises writers itself (and the
        supervisor admits one connection at a time).
        """
        with tenant_session(self.settings.database_url, self.tenant_id) as db:
            if db.get_bind().dialect.name == "postgresql":
                db.execute(text("SELECT pg_advisory_xact_lock(:space, :tenant)"),
                           {"space": PLAN_LOCK_SPACE, "tenant": self.tenant_id})
            tenant = db.get(Tenant, self.tenant_id)
            if tenant is None:
                raise LookupError(f"tenant: no tenant {self.tenant_id}")
            others = db.exec(select(Mt5Connection.id).where(
                Mt5Connection.tenant_id == self.tenant_id, Mt5Connection.id != feed.row_id,
                Mt5Connection.status == ConnectionStatus.CONNECTED)).all()
            known = db.exec(select(func.count()).select_from(ClientAccount).where(
                ClientAccount.tenant_id == self.tenant_id, col(ClientAccount.connection_id).in_(others),
            )).one()
            servers, accounts_fed = len(others) + 1 + besides[0], int(known) + len(accounts) + besides[1]
            check_usage(str(tenant.plan), servers, accounts_fed)
            self._connect(db, feed, accounts)

    def _connect(self, db: Session, feed: StoredFeed, accounts: Sequence[AccountSnapshot]) -> None:
        """Mark the row connected and make its `client_account` rows the server's accounts now
        (new ones added, changed settings updated, vanished ones removed)."""
        row = db.exec(select(Mt5Connection).where(Mt5Connection.tenant_id == self.tenant_id,
                                                  Mt5Connection.id == feed.row_id).with_for_update()).first()
        if row is None:  # removed meanwhile: the supervisor closes the feed at its next sync
            return
        row.status, row.last_error, row.last_connected_at = ConnectionStatus.CONNECTED, None, utcnow()
        db.add(row)
        known = {a.login: a for a in db.exec(select(ClientAccount).where(
            ClientAccount.tenant_id == self.tenant_id, ClientAccount.connection_id == feed.row_id)).all()}
        for snapshot in accounts:
            account = known.pop(snapshot.login, None) or ClientAccount(
                tenant_id=self.tenant_id, connection_id=feed.row_id, login=snapshot.login, group="")
            account.group = snapshot.group[:64]
            account.name, account.country = snapshot.name[:128], snapshot.country[:64]
            account.book = Book(snapshot.book) if snapshot.book in ("A", "B") else Book.B
            account.currency, account.leverage = snapshot.currency[:3], max(1, snapshot.leverage)
            account.updated_at = utcnow()
            db.add(account)
        for gone in known.values():
            db.delete(gone)

    def failed(self, feed: StoredFeed, message: str) -> None:
        """Mark the row failed with `message` (the gateway's reason: never a password)."""
        with tenant_session(self.settings.database_url, self.tenant_id) as db:
            row = db.exec(select(Mt5Connection).where(Mt5Connection.tenant_id == self.tenant_id,
                                                      Mt5Connection.id == feed.row_id)).first()
            if row is None:
                return
            row.status, row.last_error = ConnectionStatus.FAILED, message[:_ERROR_CHARS]
            row.updated_at = utcnow()
            db.add(row)


def check_connection(db: Session, settings: Settings, tenant_id: int, connection_id: int) -> ConnectionCheck:
    """Open the connection's gateway with its stored credentials, read its accounts, close it,
    and record the outcome on the row (status, last error, last connected)."""
    row = _row(db, tenant_id, connection_id)
    try:
        password = decrypt(_keys(settings), row.credentials_encrypted)
        spec = gateway_spec(settings, row, password)
        if spec.kind == "webapi":
            return _record(db, row, _webapi_check(spec))
        if spec.kind == "simulator":  # a test proves the login: no simulated trading needed first
            spec = replace(spec, options={**spec.options, "warmup": 0.0})
        gateway = open_gateway(spec)
        try:
            accounts = len(gateway.accounts())
        finally:
            gateway.close()
    except GatewayError as exc:
        return _record(db, row, ConnectionCheck(False, ConnectionStatus.FAILED, str(exc)))
    connected = f"Connected: {accounts} accounts."
    return _record(db, row, ConnectionCheck(True, ConnectionStatus.CONNECTED, connected, accounts))


def _webapi_check(spec: GatewaySpec) -> ConnectionCheck:
    """`veles mt5 check` against the server (blocking: the caller runs this in a thread): its
    JSON summary, or its one line naming the failing step and the server's retcode."""
    assert spec.login is not None
    assert spec.password is not None
    options = spec.options
    outcome = check_blocking(WebApiSettings(str(options["url"]), spec.login, spec.password,
                                            ca_bundle=options.get("ca_bundle")))
    if not outcome.ok or outcome.result is None:
        return ConnectionCheck(False, ConnectionStatus.FAILED, outcome.line)
    return ConnectionCheck(True, ConnectionStatus.CONNECTED, outcome.line, outcome.result.users)


def _record(db: Session, row: Mt5Connection, check: ConnectionCheck) -> ConnectionCheck:
    """Keep a check's outcome on the row: status, last error, last connected."""
    if check.ok:
        row.last_error, row.last_connected_at = None, utcnow()
    else:
        row.last_error = check.message[:_ERROR_CHARS]
    row.status = check.status
    row.updated_at = utcnow()
    db.add(row)
    db.flush()
    return check
