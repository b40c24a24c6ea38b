"""Failed sign-ins slow down the pair that fails, not the account: per (e-mail, client IP).

Account lockout let anyone lock a known user out with five requests and told real addresses
(423) from unknown ones (401). Here, after `SIGN_IN_FREE_FAILURES` wrong passwords or codes for
one address from one IP, each further attempt from that IP must wait 1, 2, 4, ... seconds (capped
at `SIGN_IN_MAX_DELAY`), counted from the last failure. The same user signing in from another
network is not affected, and an unknown address is throttled exactly like a known one, so neither
the status nor the body tells whether it has an account. A success clears the pair.

Rows live in the database (`sign_in_throttle`, hashes only) so the API and the portal, in every
process, share them without Redis. Functions take the caller's platform session and do not commit.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from models.auth import SignInThrottle
from models.columns import utcnow
from veles.config import Settings
from veles.services.tokens import AuthError, as_utc

# A pair's failures are forgotten this long after its last one (and its row swept then).
FORGET_AFTER = timedelta(days=1)


class Throttled(AuthError):
    """Too many failures for this address from this IP: no attempt is checked for `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed sign-in attempts for this address from your network: try again in "
            f"{retry_after} s."
        )
        self.retry_after = retry_after


def pair_key(email: str, ip: str | None) -> str:
    """The row key of an (e-mail, IP) pair: SHA-256, so neither is stored in clear."""
    return hashlib.sha256(f"{email.strip().lower()}\n{ip or '-'}".encode()).hexdigest()


def refuse_if_waiting(session: Session, key: str) -> None:
    """Throttled when the pair must still wait; checked before any password is."""
    row = session.get(SignInThrottle, key)
    if row is None or row.retry_at is None:
        return
    left = (as_utc(row.retry_at) - utcnow()).total_seconds()
    if left > 0:
        raise Throttled(max(1, math.ceil(left)))


def delay_after(failures: int, settings: Settings) -> int:
    """Seconds the pair waits after its `failures`-th failure: 0 while free, then doubling, capped."""
    beyond = failures - settings.sign_in_free_failures
    if beyond < 0:
        return 0
    return min(2 ** min(beyond, 30), settings.sign_in_max_delay)


def record_failure(session: Session, settings: Settings, key: str) -> int:
    """Count one failure of the pair and set when it may try again; returns its failures."""
    now = utcnow()
    row = session.get(SignInThrottle, key)
    if row is None:
        stale = col(SignInThrottle.last_failure_at) < now - FORGET_AFTER
        session.execute(delete(SignInThrottle).where(stale))
        row = SignInThrottle(key_hash=key, failures=0, last_failure_at=now)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # the same pair failing twice at once: count on the row that won
            session.expire_all()
            row = session.get(SignInThrottle, key)
            assert row is not None
    elif as_utc(row.last_failure_at) < now - FORGET_AFTER:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    delay = delay_after(row.failures, settings)
    row.retry_at = now + timedelta(seconds=delay) if delay else None
    session.add(row)
    return row.failures


def clear(session: Session, key: str) -> None:
    """The pair signed in: its failures are forgotten."""
    session.execute(delete(SignInThrottle).where(col(SignInThrottle.key_hash) == key))
