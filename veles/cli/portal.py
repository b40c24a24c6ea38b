"""`veles portal`: the production portal (Reflex front end and backend with the REST API on one
port), started only after the production checks pass."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from veles.config import get_settings
from veles.services.preflight import enforce

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_portal(
    port: Annotated[int, typer.Option(help="Port for the portal and its API (default: FRONTEND_PORT).")] = 0,
) -> None:
    """Check the configuration (exit 2 with one line per problem when VELES_ENV=production and it is
    unsafe), then become `reflex run --env prod` on one port. The backend checks again as it starts,
    so a portal started with plain `reflex run` refuses too (with the server's exit code)."""
    settings = get_settings()
    enforce(settings, "veles portal")
    port = port or settings.frontend_port
    reflex = str(Path(sys.executable).parent / "reflex")
    os.chdir(PROJECT_ROOT)
    argv = [reflex, "run", "--env", "prod", "--frontend-port", str(port), "--backend-port", str(port)]
    os.execv(reflex, argv)  # noqa: S606 (fixed argv: this process becomes the portal)
