"""How many sessions this web process serves now, for `/metrics`: Reflex's event sockets (portal
tabs) and the integrations sockets. Each kind registers a counter here where it lives (the UI
registers Reflex's, the API its own), so `/metrics` reads them without importing the UI."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_COUNTERS: dict[str, Callable[[], int]] = {}


def register(kind: str, count: Callable[[], int]) -> None:
    """Count `kind`'s open sessions with `count()` at each scrape (a later register replaces it)."""
    _COUNTERS[kind] = count


def session_counts() -> dict[str, int]:
    """Open sessions by kind; a counter that fails is left out (and logged), never fails a scrape."""
    counts = {}
    for kind, count in sorted(_COUNTERS.items()):
        try:
            counts[kind] = int(count())
        except Exception as exc:
            log.warning("sessions of %s not counted: %s", kind, exc)
    return counts
