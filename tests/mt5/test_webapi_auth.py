"""The Web API's authentication math against MetaQuotes' own test vector
(webapi_rest_authentication: password `Password1`, srv_rand 73007dc7…), plus the mutual check."""

from __future__ import annotations

import hashlib

import pytest

from veles.mt5.webapi.auth import (
    AuthProtocolError,
    answer,
    new_cli_rand,
    password_hash,
    rand_from_hex,
    srv_rand_answer,
    verify_cli_rand_answer,
)

DOC_PASSWORD = "Password1"
DOC_HASH = "904ba8ecb16273d2f0ae9c3b8a023752"
DOC_SRV_RAND = "73007dc7184747ce0f7c98516ef1c851"
DOC_SRV_RAND_ANSWER = "77fe51827f7fa69dd80fbec9aa33f1bb"


def test_password_hash_is_the_documented_vector() -> None:
    assert password_hash(DOC_PASSWORD).hex() == DOC_HASH


def test_srv_rand_answer_is_the_documented_vector() -> None:
    assert srv_rand_answer(DOC_PASSWORD, DOC_SRV_RAND) == DOC_SRV_RAND_ANSWER
    assert srv_rand_answer(DOC_PASSWORD, DOC_SRV_RAND.upper()) == DOC_SRV_RAND_ANSWER


def test_concatenating_hex_instead_of_raw_bytes_gives_another_answer() -> None:
    """The documented pitfall (hex intermediates get a 403): our answer is not the hex-text one."""
    wrong = hashlib.md5((DOC_HASH + DOC_SRV_RAND).encode()).hexdigest()  # noqa: S324
    assert wrong != DOC_SRV_RAND_ANSWER
    assert srv_rand_answer(DOC_PASSWORD, DOC_SRV_RAND) != wrong


def test_password_is_utf16le_so_non_ascii_passwords_work() -> None:
    inner = hashlib.md5("Пароль€1".encode("utf-16-le")).digest()  # noqa: S324
    assert password_hash("Пароль€1") == hashlib.md5(inner + b"WebAPI").digest()  # noqa: S324
    assert password_hash("Пароль€1") != password_hash("Password1")


def test_server_that_knows_the_password_passes_and_an_impostor_fails() -> None:
    pw = password_hash(DOC_PASSWORD)
    cli = new_cli_rand()
    assert len(cli) == 16
    assert new_cli_rand() != cli
    good = answer(pw, cli)  # what a server knowing the password computes
    assert verify_cli_rand_answer(pw, cli, good)
    assert verify_cli_rand_answer(pw, cli, good.upper())
    impostor = answer(password_hash("something else"), cli)
    assert not verify_cli_rand_answer(pw, cli, impostor)
    assert not verify_cli_rand_answer(pw, cli, answer(pw, new_cli_rand()))  # replayed answer
    assert not verify_cli_rand_answer(pw, cli, None)
    assert not verify_cli_rand_answer(pw, cli, "")


@pytest.mark.parametrize("bad", ["", "zz" * 16, "00" * 15, "00" * 17, None, 16])
def test_malformed_randoms_are_refused(bad: object) -> None:
    with pytest.raises(AuthProtocolError):
        rand_from_hex(bad, "srv_rand")


def test_answer_refuses_hex_where_raw_bytes_belong() -> None:
    with pytest.raises(AuthProtocolError, match="raw bytes"):
        answer(DOC_HASH.encode(), bytes(16))
