"""Ending a user's sessions at once: a per-user token version, checked on every request.

Access tokens are checked without a database query, so by themselves a deactivated user, or one
whose role or password changed, who signed out, whose refresh token was replayed or whose broker
was suspended, would keep their old powers until the token expires (up to ACCESS_TOKEN_MINUTES).
So each user has a `token_version`; access tokens carry the version they were issued under
(`ver`), and `SessionVersions.check` refuses a token whose version is not the user's current one,
whose user is no longer active, or whose `tenant_id` is not the user's tenant in the database (a
token naming another tenant is refused even if it is signed with our key). Suspending a tenant
raises the version of every user of it (`end_tenant_sessions`): that is the per-tenant version.

Each process caches (tenant, version) per user in memory, bounded in size and for CACHE_SECONDS,
so a request costs no query and no network round trip. `end_sessions` raises the version inside
the caller's transaction; when that transaction commits, the new versions are written over every
cache of this process and pushed over Redis pub/sub to every other process (channel
`<deployment prefix>token-versions`), whose listener thread applies them. A process
trusts its cache only while its listener is subscribed: until then, and after a lost connection
(the cache is emptied, anything may have been missed), every check reads the database. Without
Redis (embedded: one process) the commit hook is the whole bus. A request that read the old
version from the database just before the commit fills the cache only if no newer value arrived
meanwhile, so it cannot put the old version back; a commit that fails publishes nothing.

`add_listener` lets `veles.services.session_watch` wake the streams of a user whose version moved.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select
from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential

from models.db import get_engine, session_scope
from models.tenancy import User
from veles.config import Settings, engine_prefix, get_settings, redis_name
from veles.services import tokens
from veles.services.tokens import AuthError, Identity

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0  # bounds staleness only if a push was lost without the listener noticing
MAX_USERS = 100_000  # cached users per process; the least recently cached go first
INACTIVE = -1  # the cached "version" of a deactivated or deleted user: no token matches it
NO_TENANT = -1  # the cached tenant of a deleted user
_PENDING = "veles.ended_sessions"  # Session.info key: user id -> (tenant, version), published on commit
ENDED = "Your session was ended (your access changed); please sign in again."
FOREIGN = "Invalid session token."

Versions = dict[int, tuple[int, int]]  # user id -> (tenant id, version or INACTIVE)
Listener = Callable[[Iterable[int]], None]


def end_sessions(db: Session, user: User, *, keep_refresh: bool = False) -> int:
    """End every session of `user` once `db` commits: their access tokens stop working at once,
    and (unless `keep_refresh`) so do their refresh tokens. Returns how many refresh tokens ended.

    `keep_refresh` is for a role change, a sign-out or a replayed refresh token: the user's other
    sign-ins renew their access token (a role change: with the new role) with their own refresh
    token, while deactivation, a new password and a suspended broker end everything."""
    assert user.id is not None
    user.token_version += 1
    db.add(user)
    version = user.token_version if user.is_active else INACTIVE
    db.info.setdefault(_PENDING, {})[user.id] = (user.tenant_id, version)
    return 0 if keep_refresh else tokens.revoke_user(db, user.id)


def end_user_sessions(db: Session, user_id: int, *, keep_refresh: bool = True) -> int:
    """`end_sessions` for a user known by id (sign-out, a replayed refresh token); 0 if none."""
    user = db.get(User, user_id)
    return 0 if user is None else end_sessions(db, user, keep_refresh=keep_refresh)


def end_tenant_sessions(db: Session, tenant_id: int) -> int:
    """End every session of every user of a tenant once `db` commits (the tenant is suspended):
    returns how many refresh tokens ended."""
    users = db.exec(select(User).where(User.tenant_id == tenant_id)).all()
    return sum(end_sessions(db, user) for user in users)


class SessionVersions:
    """The current (tenant, token version) of each user, cached in memory in front of the user
    table and kept current by pushes over Redis (or, without Redis, by this process's commits)."""

    def __init__(self, database_url: str, redis_url: str | None, ttl: float = CACHE_SECONDS,
                 max_users: int = MAX_USERS, prefix: str | None = None) -> None:
        self._database_url = database_url
        self.engine = get_engine(database_url)
        # The deployment's namespace (derived from the database unless VELES_REDIS_PREFIX says
        # otherwise): pub/sub ignores Redis's database numbers, so two databases sharing one Redis
        # would otherwise mix their user ids.
        self.channel = redis_name(prefix or engine_prefix(database_url), "token-versions")
        self._ttl, self._max = ttl, max_users
        self._lock = threading.Lock()
        self._memory: OrderedDict[int, tuple[int, int, float]] = OrderedDict()  # (tenant, version, expires)
        self._generation = 0  # raised whenever the cache is emptied: fills read before it are dropped
        self._listeners: list[Listener] = []
        self._redis = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2) \
            if redis_url else None
        self._redis_url = redis_url
        self._subscribed = threading.Event()  # with Redis, the cache is trusted only while set
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading -------------------------------------------------------------------------------

    def check(self, identity: Identity) -> None:
        """AuthError unless `identity`'s token names its user's tenant and current version."""
        self._judge(identity, self.current(identity.user_id))

    def check_cached(self, identity: Identity) -> bool:
        """Like `check` but from the cache only, never blocking: True when the cache vouched for
        the token, False when it holds nothing for the user (then call `check` off the loop)."""
        cached = self.cached(identity.user_id)
        if cached is None:
            return False
        self._judge(identity, cached)
        return True

    @staticmethod
    def _judge(identity: Identity, current: tuple[int, int]) -> None:
        tenant, version = current
        if tenant != identity.tenant_id and version != INACTIVE:
            raise AuthError(FOREIGN)  # signed with our key, but not this user's tenant
        if version != identity.version:
            raise AuthError(ENDED)

    def current(self, user_id: int) -> tuple[int, int]:
        """The user's (tenant, version), version INACTIVE if deactivated or deleted; from the
        cache, else the database (then cached)."""
        self._start()
        cached = self.cached(user_id)
        if cached is not None:
            return cached
        generation = self._generation
        with session_scope(self._database_url) as db:
            row = db.exec(
                select(User.tenant_id, User.token_version, User.is_active).where(User.id == user_id)
            ).first()
        value = (row[0], row[1] if row[2] else INACTIVE) if row is not None else (NO_TENANT, INACTIVE)
        self._put({user_id: value}, replace=False, generation=generation)
        return value

    def _trusted(self) -> bool:
        return self._redis is None or self._subscribed.is_set()

    def cached(self, user_id: int) -> tuple[int, int] | None:
        """The user's (tenant, version) if this process knows it now; None when it must ask."""
        if not self._trusted():
            return None
        with self._lock:
            entry = self._memory.get(user_id)
        if entry is None or entry[2] <= time.monotonic():
            return None
        return entry[0], entry[1]

    def _put(self, values: Versions, *, replace: bool, generation: int | None = None) -> None:
        expires = time.monotonic() + self._ttl
        with self._lock:
            if generation is not None and generation != self._generation:
                return  # the cache was emptied while this was read: it may be older than a push
            for user_id, (tenant, version) in values.items():
                old = self._memory.get(user_id)
                if replace or old is None or old[2] <= time.monotonic():
                    self._memory[user_id] = (tenant, version, expires)
                    self._memory.move_to_end(user_id)
            while len(self._memory) > self._max:
                self._memory.popitem(last=False)

    def clear(self) -> None:
        """Forget every cached version (each is read from the database again)."""
        with self._lock:
            self._memory.clear()
            self._generation += 1

    # -- changes -------------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(user_ids)` (from any thread) whenever users' versions may have moved;
        also with every cached user when a lost Redis connection may have hidden changes."""
        with self._lock:
            self._listeners.append(listener)

    def _apply(self, values: Versions) -> None:
        self._put(values, replace=True)
        self._notify(values.keys())

    def _notify(self, user_ids: Iterable[int]) -> None:
        ids = list(user_ids)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(ids)
            except Exception:  # a listener's failure must not stop the others or the push
                log.exception("token-version listener failed")

    def publish(self, changed: Versions) -> None:
        """A committed change: apply it here at once and push it to every other process."""
        self._apply(changed)
        if self._redis is None:
            return
        message = json.dumps({str(user): list(value) for user, value in changed.items()})
        try:
            self._redis.publish(self.channel, message)
        except redis.RedisError as exc:  # other processes learn it within CACHE_SECONDS
            log.warning("token versions of users %s not pushed: Redis cannot be reached: %s",
                        sorted(changed), exc)

    # -- the Redis listener --------------------------------------------------------------------

    def _start(self) -> None:
        """Start the listener thread on first use (a process that only publishes never needs it)."""
        if self._redis_url is None or self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._listen, name="token-versions", daemon=True)
        self._thread.start()

    def wait_subscribed(self, timeout: float) -> bool:
        """Whether the listener is subscribed within `timeout` seconds (tests, start-up)."""
        self._start()
        return self._subscribed.wait(timeout)

    def close(self) -> None:
        """Stop the listener thread (tests; a process otherwise keeps it until it exits)."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        retrying = Retrying(retry=retry_if_exception_type(redis.RedisError),
                            wait=wait_exponential(multiplier=0.2, max=5),
                            stop=stop_when_event_set(self._closed), reraise=True)
        try:
            retrying(self._follow)
        except redis.RedisError as exc:
            if not self._closed.is_set():
                log.error("token-version listener stopped: %s", exc)

    def _follow(self) -> None:
        """Subscribe, then apply pushes until closed; any error empties the cache (a push may have
        been missed while the connection was down) and is raised for `_listen` to retry."""
        assert self._redis_url is not None
        # No silent reconnects: a reconnect that resubscribed would hide the pushes lost meanwhile.
        client = redis.Redis.from_url(self._redis_url, socket_connect_timeout=2, socket_timeout=10,
                                      retry=Retry(NoBackoff(), 0), health_check_interval=5)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            self.clear()
            self._subscribed.set()
            while not self._closed.is_set():
                message: Any = pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self._receive(message["data"])
        except redis.RedisError as exc:
            log.warning("token-version listener lost Redis (%s): checks read the database meanwhile", exc)
            raise
        finally:
            was_trusted = self._subscribed.is_set()
            self._subscribed.clear()
            with self._lock:
                cached = list(self._memory)
            self.clear()
            if was_trusted and not self._closed.is_set():
                self._notify(cached)  # watchers re-check, from the database
            with suppress(redis.RedisError, OSError):
                pubsub.close()
                client.close()

    def _receive(self, data: bytes | str) -> None:
        try:
            raw = json.loads(data)
            values = {int(user): (int(value[0]), int(value[1])) for user, value in raw.items()}
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            log.warning("token-version push ignored: not understood: %r", data[:200])
            return
        self._apply(values)


