"""The keys that sign what Veles hands out: access and refresh tokens, report links, SMS-code hashes.

SECRET_KEY signs; earlier keys (SECRET_KEY_PREVIOUS) only verify, and only until
SECRET_KEY_PREVIOUS_UNTIL, so a key can be rotated without signing everyone out at once and
without an old key staying good forever. Every signature names its key by a key id (`kid`, a JWT
header; the prefix of a report link's `sig`), so verification picks one key rather than trying
each. A key id is a truncated SHA-256 of the key under a fixed label: it names the key without
revealing it (keys are at least 32 random bytes in production, `veles.services.preflight`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from veles.config import Settings

_KID_LABEL = b"veles-signing-key-id:"


def key_id(secret: str) -> str:
    """The public name of a signing key (16 hex digits), the same in every process."""
    return hashlib.sha256(_KID_LABEL + secret.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One secret and its key id."""

    kid: str
    secret: str

    @classmethod
    def of(cls, secret: str) -> SigningKey:
        """The key for `secret`, its id derived from it."""
        return cls(kid=key_id(secret), secret=secret)


@dataclass(frozen=True, slots=True)
class Keyring:
    """The current key (signs and verifies) and earlier ones (verify only, until `previous_until`)."""

    current: SigningKey
    previous: tuple[SigningKey, ...] = ()
    previous_until: datetime | None = None

    @classmethod
    def of(cls, secret: str) -> Keyring:
        """A ring of one key: what callers holding a bare secret (tests, tools) get."""
        return cls(current=SigningKey.of(secret))

    def verifying(self, now: datetime | None = None) -> tuple[SigningKey, ...]:
        """The keys a signature may be checked with at `now`: the current one, and the previous ones
        while the overlap lasts."""
        now = now or datetime.now(UTC)
        if self.previous and self.previous_until is not None and now < self.previous_until:
            return (self.current, *self.previous)
        return (self.current,)

    def find(self, kid: str | None, now: datetime | None = None) -> SigningKey | None:
        """The key a signature names, or None when it names no key accepted now. A signature without
        a key id (made before key ids existed) can only be the current key's."""
        if kid is None:
            return self.current
        return next((key for key in self.verifying(now) if key.kid == kid), None)


KeyLike = str | Keyring


def as_keyring(key: KeyLike) -> Keyring:
    """A Keyring from either a Keyring or one bare secret."""
    return key if isinstance(key, Keyring) else Keyring.of(key)


def split_keys(setting: str) -> list[str]:
    """The keys of a comma-separated setting, blanks ignored."""
    return [key.strip() for key in setting.split(",") if key.strip()]


def keyring(settings: Settings) -> Keyring:
    """The signing keys `settings` configure."""
    secret_previous = settings.secret_key_previous
    previous = split_keys(secret_previous.get_secret_value()) if secret_previous else []
    until = settings.secret_key_previous_until
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return Keyring(
        current=SigningKey.of(settings.secret_key.get_secret_value()),
        previous=tuple(SigningKey.of(secret) for secret in previous),
        previous_until=until,
    )
