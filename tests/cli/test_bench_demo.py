"""`veles bench demo` and `veles demo`: bad options are refused with a clear message before
anything starts (the benchmark itself starts a whole demo and a browser, so it is run by hand,
not in the tests)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from veles.cli import app


@pytest.mark.parametrize(("option", "value"), [("--accounts", "0"), ("--seconds", "0"), ("--settle", "-1")])
def test_bad_option_is_refused_before_starting(option: str, value: str) -> None:
    result = CliRunner().invoke(app, ["bench", "demo", option, value])
    assert result.exit_code == 2
    assert option in result.output
    assert "Invalid value" in result.output


def test_demo_refuses_negative_accounts() -> None:
    result = CliRunner().invoke(app, ["demo", "--accounts", "-5"])
    assert result.exit_code == 2
    assert "--accounts" in result.output
