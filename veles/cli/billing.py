"""`veles billing`: the billing domain's commands (they live with it, in veles/billing/cli.py)."""

from veles.billing.cli import app

__all__ = ["app"]