_caches: dict[tuple[str, str | None, str], SessionVersions] = {}
_caches_lock = threading.Lock()


def session_versions(settings: Settings) -> SessionVersions:
    """The process's version cache for these settings' database and Redis (one per pair, shared by
    the API and the portal, so a change made through either is published to both)."""
    key = (settings.database_url, settings.redis_url, settings.redis_prefix)
    with _caches_lock:
        if key not in _caches:
            _caches[key] = SessionVersions(settings.database_url, settings.redis_url,
                                           prefix=settings.redis_prefix)
        return _caches[key]


def forget_versions() -> None:
    """Empty every cache of this process: for a database recreated under it (tests), where user
    ids start again and a cached version would belong to someone else."""
    with _caches_lock:
        caches = list(_caches.values())
    for cache in caches:
        cache.clear()


def check_session(settings: Settings, identity: Identity) -> Identity:
    """`identity` if its token names its user's tenant and its sessions have not been ended;
    AuthError otherwise."""
    session_versions(settings).check(identity)
    return identity


@event.listens_for(OrmSession, "after_commit")
def _publish(db: OrmSession) -> None:
    """Hand the versions a committed transaction raised to every cache of that database, and push
    them to other processes (through this process's settings' Redis if it has no cache yet)."""
    changed: Versions | None = db.info.pop(_PENDING, None)
    if not changed:
        return
    bind = db.get_bind()
    with _caches_lock:
        caches = [cache for cache in _caches.values() if cache.engine is bind]
    if not caches:  # a CLI or worker process: its own settings say where the web processes listen
        settings = get_settings()
        if get_engine(settings.database_url) is bind:
            caches = [session_versions(settings)]
    for cache in caches:
        cache.publish(changed)


@event.listens_for(OrmSession, "after_rollback")
def _forget(db: OrmSession) -> None:
    db.info.pop(_PENDING, None)
