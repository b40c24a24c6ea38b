"""`veles doctor`: is this configuration fit to run, and does everything it needs answer?"""

from __future__ import annotations

from typing import Annotated

import typer

from veles.config import get_settings
from veles.services.credentials import generate_key
from veles.services.preflight import DEFAULT_TIMEOUT_S, doctor_checks


def run_doctor(
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for each service.")
    ] = DEFAULT_TIMEOUT_S,
    new_credentials_key: Annotated[
        bool, typer.Option("--new-credentials-key", help="Only print a fresh CREDENTIALS_KEYS key.")
    ] = False,
) -> None:
    """Print the production start-up checks (SECRET_KEY, CREDENTIALS_KEYS, the database role) and
    whether the database, Redis and Ray answer, one line each; exit 0 only when all pass."""
    if new_credentials_key:
        typer.echo(generate_key())
        return
    settings = get_settings()
    typer.echo(f"VELES_ENV={settings.veles_env.value}")
    failed = 0
    for check in doctor_checks(settings, timeout):
        if check.ok:
            typer.echo(f"ok    {check.name}: {check.detail}")
        else:
            failed += 1
            typer.echo(f"FAIL  {check.name}: {'; '.join(check.problems)}")
    if failed:
        raise typer.Exit(1)
