"""`veles bench load` (make loadtest): bad options are refused with a clear message before
anything starts (the run itself starts a demo and Locust; tests/browser/test_locust_runs.py runs the
scenarios against a demo of its own)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from veles.cli import app


@pytest.mark.parametrize(("option", "value"), [("--users", "0"), ("--seconds", "1"), ("--accounts", "0"),
                                               ("--spawn-rate", "0"), ("--thresholds", "/nowhere.toml")])
def test_bad_option_is_refused_before_starting(option: str, value: str) -> None:
    result = CliRunner().invoke(app, ["bench", "load", option, value])
    assert result.exit_code == 2
    assert option in result.output


@pytest.mark.parametrize("url", ["sqlite:///load.db", "postgresql+psycopg://postgres@127.0.0.1:5432"])
def test_a_database_it_cannot_make_afresh_is_refused(url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "load", "--database-url", url, "--reports", str(tmp_path)])
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # the message as typer boxes it, unwrapped
    assert "--database-url" in said
    assert "makes a PostgreSQL database of its own" in said
    assert list(tmp_path.iterdir()) == []  # nothing started, no run folder
