"""MT5 credentials at rest: encrypted, readable across a key rotation, never in a repr."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlmodel import select

from models.connections import Mt5Connection
from models.db import session_scope, upgrade
from models.tenancy import Tenant, TwoFactor, User
from veles.services.credentials import (
    CredentialsError,
    decrypt,
    encrypt,
    generate_key,
    parse_keys,
    rotate,
    rotate_all,
)

SECRET = "manager-pa55word!"


def opens(token: bytes, key: str) -> bool:
    """Whether `key` alone opens `token`."""
    try:
        Fernet(key).decrypt(token)
    except InvalidToken:
        return False
    return True


def test_round_trip_and_the_ciphertext_hides_the_secret() -> None:
    keys = [generate_key()]
    token = encrypt(keys, SECRET)
    assert SECRET.encode() not in token
    assert decrypt(keys, token) == SECRET
    assert encrypt(keys, SECRET) != token  # random IV: equal secrets do not look equal


def test_old_ciphertext_stays_readable_after_a_new_key_and_rotate_moves_it() -> None:
    old, new = generate_key(), generate_key()
    token = encrypt([old], SECRET)
    keys = [new, old]  # the new key goes in front
    assert decrypt(keys, token) == SECRET
    assert opens(encrypt(keys, SECRET), new)
    rotated = rotate(keys, token)
    assert opens(rotated, new)
    assert not opens(rotated, old)
    assert decrypt([new], rotated) == SECRET  # the old key can now be dropped


def test_wrong_key_tampering_and_missing_keys_are_refused() -> None:
    token = encrypt([generate_key()], SECRET)
    with pytest.raises(CredentialsError, match="cannot be decrypted"):
        decrypt([generate_key()], token)
    with pytest.raises(CredentialsError, match="cannot be decrypted"):
        rotate([generate_key()], token)
    keys = [generate_key()]
    tampered = bytearray(encrypt(keys, SECRET))
    tampered[-5] ^= 1
    with pytest.raises(CredentialsError):
        decrypt(keys, bytes(tampered))
    with pytest.raises(CredentialsError, match="CREDENTIALS_KEYS"):
        encrypt([], SECRET)
    with pytest.raises(CredentialsError, match="malformed") as malformed:
        encrypt(["not-a-key"], SECRET)
    assert "not-a-key" not in str(malformed.value)


def test_parse_keys_reads_the_setting_format() -> None:
    a, b = generate_key(), generate_key()
    assert parse_keys(f" {a}, {b},, ") == [a, b]


def test_a_connection_row_never_shows_the_secret() -> None:
    keys = [generate_key()]
    row = Mt5Connection(
        tenant_id=1, server="mt5.broker.test:443", login=1001, credentials_encrypted=encrypt(keys, SECRET)
    )
    for text in (repr(row), str(row), f"{row!r}"):
        assert SECRET not in text
        assert row.credentials_encrypted.decode() not in text
        assert "credentials_encrypted" not in text


def test_rotate_all_reencrypts_every_stored_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'veles.db'}"
    upgrade(url)
    old, new = generate_key(), generate_key()
    with session_scope(url) as db:
        tenant = Tenant(name="Broker")
        db.add(tenant)
        db.flush()
        assert tenant.id is not None
        db.add(
            Mt5Connection(
                tenant_id=tenant.id, server="a:443", login=1, credentials_encrypted=encrypt([old], "p1")
            )
        )
        db.add(
            User(
                tenant_id=tenant.id,
                email="u@b.test",
                password_hash="x",
                two_factor=TwoFactor.TOTP,
                totp_secret_encrypted=encrypt([old], "seed"),
            )
        )
        db.add(User(tenant_id=tenant.id, email="v@b.test", password_hash="x"))
    with session_scope(url) as db:
        assert rotate_all(db, [new, old]) == 2
    with session_scope(url) as db:
        connection = db.exec(select(Mt5Connection)).one()
        user = db.exec(select(User).where(User.email == "u@b.test")).one()
        assert user.totp_secret_encrypted is not None
        assert decrypt([new], connection.credentials_encrypted) == "p1"
        assert decrypt([new], user.totp_secret_encrypted) == "seed"
