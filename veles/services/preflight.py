"""Start-up checks: a production process refuses to run on a configuration an attacker could use.

The development SECRET_KEY is public (it is in `veles.config`), so with it anyone could forge
tokens, report links and SMS-code hashes; without CREDENTIALS_KEYS stored MT5 passwords cannot be
kept; and a database role with BYPASSRLS (a superuser has it implicitly) would turn row-level
security off for every query. With VELES_ENV=production every entry point (`veles engine`,
`veles reports serve`, `veles demo`, the portal's backend) calls `enforce` first: one line per
problem on stderr, then exit code 2. `veles doctor` prints the same checks, plus whether the
database, Redis and Ray answer, whatever VELES_ENV says.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

import redis
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from veles.config import DEVELOPMENT_SECRET_KEY, Environment, Settings
from veles.services.signing_keys import split_keys

MIN_SECRET_BYTES = 32
EXIT_REFUSED = 2
DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Check:
    """One named check: `problems` empty means it passed, and `detail` says what was found."""

    name: str
    problems: tuple[str, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the check passed."""
        return not self.problems


def _key_problems(name: str, secret: str) -> list[str]:
    if not secret:
        return [f"{name} is not set: set it to at least {MIN_SECRET_BYTES} random bytes "
                "(e.g. `openssl rand -hex 32`)"]
    if secret == DEVELOPMENT_SECRET_KEY:
        return [f"{name} is the public development value: anyone could forge tokens with it; "
                "set a random one (e.g. `openssl rand -hex 32`)"]
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return [f"{name} is {len(secret.encode())} bytes, shorter than {MIN_SECRET_BYTES}: "
                "use a long random value (e.g. `openssl rand -hex 32`)"]
    return []


def _previous_keys(settings: Settings) -> list[str]:
    return split_keys(settings.secret_key_previous.get_secret_value()) if settings.secret_key_previous else []


def check_secret_key(settings: Settings) -> Check:
    """SECRET_KEY set, not the development value, at least 32 bytes; previous keys (rotation) the
    same, and given an end to their overlap."""
    problems = _key_problems("SECRET_KEY", settings.secret_key.get_secret_value())
    previous = _previous_keys(settings)
    for index, secret in enumerate(previous, start=1):
        problems += _key_problems(f"SECRET_KEY_PREVIOUS (key {index})", secret)
    if previous and settings.secret_key_previous_until is None:
        problems.append("SECRET_KEY_PREVIOUS is set without SECRET_KEY_PREVIOUS_UNTIL: previous keys would "
                        "never be accepted; set when the rotation's overlap ends, or drop them")
    detail = f"set, {len(settings.secret_key.get_secret_value().encode())} bytes"
    if previous:
        detail += f"; {len(previous)} previous key(s) verify until {settings.secret_key_previous_until}"
    return Check("SECRET_KEY", tuple(problems), detail)


def check_credentials_keys(settings: Settings) -> Check:
    """CREDENTIALS_KEYS set and every key a valid Fernet key (they encrypt stored MT5 passwords)."""
    if settings.credentials_keys is None or not split_keys(settings.credentials_keys.get_secret_value()):
        return Check("CREDENTIALS_KEYS", (
            "CREDENTIALS_KEYS is not set: stored MT5 passwords cannot be encrypted; set a Fernet key, "
            "e.g. from `veles doctor --new-credentials-key`",))
    keys = split_keys(settings.credentials_keys.get_secret_value())
    problems = []
    for index, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:  # the message never includes the key
            problems.append(f"CREDENTIALS_KEYS key {index} is not a Fernet key (32 url-safe base64 bytes)")
    return Check("CREDENTIALS_KEYS", tuple(problems), f"{len(keys)} key(s)")


def _pg_connect_args(url: str, timeout: float) -> dict[str, object]:
    if make_url(url).get_backend_name() != "postgresql":
        return {}
    return {"connect_timeout": max(1, int(timeout))}


