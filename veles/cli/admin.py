"""`veles admin`: platform administration from the command line."""

from __future__ import annotations

import typer

from veles.config import get_settings
from veles.services.platform_admins import create_platform_admin

app = typer.Typer(help="Platform administration.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Platform administration."""


@app.command("create-platform-admin")
def create(email: str = typer.Argument(..., help="The new platform admin's e-mail address.")) -> None:
    """Make a platform admin (in the platform's own tenant, not a broker's) and print a one-time
    password, to be replaced at the first sign-in within TEMPORARY_PASSWORD_HOURS; exit 2 when the
    address is not one or already registered."""
    try:
        made = create_platform_admin(get_settings(), email)
    except ValueError as exc:
        typer.echo(f"veles admin create-platform-admin: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"platform admin {made.email} created; one-time password (shown only now, replace it at "
               f"the first sign-in): {made.temporary_password}")
