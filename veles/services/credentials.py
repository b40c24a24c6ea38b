"""MT5 manager passwords (and TOTP seeds) encrypted at rest, with key rotation.

Fernet gives authenticated encryption (AES-128-CBC + HMAC-SHA256), so a tampered or foreign blob
is refused rather than decrypted to garbage. `MultiFernet` holds several keys, newest first:
encryption always uses the newest, decryption tries each, so a new key can be put in front
without breaking stored rows, and `rotate_all` then re-encrypts them so the old key can go.

Keys come from the `CREDENTIALS_KEYS` setting (`Settings.credentials_keys`: comma-separated,
newest first); `parse_keys` reads that format, and the functions take the keys as an argument so
tests and key-rotation jobs can pass their own.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlmodel import Session, col, select

from models.connections import Mt5Connection
from models.tenancy import User


class CredentialsError(Exception):
    """No usable key, or a blob that none of the keys can open (wrong key or tampered)."""


def generate_key() -> str:
    """A fresh random key, in the text form `CREDENTIALS_KEYS` holds."""
    return Fernet.generate_key().decode()


def parse_keys(setting: str) -> list[str]:
    """The keys of a `CREDENTIALS_KEYS` value: comma-separated, newest first, blanks ignored."""
    return [key.strip() for key in setting.split(",") if key.strip()]


def _cipher(keys: Sequence[str]) -> MultiFernet:
    if not keys:
        raise CredentialsError("no credentials key configured (set CREDENTIALS_KEYS)")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:  # the message never includes the key itself
        raise CredentialsError(f"a credentials key is malformed: {exc}") from None


def encrypt(keys: Sequence[str], plaintext: str) -> bytes:
    """Encrypt under the newest key (`keys[0]`)."""
    return _cipher(keys).encrypt(plaintext.encode())


def decrypt(keys: Sequence[str], token: bytes) -> str:
    """Decrypt with whichever of `keys` made `token`."""
    try:
        return _cipher(keys).decrypt(token).decode()
    except InvalidToken:
        raise CredentialsError("credentials cannot be decrypted with the configured keys") from None


def rotate(keys: Sequence[str], token: bytes) -> bytes:
    """The same secret re-encrypted under the newest key."""
    try:
        return _cipher(keys).rotate(token)
    except InvalidToken:
        raise CredentialsError("credentials cannot be decrypted with the configured keys") from None


def rotate_all(session: Session, keys: Sequence[str]) -> int:
    """Re-encrypt every stored secret of every tenant under the newest key; returns how many.

    Needs the platform session (`models.db.session_scope`): it spans tenants. After it commits,
    the old key can be removed from `CREDENTIALS_KEYS`.
    """
    rotated = 0
    for connection in session.exec(select(Mt5Connection)).all():
        connection.credentials_encrypted = rotate(keys, connection.credentials_encrypted)
        session.add(connection)
        rotated += 1
    for user in session.exec(select(User).where(col(User.totp_secret_encrypted).is_not(None))).all():
        assert user.totp_secret_encrypted is not None
        user.totp_secret_encrypted = rotate(keys, user.totp_secret_encrypted)
        session.add(user)
        rotated += 1
    return rotated
