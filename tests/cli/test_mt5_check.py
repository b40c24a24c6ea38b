"""`veles mt5 check URL --login N` against the fake MT5 Web API: JSON and exit 0 when the manager
can read everything, else exit 2 with one line naming the failing step and the server's retcode."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from tests.stubs.mt5_webapi import MANAGER_LOGIN, MANAGER_PASSWORD, make_fake, serving
from veles.cli import app
from veles.mt5.webapi.fake_server import Manager
from veles.mt5.webapi.records import group_name

runner = CliRunner()


def run(url: str, password: str | None = MANAGER_PASSWORD, *extra: str) -> tuple[int, str, str]:
    env = {"VELES_MT5_PASSWORD": password} if password is not None else {"VELES_MT5_PASSWORD": ""}
    result = runner.invoke(app, ["mt5", "check", url, "--login", str(MANAGER_LOGIN), *extra], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_check_prints_what_the_manager_can_read() -> None:
    fake, broker = make_fake(accounts=8)
    with serving(fake) as url:
        code, out, err = run(url)
    assert (code, err) == (0, "")
    books = broker.accounts()
    assert json.loads(out) == {
        "server": url,
        "version_access": "1290",
        "symbols": len(broker.symbols()),
        "groups": len({group_name(a) for a in books}),
        "users": len(books),
        "positions": sum(len(a.positions) for a in books),
    }


def test_wrong_password_exits_2_naming_the_auth_step_and_retcode() -> None:
    fake, _ = make_fake()
    with serving(fake) as url:
        code, out, err = run(url, "not-the-password")
    assert code == 2
    assert out == ""
    assert err.strip().count("\n") == 0
    assert err.startswith("mt5 check failed at auth/answer: ")
    assert "retcode 3006 Invalid account password" in err


def test_a_server_that_cannot_prove_cli_rand_answer_is_refused() -> None:
    fake, _ = make_fake()
    fake.faults.impostor = True
    with serving(fake) as url:
        code, out, err = run(url)
    assert (code, out) == (2, "")
    assert err.startswith("mt5 check failed at auth/answer: the server could not prove")
    assert fake.requests == 2  # auth/start and auth/answer: nothing read from the impostor


def test_missing_rights_exit_2_naming_the_request() -> None:
    narrow = Manager(MANAGER_LOGIN, MANAGER_PASSWORD, rights=frozenset({"symbols", "groups", "users"}))
    fake, _ = make_fake(managers=(narrow,))
    with serving(fake) as url:
        code, _, err = run(url, MANAGER_PASSWORD, "--group", "real*")
    assert code == 2
    assert err.strip() == ("mt5 check failed at position/get_batch: the manager account lacks the right to "
                           "read positions of group real* (retcode 8 Not enough permissions)")


def test_ip_not_allowed_exits_2_at_auth_start() -> None:
    fake, _ = make_fake(managers=(Manager(MANAGER_LOGIN, MANAGER_PASSWORD, ip_allow=("192.0.2.0/24",)),))
    with serving(fake) as url:
        code, _, err = run(url)
    assert code == 2
    assert err.startswith("mt5 check failed at auth/start: allow Veles' IP address")
    assert "retcode 1012" in err


def test_no_password_and_no_server() -> None:
    code, _, err = run("http://127.0.0.1:9", None)
    assert code == 2
    assert "VELES_MT5_PASSWORD is not set" in err
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, _, err = run(f"http://127.0.0.1:{port}", MANAGER_PASSWORD, "--timeout", "1")
    assert code == 2
    assert err.startswith("mt5 check failed at auth/start: cannot connect")


@pytest.mark.parametrize("bad_ca", ["/nonexistent/ca.pem"])
def test_unreadable_ca_bundle_is_a_clear_error(bad_ca: str) -> None:
    code, _, err = run("https://127.0.0.1:1", MANAGER_PASSWORD, "--ca-bundle", bad_ca)
    assert code == 2
    assert err.startswith("mt5 check failed at setup:")
