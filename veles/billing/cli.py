"""`veles billing`: set up the Stripe catalog and run the dunning clock from the command line."""

from __future__ import annotations

import typer

from veles.billing.catalog import sync
from veles.billing.client import BillingNotConfigured
from veles.config import get_settings

app = typer.Typer(help="Billing with Stripe.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Billing with Stripe."""


@app.command("dunning")
def dunning_command(at: str = typer.Option("", "--at", help="Act as if it were this UTC time (ISO 8601), "
                                           "e.g. to see what a date would do; default now.")) -> None:
    """Take the dunning steps that are due: trials ended without a subscription become past due,
    past due beyond BILLING_GRACE_DAYS read-only, beyond BILLING_SUSPEND_DAYS suspended (engine
    stopped). `veles engine` does this every 30 s; prints each step."""
    import asyncio
    from datetime import UTC, datetime

    from veles.billing.dunning import run_dunning

    try:
        now = datetime.fromisoformat(at).astimezone(UTC) if at else None
    except ValueError:
        typer.echo(f"veles billing dunning: --at: not an ISO 8601 time: {at!r}", err=True)
        raise typer.Exit(2) from None
    steps = asyncio.run(run_dunning(get_settings(), now))
    for step in steps:
        typer.echo(f"tenant {step.tenant_id}: {step.to.value} ({step.why})")
    typer.echo(f"{len(steps)} step(s) taken")


@app.command("sync")
def sync_command() -> None:
    """Make the Stripe products and monthly USD prices of the three plans (found by lookup key,
    so running it again changes nothing); prints each plan's price id. Exit 2 when STRIPE_SECRET_KEY
    is not set, 1 when Stripe refuses."""
    import stripe

    try:
        synced = sync(get_settings())
    except BillingNotConfigured as exc:
        typer.echo(f"veles billing sync: {exc}", err=True)
        raise typer.Exit(2) from None
    except stripe.StripeError as exc:
        typer.echo(f"veles billing sync: Stripe refused: {exc.user_message or exc}", err=True)
        raise typer.Exit(1) from None
    for plan in synced:
        made = ", ".join(plan.made) + " created" if plan.made else "already there"
        typer.echo(f"{plan.plan}: product {plan.product}, price {plan.price} "
                   f"({plan.unit_amount / 100:,.2f} USD a month): {made}")
