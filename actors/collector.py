"""Python's cyclic garbage collector in engine processes that hold millions of live objects.

Why. An account host keeps thousands of accounts' states (positions, holdings, quotes), the
supervisor its batch log and checkpoints, a simulated broker its whole server: millions of
objects, none of them garbage. The collector, triggered every 700 net allocations, walked the
young ones about ten times per batch and, every so often, all of them in one full collection that
stalled the process for hundreds of milliseconds: the p99 latency spikes of the engine
benchmark. Reference counting frees almost everything these processes drop; the collector only
has to catch reference cycles, which are rare here.

So an engine process raises the young-generation threshold (`calm`), and once a large set of
long-lived objects is built (accounts opened or restored, a connection opened) moves them out of
the collector's sight (`settle`, `gc.freeze`): later collections walk only what came after.
Garbage cycles are still collected, just less often.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000  # net allocations between two young collections (CPython's default: 700)
OLDER_THRESHOLDS = (20, 100)  # young (then middle) collections before the next generation's


def calm() -> None:
    """Collect less often in this process (see the module docstring)."""
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


def settle() -> None:
    """Exclude every object alive now from later collections: called right after building many
    long-lived ones, so they are not walked again and again."""
    gc.freeze()
