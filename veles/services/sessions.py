"""Ending a user's sessions at once: a per-user token version, checked on every request.

Access tokens are checked without a database query, so by themselves a deactivated user, or one
whose role or password changed, would keep their old powers until the token expires (up to
ACCESS_TOKEN_MINUTES). So each user has a `token_version`; access tokens carry the version they
were issued under (`ver`), and `SessionVersions.check` refuses a token whose version is not the
user's current one, or whose user is no longer active.

The current version is cached for `CACHE_SECONDS` (in Redis when REDIS_URL is set, so every web
process agrees; in-process otherwise), so a request costs one Redis GET, not a query.
`end_sessions` raises the version inside the caller's transaction; when that transaction commits,
the new version is written over every cache this process holds. A request that read the old
version from the database just before the commit fills the cache only if the key is empty
(SET NX), so it cannot put the old version back; a commit that fails publishes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from models.db import get_engine, session_scope
from models.tenancy import User
from veles.config import Settings, engine_prefix, redis_name
from veles.services import tokens
from veles.services.tokens import AuthError, Identity

log = logging.getLogger(__name__)

CACHE_SECONDS = 60  # bounds staleness only if Redis lost a published change; changes are pushed
INACTIVE = -1  # the cached "version" of a deactivated or deleted user: no token matches it
_PENDING = "veles.ended_sessions"  # Session.info key: user id -> version, published on commit
ENDED = "Your session was ended (your access changed); please sign in again."


def end_sessions(db: Session, user: User, *, keep_refresh: bool = False) -> int:
    """End every session of `user` once `db` commits: their access tokens stop working at once,
    and (unless `keep_refresh`) so do their refresh tokens. Returns how many refresh tokens ended.

    `keep_refresh` is for a role change: the user's next refresh gives them a token with the new
    role, while deactivation and a new password must sign them out completely."""
    assert user.id is not None
    user.token_version += 1
    db.add(user)
    db.info.setdefault(_PENDING, {})[user.id] = user.token_version if user.is_active else INACTIVE
    return 0 if keep_refresh else tokens.revoke_user(db, user.id)


class SessionVersions:
    """The current token version of each user, cached in front of the user table."""

    def __init__(
        self, database_url: str, client: redis.Redis | None, ttl: int = CACHE_SECONDS,
        prefix: str | None = None,
    ) -> None:
        self._database_url = database_url
        self.engine = get_engine(database_url)
        # Keys live in the deployment's namespace (derived from the database unless VELES_REDIS_PREFIX
        # says otherwise), so two databases sharing one Redis never mix user ids.
        self._prefix = redis_name(prefix or engine_prefix(database_url), "token-version:")
        self._client = client
        self._ttl = ttl
        self._lock = threading.Lock()
        self._memory: dict[int, tuple[int, float]] = {}  # user id -> (version, expires), no Redis

    def check(self, identity: Identity) -> None:
        """AuthError unless `identity`'s token was issued under its user's current version."""
        if self.current(identity.user_id) != identity.version:
            raise AuthError(ENDED)

    def current(self, user_id: int) -> int:
        """The user's version, or INACTIVE; from the cache, else the database (then cached)."""
        cached = self._get(user_id)
        if cached is not None:
            return cached
        with session_scope(self._database_url) as db:
            row = db.exec(select(User.token_version, User.is_active).where(User.id == user_id)).first()
        version = row[0] if row is not None and row[1] else INACTIVE
        self._put(user_id, version, replace=False)
        return version

    def publish(self, changed: dict[int, int]) -> None:
        """Overwrite the cached versions of users whose change has just been committed."""
        for user_id, version in changed.items():
            self._put(user_id, version, replace=True)

    def _key(self, user_id: int) -> str:
        return f"{self._prefix}{user_id}"

    def _get(self, user_id: int) -> int | None:
        if self._client is None:
            with self._lock:
                version, expires = self._memory.get(user_id, (0, 0.0))
            return version if expires > time.monotonic() else None
        try:
            value: Any = self._client.get(self._key(user_id))
        except redis.RedisError as exc:  # the database still answers: slower, never wrong
            log.warning("token versions read from the database: Redis cannot be reached: %s", exc)
            return None
        return None if value is None else int(value)

    def _put(self, user_id: int, version: int, *, replace: bool) -> None:
        if self._client is None:
            with self._lock:
                if replace or self._memory.get(user_id, (0, 0.0))[1] <= time.monotonic():
                    self._memory[user_id] = (version, time.monotonic() + self._ttl)
            return
        try:
            self._client.set(self._key(user_id), version, ex=self._ttl, nx=not replace)
        except redis.RedisError as exc:
            log.warning("token version of user %s not cached: Redis cannot be reached: %s", user_id, exc)


_caches: dict[tuple[str, str | None, str], SessionVersions] = {}
_caches_lock = threading.Lock()


def session_versions(settings: Settings) -> SessionVersions:
    """The process's version cache for these settings' database and Redis (one per pair, shared by
    the API and the portal, so a change made through either is published to both)."""
    key = (settings.database_url, settings.redis_url, settings.redis_prefix)
    with _caches_lock:
        if key not in _caches:
            client = None
            if settings.redis_url:
                client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
            _caches[key] = SessionVersions(settings.database_url, client, prefix=settings.redis_prefix)
        return _caches[key]


def check_session(settings: Settings, identity: Identity) -> Identity:
    """`identity` if its token's sessions have not been ended; AuthError otherwise."""
    session_versions(settings).check(identity)
    return identity


@event.listens_for(OrmSession, "after_commit")
def _publish(db: OrmSession) -> None:
    """Hand the versions a committed transaction raised to every cache of that database."""
    changed: dict[int, int] | None = db.info.pop(_PENDING, None)
    if changed:
        bind = db.get_bind()
        with _caches_lock:
            caches = [cache for cache in _caches.values() if cache.engine is bind]
        for cache in caches:
            cache.publish(changed)


@event.listens_for(OrmSession, "after_rollback")
def _forget(db: OrmSession) -> None:
    db.info.pop(_PENDING, None)
