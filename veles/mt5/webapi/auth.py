"""The MT5 Web API's challenge-response authentication, as MetaQuotes documents it.

Source: support.metaquotes.net/en/docs/mt5/api/webapi_rest_authentication (summarised with the
test vector in ../shared/MT5-WEBAPI.md). The manager never sends its password: the server sends
`srv_rand` (16 random bytes, hex) and the client proves it knows the password with

    password_hash   = MD5( MD5(password as UTF-16LE) ‖ b"WebAPI" )
    srv_rand_answer = MD5( password_hash ‖ srv_rand )

then sends its own `cli_rand`, and the server proves *it* knows the password with
`cli_rand_answer = MD5( password_hash ‖ cli_rand )`. Checking that answer is what refuses an
impostor server (one that merely accepts any answer and then feeds us invented figures).
Every concatenation is of raw bytes, never of hex text: hex intermediates get a 403.

MD5 is what the protocol mandates; it is not our choice of hash, so the S324 warnings are silenced
line by line rather than "fixed".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

RAND_BYTES = 16
_SALT = b"WebAPI"


class AuthProtocolError(ValueError):
    """A random or an answer that is not what the protocol allows (wrong length, not hex)."""


def password_hash(password: str) -> bytes:
    """MD5(MD5(UTF-16LE password) ‖ "WebAPI"), 16 raw bytes: what both sides derive answers from."""
    inner = hashlib.md5(password.encode("utf-16-le")).digest()  # noqa: S324 - mandated by MT5
    return hashlib.md5(inner + _SALT).digest()  # noqa: S324 - mandated by MT5


def rand_from_hex(value: object, name: str) -> bytes:
    """A 16-byte random sent as hex (`srv_rand`, `cli_rand`); anything else is a protocol error."""
    if not isinstance(value, str):
        raise AuthProtocolError(f"{name} is missing or not a string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise AuthProtocolError(f"{name} is not hexadecimal: {value[:40]!r}") from None
    if len(raw) != RAND_BYTES:
        raise AuthProtocolError(f"{name} has {len(raw)} bytes, the protocol uses {RAND_BYTES}")
    return raw


def answer(pw_hash: bytes, rand: bytes) -> str:
    """Hex MD5(password hash ‖ random): `srv_rand_answer` for the server's random, and the
    `cli_rand_answer` the server must return for ours."""
    if len(pw_hash) != 16:
        raise AuthProtocolError("the password hash is 16 raw bytes (not its hex)")
    if len(rand) != RAND_BYTES:
        raise AuthProtocolError(f"the random is {RAND_BYTES} raw bytes (not its hex)")
    return hashlib.md5(pw_hash + rand).hexdigest()  # noqa: S324 - mandated by MT5


def srv_rand_answer(password: str, srv_rand_hex: object) -> str:
    """What the client sends to `/api/auth/answer` for the server's `srv_rand`."""
    return answer(password_hash(password), rand_from_hex(srv_rand_hex, "srv_rand"))


def new_cli_rand() -> bytes:
    """The client's own challenge: 16 bytes from the OS's secure generator."""
    return secrets.token_bytes(RAND_BYTES)


def verify_cli_rand_answer(pw_hash: bytes, cli_rand: bytes, cli_rand_answer: object) -> bool:
    """Whether the server's `cli_rand_answer` proves it knows the password (constant time)."""
    if not isinstance(cli_rand_answer, str):
        return False
    expected = answer(pw_hash, cli_rand)
    return hmac.compare_digest(expected.encode(), cli_rand_answer.strip().lower().encode())
