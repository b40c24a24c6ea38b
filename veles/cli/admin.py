"""`veles admin`: platform administration from the command line."""

from __future__ import annotations

import asyncio

import typer

from models.tenancy import Role
from veles.config import get_settings
from veles.services.admin import set_tenant_plan
from veles.services.platform_admins import create_platform_admin
from veles.services.ray_runtime import EngineUnreachable

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


@app.command("set-plan")
def set_plan(tenant: int = typer.Argument(..., help="The broker's tenant id."),
             plan: str = typer.Argument(..., help="starter, professional or enterprise.")) -> None:
    """Change a broker's plan and apply it to its running engine at once (joins the engine's Ray
    cluster when RAY_ADDRESS is set; without an engine it applies when the engine starts); exit 2
    for an unknown plan or tenant."""
    settings = get_settings()
    try:
        answer = asyncio.run(set_tenant_plan(settings, Role.PLATFORM_ADMIN, None, tenant, plan))
    except (ValueError, LookupError) as exc:
        typer.echo(f"veles admin set-plan: {exc}", err=True)
        raise typer.Exit(2) from None
    except EngineUnreachable as exc:  # stored; connections opened from now on are admitted by it
        typer.echo(f"tenant {tenant}: plan {plan}; engine not told ({exc}): restart it, or run this "
                   "again with RAY_ADDRESS, to apply the plan to the connections it runs")
        return
    typer.echo(f"tenant {tenant}: plan {plan}; engine {'updated' if answer['running'] else 'not running'}")
