"""`veles db`: schema and demo data."""

from __future__ import annotations

import typer

from models.db import upgrade as upgrade_schema
from models.roles import RolesError, enable_app_login
from veles.config import get_settings
from veles.services.demo import seed_demo

app = typer.Typer(help="Database schema and data.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Run the database migrations up to the newest revision (safe to run again)."""
    settings = get_settings()
    upgrade_schema(settings.database_url)
    typer.echo(f"schema up to date: {_redacted(settings.database_url)}")
    if settings.app_database_password is not None:
        create_roles()


@app.command("create-roles")
def create_roles() -> None:
    """Let the veles_app role log in with APP_DATABASE_PASSWORD (run as the schema's owner, after
    `veles db upgrade`); the app's DATABASE_URL then names veles_app, which cannot bypass
    row-level security."""
    settings = get_settings()
    password = settings.app_database_password.get_secret_value() if settings.app_database_password else ""
    try:
        enable_app_login(settings.database_url, password)
    except RolesError as exc:
        typer.echo(f"veles db create-roles: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo("veles_app may log in: point the app's DATABASE_URL at veles_app with APP_DATABASE_PASSWORD")


@app.command("seed-demo")
def seed() -> None:
    """Create the demo broker and its user if they are missing."""
    settings = get_settings()
    tenant_id = seed_demo(settings)
    typer.echo(f"demo tenant {tenant_id} ready; sign in as {settings.demo_email}")


def _redacted(url: str) -> str:
    """A database URL without its password, fit for a console."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