def check_database_role(settings: Settings, timeout: float = DEFAULT_TIMEOUT_S) -> Check:
    """The role DATABASE_URL logs in as must not bypass row-level security (BYPASSRLS, or superuser,
    which implies it). SQLite has no roles: there is no row-level security to bypass."""
    url = settings.database_url
    if make_url(url).get_backend_name() != "postgresql":
        return Check("database role", detail=f"{make_url(url).get_backend_name()}: no roles, no row-level "
                                              "security (tenant filters in the application only)")
    engine = create_engine(url, poolclass=NullPool, connect_args=_pg_connect_args(url, timeout))
    try:
        with engine.connect() as connection:
            row = connection.execute(text(
                "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
            )).one()
    except SQLAlchemyError as exc:
        return Check("database role", (f"cannot check the database role: {_first_line(exc)}",))
    finally:
        engine.dispose()
    user, superuser, bypass = row
    if superuser or bypass:
        why = "is a superuser" if superuser else "has BYPASSRLS"
        return Check("database role", (
            f"database role {user!r} {why}, so row-level security does not apply to it: connect as the "
            "veles_app role (`veles db create-roles`, README: Security)",))
    return Check("database role", detail=f"{user!r} is subject to row-level security")


def production_checks(settings: Settings) -> list[Check]:
    """The checks a production process must pass before it starts."""
    return [check_secret_key(settings), check_credentials_keys(settings), check_database_role(settings)]


def enforce(settings: Settings, process: str, *, checks: Callable[[Settings], list[Check]] = production_checks
            ) -> None:
    """In production, refuse to start when any check fails: one line per problem on stderr, then
    SystemExit(2). In development nothing is checked (the demo runs on the development key)."""
    if settings.veles_env != Environment.PRODUCTION:
        return
    problems = [problem for check in checks(settings) for problem in check.problems]
    if problems:
        for problem in problems:
            print(f"{process}: refusing to start (VELES_ENV=production): {problem}", file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(EXIT_REFUSED)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_database(settings: Settings, timeout: float = DEFAULT_TIMEOUT_S) -> Check:
    """The database answers a query within `timeout`."""
    url = settings.database_url
    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_engine(url, poolclass=NullPool, connect_args=_pg_connect_args(url, timeout))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return Check("database", (f"{shown} does not answer: {_first_line(exc)}",))
    finally:
        engine.dispose()
    return Check("database", detail=f"{shown} answers")


def check_redis(settings: Settings, timeout: float = DEFAULT_TIMEOUT_S) -> Check:
    """Redis answers PING within `timeout` (unset REDIS_URL: the in-process bus, nothing to reach)."""
    if not settings.redis_url:
        return Check("redis", detail="REDIS_URL unset: in-process bus (one process only)")
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
    shown = make_url(settings.redis_url).render_as_string(hide_password=True) \
        if "://" in settings.redis_url else settings.redis_url
    try:
        client.ping()
    except redis.RedisError as exc:
        return Check("redis", (f"{shown} does not answer: {_first_line(exc)}",))
    finally:
        client.close()
    return Check("redis", detail=f"{shown} answers")


def ray_endpoint(address: str) -> tuple[str, int] | None:
    """The host and port of a RAY_ADDRESS (`host:port` or `ray://host:port`), None for `auto`/`local`."""
    rest = address.split("://", 1)[-1]
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit():
        return None
    return host, int(port)


def check_ray(settings: Settings, timeout: float = DEFAULT_TIMEOUT_S) -> Check:
    """The Ray cluster at RAY_ADDRESS accepts connections within `timeout` (unset: processes that
    run the engine start a local cluster, nothing to reach)."""
    if not settings.ray_address:
        return Check("ray", detail="RAY_ADDRESS unset: `veles engine` starts a local cluster")
    endpoint = ray_endpoint(settings.ray_address)
    if endpoint is None:
        return Check("ray", (f"RAY_ADDRESS={settings.ray_address!r} names no host:port to check",))
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except OSError as exc:
        return Check("ray", (f"{endpoint[0]}:{endpoint[1]} does not accept connections: {exc}",))
    return Check("ray", detail=f"{endpoint[0]}:{endpoint[1]} accepts connections")


def doctor_checks(settings: Settings, timeout: float = DEFAULT_TIMEOUT_S) -> list[Check]:
    """Everything `veles doctor` reports: the production checks, then reachability."""
    return [*production_checks(settings), check_database(settings, timeout), check_redis(settings, timeout),
            check_ray(settings, timeout)]
